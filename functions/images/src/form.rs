//! The multipart/form-data body of POST /images read into its two fields, `file` and
//! `s3Key`, with multer (the parser under axum's own `Multipart`). The body is already in
//! memory (Lambda hands over the whole event), so it is read as one chunk.
use axum::body::{Body, Bytes};
use thiserror::Error;

pub const FILE_FIELD: &str = "file";
pub const KEY_FIELD: &str = "s3Key";

/// The two fields of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub file: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormError {
    #[error("the Content-Type has no multipart boundary; send multipart/form-data as curl -F does")]
    NoBoundary,
    #[error("the multipart body cannot be read ({0}); send multipart/form-data as curl -F does")]
    Malformed(String),
    #[error("the form has a field {0:?}; send only the fields file and s3Key")]
    UnknownField(String),
    #[error("the form has the field {0} twice; send it once")]
    Repeated(&'static str),
    #[error(
        "the form has no field {0}; send file (the image) and s3Key (where to store it), e.g. curl -F file=@cat.jpg -F s3Key=cat.jpg"
    )]
    Missing(&'static str),
    #[error("the field s3Key is not UTF-8 text")]
    KeyNotText,
}

/// Reads `file` and `s3Key` from `body`, sent with the Content-Type `content_type`.
pub async fn read(content_type: &str, body: Bytes) -> Result<Upload, FormError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| FormError::NoBoundary)?;
    let stream = Body::from(body).into_data_stream();
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut key, mut file) = (None, None);
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| FormError::Malformed(e.to_string()))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            KEY_FIELD => &mut key,
            FILE_FIELD => &mut file,
            _ => return Err(FormError::UnknownField(name)),
        };
        if slot.is_some() {
            return Err(FormError::Repeated(match name.as_str() {
                KEY_FIELD => KEY_FIELD,
                _ => FILE_FIELD,
            }));
        }
        let bytes = field
            .bytes()
            .await
            .map_err(|e| FormError::Malformed(e.to_string()))?;
        *slot = Some(bytes);
    }
    let key = key.ok_or(FormError::Missing(KEY_FIELD))?;
    let file = file.ok_or(FormError::Missing(FILE_FIELD))?;
    let key = String::from_utf8(key.to_vec()).map_err(|_| FormError::KeyNotText)?;
    Ok(Upload { key, file })
}

/// A multipart/form-data body of `fields` (name, optional file name, bytes), as curl -F
/// sends it, and its Content-Type; for tests and the deploy probe's body.
pub fn encode(boundary: &str, fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file_name, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file_name {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(fields: &[(&str, Option<&str>, &[u8])]) -> Result<Upload, FormError> {
        let (content_type, body) = encode("xyz", fields);
        read(&content_type, Bytes::from(body)).await
    }

    #[tokio::test]
    async fn the_two_fields_in_any_order() {
        let want = Upload {
            key: "a/b.png".into(),
            file: Bytes::from_static(b"\x89PNG\r\n\0\xff"),
        };
        let file: &[u8] = b"\x89PNG\r\n\0\xff";
        let got = parse(&[("s3Key", None, b"a/b.png"), ("file", Some("b.png"), file)]).await;
        assert_eq!(got.unwrap(), want);
        let got = parse(&[("file", Some("b.png"), file), ("s3Key", None, b"a/b.png")]).await;
        assert_eq!(got.unwrap(), want);
    }

    #[tokio::test]
    async fn missing_repeated_and_unknown_fields_are_named() {
        let f: &[u8] = b"x";
        assert_eq!(
            parse(&[("file", Some("a"), f)]).await,
            Err(FormError::Missing(KEY_FIELD))
        );
        assert_eq!(
            parse(&[("s3Key", None, b"k")]).await,
            Err(FormError::Missing(FILE_FIELD))
        );
        assert_eq!(
            parse(&[
                ("s3Key", None, b"k"),
                ("s3Key", None, b"j"),
                ("file", None, f)
            ])
            .await,
            Err(FormError::Repeated(KEY_FIELD))
        );
        assert_eq!(
            parse(&[
                ("s3Key", None, b"k"),
                ("file", None, f),
                ("acl", None, b"public-read")
            ])
            .await,
            Err(FormError::UnknownField("acl".into()))
        );
        assert_eq!(
            parse(&[("s3Key", None, b"\xff"), ("file", None, f)]).await,
            Err(FormError::KeyNotText)
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_multipart_is_refused() {
        assert_eq!(
            read("multipart/form-data", Bytes::from_static(b"x")).await,
            Err(FormError::NoBoundary)
        );
        let got = read(
            "multipart/form-data; boundary=xyz",
            Bytes::from_static(b"garbage"),
        )
        .await;
        assert!(matches!(got, Err(FormError::Malformed(_))), "{got:?}");
    }
}
