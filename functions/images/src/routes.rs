//! The HTTP side of the images API: one axum `Router`. POST stores an upload and its copies
//! and answers JSON naming the three keys; GET answers an object's bytes. Every refusal is a
//! 4xx JSON error that says what was wrong, given before anything is written.
use crate::contract::{self, KeyError};
use crate::copies::{self, ImageError};
use crate::form::{self, FormError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lambda_kit::refusal::{self, Refusal};
use objects::Objects;
use serde::Serialize;
use std::sync::Arc;

/// The API Gateway stage variable naming the stage's images bucket. A published version is
/// shared by every stage, so the bucket cannot be in its environment.
pub const BUCKET_STAGE_VARIABLE: &str = "imagesBucket";

const ROUTES: &str = "POST /images or GET /images/{key}";

pub fn router<O: Objects>(objects: O) -> Router {
    let router = Router::new()
        .route("/images", post(post_image::<O>))
        // `get` answers HEAD too; other methods get 405 + Allow.
        .route("/images/{*key}", get(get_image::<O>))
        .with_state(Arc::new(objects))
        .fallback(
            |method: Method, uri: Uri| async move { refusal::not_found(&method, &uri, ROUTES) },
        )
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            refusal::method_not_allowed(&method, &uri)
        });
    lambda_kit::with_common_layers(router, crate::build_info::BINARY)
}

/// One stored object, as POST's answer names it.
#[derive(Debug, Serialize)]
struct Stored {
    key: String,
    width: u32,
    height: u32,
    bytes: usize,
}

/// POST's answer: the original, its format and its copies.
#[derive(Debug, Serialize)]
struct Posted {
    #[serde(flatten)]
    original: Stored,
    format: &'static str,
    copies: Vec<Stored>,
}

fn invalid_key(e: KeyError) -> Refusal {
    Refusal::bad_request("invalid_key", e.to_string())
}

fn bad_form(e: FormError) -> Refusal {
    let code = match e {
        FormError::NoBoundary | FormError::Malformed(_) => "malformed_form",
        FormError::UnknownField(_) => "unknown_field",
        FormError::Repeated(_) => "repeated_field",
        FormError::Missing(_) => "missing_field",
        FormError::KeyNotText => "invalid_key",
    };
    Refusal::bad_request(code, e.to_string())
}

fn bad_image(e: ImageError) -> Refusal {
    let (status, code) = match e {
        ImageError::NotAnImage => (StatusCode::BAD_REQUEST, "not_an_image"),
        ImageError::Corrupt(..) => (StatusCode::BAD_REQUEST, "corrupt_image"),
        ImageError::TooManyPixels { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
        ImageError::Encode(..) => (StatusCode::INTERNAL_SERVER_ERROR, "encode_error"),
    };
    Refusal::new(status, code, e.to_string())
}

fn bucket(request: &Request) -> Result<String, Refusal> {
    refusal::stage_variable(request, BUCKET_STAGE_VARIABLE, "images bucket")
}

async fn post_image<O: Objects>(
    State(objects): State<Arc<O>>,
    request: Request,
) -> Result<Response, Refusal> {
    const MULTIPART: &str = "multipart/form-data";
    let content_type = match refusal::media_type(request.headers()) {
        Some((essence, given)) if essence == MULTIPART => given,
        other => {
            let given = other.map(|(_, given)| given);
            return Err(refusal::unsupported_media_type(
                given.as_deref(),
                "multipart/form-data with the fields file and s3Key (curl -F)",
            ));
        }
    };
    // Every refusal of the client's input comes first, the stage's configuration after.
    let bucket = bucket(&request);
    let body = axum::body::to_bytes(request.into_body(), contract::MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "the upload is over {} bytes (4.5 MB), the most a Lambda event carries after base64; send a smaller image",
                    contract::MAX_BODY_BYTES
                ),
            )
        })?;
    let upload = form::read(&content_type, body).await.map_err(bad_form)?;
    let key = contract::upload_key(&upload.key).map_err(invalid_key)?;
    let made = copies::make_copies(&upload.file).map_err(bad_image)?;
    let bucket = bucket?;
    let content_type = made.format.content_type();
    let mut stored = Vec::with_capacity(made.copies.len());
    // The copies first: an original in the bucket means its copies are there too.
    for (width, copy) in contract::COPY_WIDTHS.iter().zip(made.copies) {
        let copy_key = contract::copy_key(key, *width);
        stored.push(Stored {
            key: copy_key.clone(),
            width: copy.width,
            height: copy.height,
            bytes: copy.bytes.len(),
        });
        objects
            .put(&bucket, &copy_key, copy.bytes, content_type)
            .await
            .map_err(Refusal::store_failed)?;
    }
    let original = Stored {
        key: key.to_owned(),
        width: made.width,
        height: made.height,
        bytes: upload.file.len(),
    };
    objects
        .put(&bucket, key, upload.file.to_vec(), content_type)
        .await
        .map_err(Refusal::store_failed)?;
    let posted = Posted {
        original,
        format: made.format.name(),
        copies: stored,
    };
    Ok((StatusCode::CREATED, Json(posted)).into_response())
}

