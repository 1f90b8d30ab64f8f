//! The HTTP side of the notes API: one axum `Router`. PUT answers JSON naming the key, GET
//! answers the note's text; every refusal is a 4xx JSON error that says what was wrong and
//! writes nothing.
use crate::contract::{self, InputError};
use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lambda_kit::refusal::{self, Refusal};
use objects::{Objects, PutNew};
use serde::Serialize;
use std::sync::Arc;

/// The API Gateway stage variable naming the stage's notes bucket. A published version is
/// shared by every stage, so the bucket cannot be in its environment.
pub const BUCKET_STAGE_VARIABLE: &str = "notesBucket";

const ROUTES: &str = "GET or PUT /notes/{name}";

pub fn router<O: Objects>(objects: O) -> Router {
    let router = Router::new()
        // `get` answers HEAD too; other methods get 405 + Allow.
        .route("/notes/{name}", get(get_note::<O>).put(put_note::<O>))
        .with_state(Arc::new(objects))
        .fallback(
            |method: Method, uri: Uri| async move { refusal::not_found(&method, &uri, ROUTES) },
        )
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            refusal::method_not_allowed(&method, &uri)
        });
    lambda_kit::with_common_layers(router, crate::build_info::BINARY)
}

/// PUT's answer: which note, where it is, how long, and whether this PUT created it.
#[derive(Debug, Serialize)]
struct Written<'a> {
    name: &'a str,
    key: &'a str,
    bytes: usize,
    created: bool,
}

fn refused(e: InputError) -> Refusal {
    let (status, code) = match e {
        InputError::EmptyName
        | InputError::BadCharacter(_)
        | InputError::LeadingDot(_)
        | InputError::NameTooLong(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
        InputError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        InputError::NotUtf8(_) => (StatusCode::BAD_REQUEST, "not_utf8"),
        InputError::Charset(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    };
    Refusal::new(status, code, e.to_string())
}

/// The name from the path and its key.
fn name_and_key(path: Result<Path<String>, PathRejection>) -> Result<(String, String), Refusal> {
    let Path(name) = path.map_err(|e| {
        Refusal::bad_request(
            "invalid_name",
            format!("the note's name in the path cannot be read ({e})"),
        )
    })?;
    let key = contract::key(&name).map_err(refused)?;
    Ok((name, key))
}

fn bucket(request: &Request) -> Result<String, Refusal> {
    refusal::stage_variable(request, BUCKET_STAGE_VARIABLE, "notes bucket")
}

async fn get_note<O: Objects>(
    State(objects): State<Arc<O>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let (name, key) = name_and_key(path)?;
    let bucket = bucket(&request)?;
    let Some(note) = objects
        .get(&bucket, &key)
        .await
        .map_err(Refusal::store_failed)?
    else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "note_not_found",
            format!("there is no note {name:?}; PUT /notes/{name} writes it"),
        ));
    };
    Ok(([(header::CONTENT_TYPE, contract::CONTENT_TYPE)], note.body).into_response())
}

