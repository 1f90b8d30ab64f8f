//! What this binary is (crate name, version, commit, toolchain), read from its build script's
//! variables where it is compiled; see `lambda_kit::build_info`.
lambda_kit::build_info!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_follows_the_contract() {
        let inner = BUILD_STAMP
            .strip_prefix("@@build-stamp@@")
            .and_then(|s| s.strip_suffix("@@end@@"))
            .expect("marker delimiters");
        let parts: Vec<&str> = inner.split(' ').collect();
        assert_eq!(parts, [NAME, VERSION, GIT_SHA]);
        assert_eq!(NAME, "app");
        assert!(
            GIT_SHA == UNKNOWN
                || (GIT_SHA.len() == 40
                    && GIT_SHA
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
            "git sha must be 40 lowercase hex or unknown, got {GIT_SHA}"
        );
    }
}
