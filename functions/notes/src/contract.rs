//! The notes API's rules as pure functions: what a note's name is, where it is stored, and
//! what a body may be. No I/O; `routes` applies them to requests. Argued in docs/notes.md.
use thiserror::Error;

/// The longest name accepted, in characters (ASCII, so bytes too). S3 takes keys of 1024
/// bytes; 64 is more than a title needs and keeps a pasted sentence out of the bucket.
pub const MAX_NAME_LEN: usize = 64;

/// The largest note, in bytes: 64 KiB is some ten thousand words of text. Far under Lambda's
/// 6 MB payload, so the limit is the function's and its answer a 413 that says so.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every note's key ends so: the object is a text file, as the seed wrote it.
pub const SUFFIX: &str = ".txt";

/// The Content-Type of a note's body, sent and stored.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("the note's name is empty; use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ -")]
    EmptyName,
    #[error(
        "the note's name {0:?} has a character outside A-Z a-z 0-9 . _ - (no slashes, spaces or other punctuation)"
    )]
    BadCharacter(String),
    #[error("the note's name {0:?} starts with a dot; names such as . and .. are not notes")]
    LeadingDot(String),
    #[error("the note's name is {0} characters long; at most {MAX_NAME_LEN} are allowed")]
    NameTooLong(usize),
    #[error("the body is over {MAX_BODY_BYTES} bytes; a note is at most 64 KiB of text")]
    TooLarge,
    #[error("the body is not UTF-8 text ({0}); send the note as UTF-8")]
    NotUtf8(String),
    #[error("the charset {0:?} is not UTF-8; send text/plain with charset=utf-8 or none")]
    Charset(String),
}

/// A valid name's object key: `{name}.txt`. The name is 1 to `MAX_NAME_LEN` characters of
/// `A-Z a-z 0-9 . _ -`, not starting with a dot: no path (`/`), no `.` or `..`, nothing that
/// needs escaping in a URL or a shell. Case is kept: S3 keys are case-sensitive, so `Todo`
/// and `todo` are two notes.
pub fn key(name: &str) -> Result<String, InputError> {
    if name.is_empty() {
        return Err(InputError::EmptyName);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !name.bytes().all(allowed) {
        return Err(InputError::BadCharacter(name.to_owned()));
    }
    if name.starts_with('.') {
        return Err(InputError::LeadingDot(name.to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InputError::NameTooLong(name.len()));
    }
    Ok(format!("{name}{SUFFIX}"))
}

/// The `charset` parameter of a text/plain Content-Type, if it is not UTF-8 (absent means
/// UTF-8, the default this API documents).
pub fn check_charset(content_type: &str) -> Result<(), InputError> {
    for param in content_type.split(';').skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let value = value.trim().trim_matches('"');
            if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") {
                return Err(InputError::Charset(value.to_owned()));
            }
        }
    }
    Ok(())
}

/// A body as PUT may send it: at most `MAX_BODY_BYTES`, UTF-8. Empty is a note too (an empty
/// text file).
pub fn body(bytes: &[u8]) -> Result<&str, InputError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(InputError::TooLarge);
    }
    std::str::from_utf8(bytes).map_err(|e| InputError::NotUtf8(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_its_key_without_the_suffix() {
        assert_eq!(key("hello").unwrap(), "hello.txt");
        assert_eq!(
            key("Shopping-list_2026.v2").unwrap(),
            "Shopping-list_2026.v2.txt"
        );
        assert_ne!(key("Todo"), key("todo"), "case is kept");
    }

    #[test]
    fn the_name_set_is_letters_digits_dot_underscore_dash() {
        for bad in [
            "a/b", "../x", "a b", "a%2Fb", "naïve", "a\\b", "a\n", "~x", "x*",
        ] {
            assert_eq!(
                key(bad),
                Err(InputError::BadCharacter(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(key(""), Err(InputError::EmptyName));
        for dotted in [".", "..", ".hidden"] {
            assert_eq!(key(dotted), Err(InputError::LeadingDot(dotted.to_owned())));
        }
        assert_eq!(
            key("a..b").unwrap(),
            "a..b.txt",
            "dots inside a name are no path"
        );
    }

    #[test]
    fn the_longest_name_is_64_characters() {
        let longest = "n".repeat(MAX_NAME_LEN);
        assert_eq!(key(&longest).unwrap(), format!("{longest}.txt"));
        assert_eq!(
            key(&"n".repeat(MAX_NAME_LEN + 1)),
            Err(InputError::NameTooLong(65))
        );
    }

    #[test]
    fn the_body_is_at_most_64_kib_of_utf8() {
        assert_eq!(body(b"hello").unwrap(), "hello");
        assert_eq!(body(b"").unwrap(), "");
        let largest = vec![b'a'; MAX_BODY_BYTES];
        assert!(body(&largest).is_ok());
        assert_eq!(
            body(&vec![b'a'; MAX_BODY_BYTES + 1]),
            Err(InputError::TooLarge)
        );
        assert!(matches!(body(&[0xff, 0xfe]), Err(InputError::NotUtf8(_))));
    }

    #[test]
    fn only_utf8_is_a_charset() {
        assert!(check_charset("text/plain").is_ok());
        assert!(check_charset("text/plain; charset=UTF-8").is_ok());
        assert!(check_charset("text/plain;charset=\"utf-8\"").is_ok());
        assert_eq!(
            check_charset("text/plain; charset=latin1"),
            Err(InputError::Charset("latin1".to_owned()))
        );
    }
}
