//! What this binary is (crate name, version, commit, toolchain), read from its build script's
//! variables where it is compiled; see `lambda_kit::build_info`.
lambda_kit::build_info!();