async fn get_image<O: Objects>(
    State(objects): State<Arc<O>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let Path(key) = path.map_err(|e| {
        Refusal::bad_request(
            "invalid_key",
            format!("the key in the path cannot be read ({e})"),
        )
    })?;
    let key = contract::readable_key(&key).map_err(invalid_key)?;
    let bucket = bucket(&request)?;
    let Some(object) = objects
        .get(&bucket, key)
        .await
        .map_err(Refusal::store_failed)?
    else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "image_not_found",
            format!(
                "there is no image {key:?}; POST /images stores one (and its copies {key}_200, {key}_75)"
            ),
        ));
    };
    let content_type = object
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(([(header::CONTENT_TYPE, content_type)], object.body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copies::Format;
    use crate::copies::tests::sample;
    use axum::http::HeaderMap;
    use objects::memory::Memory;
    use serde_json::{Value, json};

    const DEV: &str = "app-dev-images-123456789012";

    async fn call(
        store: &Memory,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        bucket: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let stage_variable = bucket.map(|b| (BUCKET_STAGE_VARIABLE, b));
        let router = router(store.clone());
        lambda_kit::testing::call(router, method, path, content_type, stage_variable, body).await
    }

    async fn upload(store: &Memory, key: &str, file: &[u8]) -> (StatusCode, Value) {
        let (content_type, body) = form::encode(
            "b0undary",
            &[("s3Key", None, key.as_bytes()), ("file", Some("f"), file)],
        );
        let (status, _, answer) = call(
            store,
            "POST",
            "/images",
            Some(&content_type),
            Some(DEV),
            body,
        )
        .await;
        (status, serde_json::from_slice(&answer).unwrap())
    }

    fn dimensions(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
        let format = image::guess_format(bytes).unwrap();
        let image = image::load_from_memory_with_format(bytes, format).unwrap();
        (format, image.width(), image.height())
    }

    #[tokio::test]
    async fn a_jpeg_is_stored_with_its_two_copies() {
        let store = Memory::default();
        let file = sample(640, 480, Format::Jpeg);
        let (status, body) = upload(&store, "photos/cat.jpg", &file).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["key"], "photos/cat.jpg");
        assert_eq!(body["format"], "jpeg");
        assert_eq!(
            (body["width"].as_u64(), body["height"].as_u64()),
            (Some(640), Some(480))
        );
        assert_eq!(body["bytes"], file.len());
        let copies: Vec<_> = body["copies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["key"].clone(), c["width"].clone(), c["height"].clone()))
            .collect();
        assert_eq!(
            copies,
            [
                (json!("photos/cat.jpg_200"), json!(200), json!(150)),
                (json!("photos/cat.jpg_75"), json!(75), json!(56)),
            ]
        );
        let contents = store.contents();
        let object = |key: &str| contents[&(DEV.to_owned(), key.to_owned())].clone();
        assert_eq!(object("photos/cat.jpg").body, file);
        for (key, width, height) in [
            ("photos/cat.jpg_200", 200, 150),
            ("photos/cat.jpg_75", 75, 56),
        ] {
            let copy = object(key);
            assert_eq!(copy.content_type.as_deref(), Some("image/jpeg"));
            assert_eq!(
                dimensions(&copy.body),
                (image::ImageFormat::Jpeg, width, height)
            );
        }
        assert_eq!(contents.len(), 3);
    }

    #[tokio::test]
    async fn the_copies_are_read_back_through_get() {
        let store = Memory::default();
        let file = sample(100, 400, Format::Png);
        assert_eq!(
            upload(&store, "tall.png", &file).await.0,
            StatusCode::CREATED
        );
        let (status, headers, body) = call(
            &store,
            "GET",
            "/images/tall.png_75",
            None,
            Some(DEV),
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(dimensions(&body), (image::ImageFormat::Png, 75, 300));
        let (status, _, body) =
            call(&store, "GET", "/images/tall.png", None, Some(DEV), vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, file);
        let (status, _, body) = call(
            &store,
            "GET",
            "/images/nothing.png",
            None,
            Some(DEV),
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "image_not_found");
    }

    #[tokio::test]
    async fn a_second_upload_to_a_key_replaces_it_and_its_copies() {
        let store = Memory::default();
        upload(&store, "a.png", &sample(400, 400, Format::Png)).await;
        let (status, _) = upload(&store, "a.png", &sample(400, 100, Format::Png)).await;
        assert_eq!(status, StatusCode::CREATED);
        let copy = &store.contents()[&(DEV.to_owned(), "a.png_200".to_owned())];
        assert_eq!(dimensions(&copy.body).2, 50);
    }

    #[tokio::test]
    async fn no_stage_variable_or_a_failing_bucket_is_a_500_naming_it() {
        let store = Memory::default();
        let (content_type, body) = form::encode(
            "b",
            &[
                ("s3Key", None, b"a.png"),
                ("file", None, &sample(10, 10, Format::Png)),
            ],
        );
        let (status, _, answer) = call(
            &store,
            "POST",
            "/images",
            Some(&content_type),
            None,
            body.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(json["error"], "missing_stage_variable");
        assert!(store.contents().is_empty());
        let failing = Memory::failing();
        let (status, _, answer) = call(
            &failing,
            "POST",
            "/images",
            Some(&content_type),
            Some(DEV),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(json["error"], "store_error");
        assert!(json["message"].as_str().unwrap().contains(DEV));
    }

    /// path, content type, body, expected status, expected error code.
    type BadInput<'a> = (&'a str, &'a str, Option<String>, Vec<u8>, u16, &'a str);

    /// Every bad upload and read: its status, its error code, a message, and the bucket
    /// unchanged (it holds one earlier upload and its copies).
    #[tokio::test]
    async fn every_bad_input_is_a_4xx_with_json_and_writes_nothing() {
        let png = sample(40, 30, Format::Png);
        let form = |fields: &[(&str, Option<&str>, &[u8])]| {
            let (ct, body) = form::encode("bnd", fields);
            (Some(ct), body)
        };
        let with_key =
            |key: &str| form(&[("s3Key", None, key.as_bytes()), ("file", Some("f"), &png)]);
        let mut truncated = png.clone();
        truncated.truncate(50);
        let mut cases: Vec<BadInput> = Vec::new();
        let mut post = |ct_body: (Option<String>, Vec<u8>), status, error| {
            cases.push(("POST", "/images", ct_body.0, ct_body.1, status, error));
        };
        for bad_key in [
            "../etc/passwd",
            "a/../b",
            "/abs",
            "a b.png",
            "",
            "x.png_200",
            "x_75",
        ] {
            post(with_key(bad_key), 400, "invalid_key");
        }
        post(
            with_key(&"k".repeat(contract::MAX_KEY_LEN + 1)),
            400,
            "invalid_key",
        );
        post(
            form(&[
                ("s3Key", None, b"a.txt"),
                ("file", Some("a.txt"), b"just text"),
            ]),
            400,
            "not_an_image",
        );
        post(
            form(&[("s3Key", None, b"e.png"), ("file", Some("e.png"), b"")]),
            400,
            "not_an_image",
        );
        post(
            form(&[
                ("s3Key", None, b"t.png"),
                ("file", Some("t.png"), &truncated),
            ]),
            400,
            "corrupt_image",
        );
        post(form(&[("file", Some("f"), &png)]), 400, "missing_field");
        post(form(&[("s3Key", None, b"k.png")]), 400, "missing_field");
        post(
            form(&[
                ("s3Key", None, b"k.png"),
                ("file", None, &png),
                ("file", None, &png),
            ]),
            400,
            "repeated_field",
        );
        post(
            form(&[
                ("s3Key", None, b"k.png"),
                ("file", None, &png),
                ("acl", None, b"public-read"),
            ]),
            400,
            "unknown_field",
        );
        post(
            (Some("multipart/form-data".into()), png.clone()),
            400,
            "malformed_form",
        );
        post(
            (
                Some("multipart/form-data; boundary=zz".into()),
                b"no parts".to_vec(),
            ),
            400,
            "malformed_form",
        );
        post(
            (Some("image/png".into()), png.clone()),
            415,
            "unsupported_media_type",
        );
        post((None, png.clone()), 415, "unsupported_media_type");
        let big = vec![0u8; contract::MAX_BODY_BYTES + 1];
        post(
            form(&[("s3Key", None, b"big.png"), ("file", None, &big)]),
            413,
            "upload_too_large",
        );
        cases.push(("GET", "/images/..%2Fx", None, vec![], 400, "invalid_key"));
        cases.push(("GET", "/images/a//b", None, vec![], 400, "invalid_key"));
        cases.push(("GET", "/images/", None, vec![], 404, "not_found"));
        cases.push(("PUT", "/images", None, vec![], 405, "method_not_allowed"));
        cases.push((
            "DELETE",
            "/images/first.png",
            None,
            vec![],
            405,
            "method_not_allowed",
        ));

        let store = Memory::default();
        assert_eq!(
            upload(&store, "first.png", &png).await.0,
            StatusCode::CREATED
        );
        let before = store.contents();
        assert_eq!(before.len(), 3);
        for (method, path, content_type, body, status, error) in cases {
            let case = format!("{method} {path} {content_type:?} ({} bytes)", body.len());
            let (got, _, answer) = call(
                &store,
                method,
                path,
                content_type.as_deref(),
                Some(DEV),
                body,
            )
            .await;
            let json: Value = serde_json::from_slice(&answer).expect("a JSON error");
            assert_eq!(got.as_u16(), status, "{case}: {json}");
            assert_eq!(json["error"], error, "{case}: {json}");
            let message = json["message"].as_str().unwrap_or_default();
            assert!(
                message.len() > 20,
                "{case}: the message says what was wrong: {json}"
            );
            assert_eq!(store.contents(), before, "{case} wrote to the bucket");
        }
    }
}