async fn put_note<O: Objects>(
    State(objects): State<Arc<O>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let (name, key) = name_and_key(path)?;
    match refusal::media_type(request.headers()) {
        Some((essence, given)) if essence == "text/plain" => {
            contract::check_charset(&given).map_err(refused)?;
        }
        other => {
            let given = other.map(|(_, given)| given);
            return Err(refusal::unsupported_media_type(
                given.as_deref(),
                "text/plain (UTF-8)",
            ));
        }
    }
    // Every refusal of the client's input comes first, the stage's configuration after.
    let bucket = bucket(&request);
    let bytes = axum::body::to_bytes(request.into_body(), contract::MAX_BODY_BYTES)
        .await
        .map_err(|_| refused(InputError::TooLarge))?;
    let text = contract::body(&bytes).map_err(refused)?;
    let bucket = bucket?;
    let body = text.as_bytes().to_vec();
    let created = match objects
        .put_new(&bucket, &key, body.clone(), contract::CONTENT_TYPE)
        .await
        .map_err(Refusal::store_failed)?
    {
        PutNew::Created => true,
        PutNew::Exists => {
            objects
                .put(&bucket, &key, body, contract::CONTENT_TYPE)
                .await
                .map_err(Refusal::store_failed)?;
            false
        }
    };
    let status = match created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    let written = Written {
        name: &name,
        key: &key,
        bytes: text.len(),
        created,
    };
    Ok((status, Json(written)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use objects::memory::Memory;
    use serde_json::Value;

    const DEV: &str = "app-dev-notes-123456789012";
    const TEXT: Option<&str> = Some("text/plain");

    /// One request through the router with the stage variables API Gateway would send:
    /// (status, headers, body bytes).
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

    async fn put(store: &Memory, name: &str, text: &str) -> (StatusCode, Value) {
        let path = format!("/notes/{name}");
        let (status, _, body) = call(
            store,
            "PUT",
            &path,
            TEXT,
            Some(DEV),
            text.as_bytes().to_vec(),
        )
        .await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn stored(store: &Memory, key: &str) -> Option<Vec<u8>> {
        let contents = store.contents();
        contents
            .get(&(DEV.to_owned(), key.to_owned()))
            .map(|o| o.body.clone())
    }

    #[tokio::test]
    async fn a_new_note_is_201_and_a_replaced_one_200_both_naming_the_key() {
        let store = Memory::default();
        let (status, body) = put(&store, "hello", "first").await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            body,
            serde_json::json!({"name": "hello", "key": "hello.txt", "bytes": 5, "created": true})
        );
        let (status, body) = put(&store, "hello", "second!").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({"name": "hello", "key": "hello.txt", "bytes": 7, "created": false})
        );
        assert_eq!(stored(&store, "hello.txt").unwrap(), b"second!");
        let contents = store.contents();
        assert_eq!(contents.len(), 1);
        let object = contents.values().next().unwrap();
        assert_eq!(object.content_type.as_deref(), Some(contract::CONTENT_TYPE));
    }

    #[tokio::test]
    async fn get_answers_the_text_as_written() {
        let store = Memory::default();
        let text = "line one\nligne deux: été\n";
        put(&store, "Todo", text).await;
        let (status, headers, body) =
            call(&store, "GET", "/notes/Todo", None, Some(DEV), vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], contract::CONTENT_TYPE);
        assert_eq!(body, text.as_bytes());
        // Names are case-sensitive.
        let (status, _, body) = call(&store, "GET", "/notes/todo", None, Some(DEV), vec![]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "note_not_found");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("PUT /notes/todo")
        );
    }

    #[tokio::test]
    async fn the_bucket_is_the_stage_variables() {
        let store = Memory::default();
        put(&store, "a", "x").await;
        let other = "app-test-notes-123456789012";
        let (status, _, _) = call(&store, "GET", "/notes/a", None, Some(other), vec![]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, body) = call(&store, "GET", "/notes/a", None, None, vec![]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "missing_stage_variable");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains(BUCKET_STAGE_VARIABLE)
        );
        let (status, _, _) = call(&store, "PUT", "/notes/b", TEXT, None, b"x".to_vec()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(store.contents().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_bucket_is_a_500_naming_it() {
        let store = Memory::failing();
        let (status, body) = put(&store, "a", "x").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "store_error");
        assert!(body["message"].as_str().unwrap().contains(DEV), "{body}");
    }

    #[tokio::test]
    async fn answers_carry_the_version_headers() {
        let store = Memory::default();
        let (_, headers, _) = call(&store, "GET", "/notes/a", None, Some(DEV), vec![]).await;
        assert_eq!(headers[lambda_kit::VERSION_HEADER], "local");
    }

    /// method, path, content type, body, expected status, expected error code.
    type BadInput<'a> = (&'a str, String, Option<&'a str>, Vec<u8>, u16, &'a str);

    /// Every bad input: its status, its error code, a message, and nothing written (the
    /// bucket holds the one earlier note, unchanged).
    #[tokio::test]
    async fn every_bad_input_is_a_4xx_with_json_and_writes_nothing() {
        let text = b"text".to_vec();
        let long = "n".repeat(contract::MAX_NAME_LEN + 1);
        let cases: Vec<BadInput> = vec![
            (
                "PUT",
                "/notes/..".into(),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "PUT",
                "/notes/.".into(),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "PUT",
                "/notes/a%2Fb".into(),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "PUT",
                "/notes/..%2Fx".into(),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "PUT",
                "/notes/a%20b".into(),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "PUT",
                format!("/notes/{long}"),
                TEXT,
                text.clone(),
                400,
                "invalid_name",
            ),
            (
                "GET",
                "/notes/.hidden".into(),
                None,
                vec![],
                400,
                "invalid_name",
            ),
            (
                "PUT",
                "/notes/".into(),
                TEXT,
                text.clone(),
                404,
                "not_found",
            ),
            ("PUT", "/notes".into(), TEXT, text.clone(), 404, "not_found"),
            (
                "PUT",
                "/notes/a/b".into(),
                TEXT,
                text.clone(),
                404,
                "not_found",
            ),
            (
                "PUT",
                "/notes/big".into(),
                TEXT,
                vec![b'a'; contract::MAX_BODY_BYTES + 1],
                413,
                "body_too_large",
            ),
            (
                "PUT",
                "/notes/bin".into(),
                TEXT,
                vec![0xff, 0x00, 0xfe],
                400,
                "not_utf8",
            ),
            (
                "PUT",
                "/notes/j".into(),
                Some("application/json"),
                br#"{"text":"x"}"#.to_vec(),
                415,
                "unsupported_media_type",
            ),
            (
                "PUT",
                "/notes/j".into(),
                None,
                text.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "PUT",
                "/notes/j".into(),
                Some("text/plain; charset=iso-8859-1"),
                text.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/notes/a".into(),
                TEXT,
                text.clone(),
                405,
                "method_not_allowed",
            ),
            (
                "DELETE",
                "/notes/a".into(),
                None,
                vec![],
                405,
                "method_not_allowed",
            ),
        ];
        let store = Memory::default();
        assert_eq!(put(&store, "a", "kept").await.0, StatusCode::CREATED);
        let before = store.contents();
        for (method, path, content_type, body, status, error) in cases {
            let case = format!("{method} {path} {content_type:?} ({} bytes)", body.len());
            let (got, _, answer) = call(&store, method, &path, content_type, Some(DEV), body).await;
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
