//! How the functions that store objects (notes, images) refuse a request: a status and a JSON
//! body `{"error": <code>, "message": <what was wrong and what to do>}`, the shape `app` and
//! `birthday` answer errors in; and the checks they share (the stage's bucket, the request's
//! media type, the router's fallbacks).
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use serde::Serialize;

#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// A refusal: the status, the error code and the message saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
}

impl Refusal {
    /// A 500 `store_error` for a failed call to the function's store, logged with the cause:
    /// the caller did nothing wrong, and the next attempt may succeed.
    pub fn store_failed(e: impl std::fmt::Display) -> Refusal {
        tracing::error!(error = %e, "S3");
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            e.to_string(),
        )
    }

    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            error,
            message: message.into(),
        }
    }

    pub fn bad_request(error: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, error, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The value of the stage variable `name` (a bucket's name). Absent when the function is not
/// behind API Gateway or the stage lacks it: a deployment error, hence a 500 that names it.
pub fn stage_variable(request: &Request, name: &str, what: &str) -> Result<String, Refusal> {
    request
        .stage_variables_ref()
        .and_then(|vars| vars.first(name))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "missing_stage_variable",
                format!(
                    "the API Gateway stage has no stage variable {name} naming its {what}; set it on the stage (Terraform does)"
                ),
            )
        })
}

/// The request's media type, lower-cased, without parameters (`text/plain; charset=utf-8` ->
/// `text/plain`), and the header as sent; `None` when there is no Content-Type.
pub fn media_type(headers: &HeaderMap) -> Option<(String, String)> {
    let given = headers.get(header::CONTENT_TYPE)?;
    let given = String::from_utf8_lossy(given.as_bytes()).into_owned();
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some((essence, given))
}

/// 415 naming the Content-Type sent and the one to send.
pub fn unsupported_media_type(given: Option<&str>, expected: &str) -> Refusal {
    Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        match given {
            Some(v) => format!("Content-Type is {v:?}; send {expected}"),
            None => format!("no Content-Type; send {expected}"),
        },
    )
}

/// The router's fallback: 404 naming the routes there are.
pub fn not_found(method: &Method, uri: &Uri, routes: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}; try {routes}", uri.path()),
    )
}

/// The router's fallback for a known path: 405 (axum adds the Allow header).
pub fn method_not_allowed(method: &Method, uri: &Uri) -> Refusal {
    Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see the Allow header for the methods that are",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_media_type_is_lower_cased_without_parameters() {
        let mut headers = HeaderMap::new();
        assert_eq!(media_type(&headers), None);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Text/Plain; charset=UTF-8"),
        );
        let (essence, given) = media_type(&headers).unwrap();
        assert_eq!(essence, "text/plain");
        assert_eq!(given, "Text/Plain; charset=UTF-8");
        let refusal = unsupported_media_type(Some(&given), "text/plain");
        assert_eq!(refusal.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(refusal.message.contains("send text/plain"), "{refusal:?}");
    }
}
