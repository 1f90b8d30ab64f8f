//! The images API's rules as pure functions: what a key is, where the copies go, and how big
//! an upload may be. No I/O; `routes` applies them. Argued in docs/images.md.
use thiserror::Error;

/// The copies' widths, in pixels, and their keys' suffixes (`<key>_200`, `<key>_75`).
pub const COPY_WIDTHS: [u32; 2] = [200, 75];

/// The longest key, in bytes. S3 takes 1024; 200 leaves room for the copies' suffixes and
/// is more than any path a client builds.
pub const MAX_KEY_LEN: usize = 200;

/// The largest request body the function reads, in bytes. API Gateway hands a binary body to
/// Lambda base64-encoded, and Lambda takes an event of at most 6 MB (6,291,456 bytes): 4.5 MB of body is what
/// fits with the event's headers around it. Bodies above it never reach the function on AWS
/// (API Gateway answers 413); the function refuses them too, with the same status.
pub const MAX_BODY_BYTES: usize = 4_500_000;

/// The largest image decoded, in pixels (width times height): 40 megapixels, three times a
/// 12-megapixel photo. The decoder's buffer for it (8-bit RGBA) is 160 MB, within Lambda's
/// 512 MB setting; a small file claiming a larger image (a decompression bomb) is refused
/// before its pixels are allocated.
pub const MAX_PIXELS: u64 = 40_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("s3Key is empty; send a key such as photos/cat.jpg")]
    Empty,
    #[error("s3Key is {0} bytes long; at most {MAX_KEY_LEN} are allowed")]
    TooLong(usize),
    #[error(
        "s3Key {0:?} has a character outside A-Z a-z 0-9 . _ - and / (no spaces, backslashes or other punctuation)"
    )]
    BadCharacter(String),
    #[error(
        "s3Key {0:?} has an empty part or one starting with a dot (no leading, trailing or double slashes, no . or ..)"
    )]
    BadPart(String),
    #[error(
        "s3Key {0:?} ends with _200 or _75, the suffixes of the resized copies; choose another key"
    )]
    CopySuffix(String),
}

/// A key as stored and read: 1 to `MAX_KEY_LEN` bytes of `A-Z a-z 0-9 . _ - /`, parts
/// separated by single slashes, none empty and none starting with a dot (so no `.`, `..`, a
/// leading slash or a hidden file). S3 would store `../x` as is; the rule is for every tool
/// that later maps keys to paths.
pub fn readable_key(key: &str) -> Result<&str, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
    if !key.bytes().all(allowed) {
        return Err(KeyError::BadCharacter(key.to_owned()));
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return Err(KeyError::BadPart(key.to_owned()));
    }
    Ok(key)
}

/// A key an upload may be stored under: readable, and not ending like a copy (`a_200` would
/// be overwritten by the copies of `a`, and would have copies `a_200_200`).
pub fn upload_key(key: &str) -> Result<&str, KeyError> {
    let key = readable_key(key)?;
    if COPY_WIDTHS.iter().any(|w| key.ends_with(&format!("_{w}"))) {
        return Err(KeyError::CopySuffix(key.to_owned()));
    }
    Ok(key)
}

/// The key of the copy `width` pixels wide.
pub fn copy_key(key: &str, width: u32) -> String {
    format!("{key}_{width}")
}

/// The height of a copy `width` wide of a `w` x `h` image: the aspect ratio kept, rounded to
/// the nearest pixel, at least one.
pub fn copy_height(w: u32, h: u32, width: u32) -> u32 {
    let exact = u64::from(h) * u64::from(width);
    let w = u64::from(w.max(1));
    ((exact + w / 2) / w).max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_paths() {
        for good in ["cat.jpg", "photos/2026/cat.jpg", "a", "A-b_c.d/e", "a..b"] {
            assert_eq!(readable_key(good), Ok(good));
        }
        for bad in [
            "../x", "a/../b", "./a", "/a", "a/", "a//b", ".hidden", "a/.x",
        ] {
            assert_eq!(
                readable_key(bad),
                Err(KeyError::BadPart(bad.to_owned())),
                "{bad}"
            );
        }
        for bad in ["a b", "a\\b", "é.jpg", "a?b", "a%2Fb", "a\n"] {
            assert_eq!(
                readable_key(bad),
                Err(KeyError::BadCharacter(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(readable_key(""), Err(KeyError::Empty));
    }

    #[test]
    fn the_longest_key_is_200_bytes() {
        let longest = "k".repeat(MAX_KEY_LEN);
        assert!(upload_key(&longest).is_ok());
        assert_eq!(
            upload_key(&"k".repeat(MAX_KEY_LEN + 1)),
            Err(KeyError::TooLong(201))
        );
    }

    #[test]
    fn an_upload_key_cannot_end_like_a_copy() {
        for copy in ["cat_200", "cat_75", "a/b.png_75"] {
            assert_eq!(upload_key(copy), Err(KeyError::CopySuffix(copy.to_owned())));
            assert_eq!(readable_key(copy), Ok(copy), "but a copy can be read");
        }
        assert!(upload_key("cat_2000").is_ok());
        assert_eq!(copy_key("photos/cat.jpg", 75), "photos/cat.jpg_75");
    }

    #[test]
    fn copies_keep_the_aspect_ratio() {
        assert_eq!(copy_height(4000, 3000, 200), 150);
        assert_eq!(copy_height(4000, 3000, 75), 56); // 56.25
        assert_eq!(copy_height(1000, 1000, 75), 75);
        assert_eq!(copy_height(3, 2, 200), 133); // 133.3, upscaled
        assert_eq!(copy_height(1000, 1, 75), 1, "never zero rows");
        assert_eq!(copy_height(1000, 7, 200), 1); // 1.4
        assert_eq!(copy_height(1000, 8, 200), 2); // 1.6
    }

    #[test]
    fn the_body_limit_fits_lambdas_event_after_base64() {
        let encoded = MAX_BODY_BYTES.div_ceil(3) * 4;
        assert!(encoded <= 6_291_456 - 256 * 1024, "{encoded}");
    }
}
