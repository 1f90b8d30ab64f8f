//! The HTTP side of the birthday API: one axum `Router`, every answer JSON (204 aside), every
//! refusal a 4xx that says what was wrong and writes nothing.
use crate::clock::Clock;
use crate::contract::{self, InputError};
use crate::store::Store;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lambda_http::RequestExt;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The API Gateway stage variable naming the stage's table (`birthday-<stage>`). A published
/// version is shared by every stage, so the table cannot be in its environment.
pub const TABLE_STAGE_VARIABLE: &str = "birthdayTable";
/// The largest PUT body read: `{"dateOfBirth": "YYYY-MM-DD"}` is 29 bytes, and 1 KiB leaves
/// room for whitespace without reading whatever a client streams.
pub const MAX_BODY_BYTES: usize = 1024;

struct Api<S, C> {
    store: S,
    clock: C,
}

pub fn router<S: Store, C: Clock>(store: S, clock: C) -> Router {
    let api = Arc::new(Api { store, clock });
    let router = Router::new()
        // `get` answers HEAD too; other methods get 405 + Allow.
        .route(
            "/hello/{username}",
            get(get_hello::<S, C>).put(put_hello::<S, C>),
        )
        .with_state(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    lambda_kit::with_common_layers(router, crate::build_info::BINARY)
}

/// `{"error": <code>, "message": <what was wrong and what to do>}`, as `app` answers errors.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

/// A refusal: the status and the JSON body saying why.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, error, message) = self;
        (status, Json(ErrorBody { error, message })).into_response()
    }
}

impl From<InputError> for Refusal {
    fn from(e: InputError) -> Self {
        let code = match e {
            InputError::EmptyUsername | InputError::NotLetters(_) | InputError::TooLong(_) => {
                "invalid_username"
            }
            InputError::DateFormat(_) | InputError::NotARealDate(_) => "invalid_date",
            InputError::NotInThePast { .. } => "date_not_in_the_past",
        };
        Refusal(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

fn bad_request(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, code, message.into())
}

/// The username from the path, validated: (as written, the table key).
fn username(path: Result<Path<String>, PathRejection>) -> Result<(String, String), Refusal> {
    let Path(name) = path.map_err(|e| {
        bad_request(
            "invalid_username",
            format!("the username in the path cannot be read ({e}); use letters A-Z or a-z"),
        )
    })?;
    let key = contract::user_key(&name)?;
    Ok((name, key))
}

/// The stage's table, from the request's stage variables (absent when the function is not
/// behind API Gateway, or the stage lacks the variable: a deployment error, hence 500).
fn table(request: &Request) -> Result<String, Refusal> {
    request
        .stage_variables_ref()
        .and_then(|vars| vars.first(TABLE_STAGE_VARIABLE))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "missing_stage_variable",
                format!(
                    "the API Gateway stage has no stage variable {TABLE_STAGE_VARIABLE} naming its DynamoDB table; set it on the stage (Terraform does)"
                ),
            )
        })
}

fn store_failed(e: crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "store");
    Refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store_error",
        e.to_string(),
    )
}

async fn get_hello<S: Store, C: Clock>(
    State(api): State<Arc<Api<S, C>>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let (name, key) = username(path)?;
    let table = table(&request)?;
    let stored = api.store.get(&table, &key).await.map_err(store_failed)?;
    let Some(stored) = stored else {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no date of birth is stored for {name:?}; PUT /hello/{name} first"),
        ));
    };
    let born = contract::parse_date(&stored).map_err(|e| {
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            format!("the stored date of birth of {key:?} in table {table} is unreadable: {e}"),
        )
    })?;
    let message = contract::greeting(&name, born, api.clock.today());
    Ok(Json(serde_json::json!({ "message": message })).into_response())
}

async fn put_hello<S: Store, C: Clock>(
    State(api): State<Arc<Api<S, C>>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let (_, key) = username(path)?;
    check_json_content_type(&request)?;
    // Every refusal of the client's input comes first, the stage's configuration after.
    let table = table(&request);
    let body = read_body(request.into_body()).await?;
    let date = date_of_birth(&body, api.clock.today())?;
    let table = table?;
    let date = date.format("%Y-%m-%d").to_string();
    api.store
        .put(&table, &key, &date)
        .await
        .map_err(store_failed)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `application/json`, parameters (`; charset=utf-8`) allowed, any letter case.
fn check_json_content_type(request: &Request) -> Result<(), Refusal> {
    let given = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = given.as_deref().map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if essence.as_deref() == Some("application/json") {
        return Ok(());
    }
    Err(Refusal(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        match given {
            Some(v) => format!("Content-Type is {v:?}; send application/json"),
            None => "no Content-Type; send application/json".to_owned(),
        },
    ))
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is over {MAX_BODY_BYTES} bytes; send only {{\"dateOfBirth\": \"YYYY-MM-DD\"}}"
            ),
        )
    })
}

/// The body's one field, `dateOfBirth`, as a date strictly before `today`.
fn date_of_birth(body: &[u8], today: chrono::NaiveDate) -> Result<chrono::NaiveDate, Refusal> {
    const EXPECTED: &str = "send {\"dateOfBirth\": \"YYYY-MM-DD\"}";
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_request(
            "malformed_json",
            format!("the body is not valid JSON ({e}); {EXPECTED}"),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(bad_request(
            "malformed_json",
            format!("the body is not a JSON object; {EXPECTED}"),
        ));
    };
    let date = fields.remove("dateOfBirth");
    if let Some(unknown) = first_key(&fields) {
        return Err(bad_request(
            "unknown_field",
            format!("unknown field {unknown:?}; {EXPECTED}"),
        ));
    }
    match date {
        None => Err(bad_request(
            "missing_field",
            format!("the field dateOfBirth is missing; {EXPECTED}"),
        )),
        Some(Value::String(text)) => Ok(contract::date_of_birth(&text, today)?),
        Some(other) => Err(bad_request(
            "invalid_date",
            format!("dateOfBirth is {other}, not a string; {EXPECTED}"),
        )),
    }
}

fn first_key(fields: &Map<String, Value>) -> Option<&str> {
    fields.keys().next().map(String::as_str)
}

async fn not_found(method: Method, uri: Uri) -> Refusal {
    Refusal(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {method} {}; try GET or PUT /hello/{{username}}",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Refusal {
    Refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; use GET or PUT (see the Allow header)",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use chrono::NaiveDate;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// The table as the tests see it: (table, key) -> date of birth.
    type Tables = Arc<Mutex<BTreeMap<(String, String), String>>>;

    /// DynamoDB's two calls over a map; `failing` makes every call fail as a throttled or
    /// unreachable table would.
    #[derive(Clone, Default)]
    struct Memory {
        tables: Tables,
        failing: bool,
    }

    impl Store for Memory {
        async fn get(&self, table: &str, key: &str) -> Result<Option<String>, StoreError> {
            self.fail(table)?;
            let tables = self.tables.lock().unwrap();
            Ok(tables.get(&(table.to_owned(), key.to_owned())).cloned())
        }

        async fn put(&self, table: &str, key: &str, date: &str) -> Result<(), StoreError> {
            self.fail(table)?;
            let mut tables = self.tables.lock().unwrap();
            tables.insert((table.to_owned(), key.to_owned()), date.to_owned());
            Ok(())
        }
    }

    impl Memory {
        fn fail(&self, table: &str) -> Result<(), StoreError> {
            match self.failing {
                true => Err(StoreError {
                    table: table.to_owned(),
                    message: "service unavailable".to_owned(),
                }),
                false => Ok(()),
            }
        }

        fn contents(&self) -> BTreeMap<(String, String), String> {
            self.tables.lock().unwrap().clone()
        }
    }

    struct Fixed(NaiveDate);

    impl Clock for Fixed {
        fn today(&self) -> NaiveDate {
            self.0
        }
    }

    const TODAY: &str = "2026-12-06";
    const DEV: &str = "birthday-dev";

    fn today() -> NaiveDate {
        contract::parse_date(TODAY).unwrap()
    }

    fn request(method: &str, path: &str) -> axum::http::request::Builder {
        axum::http::Request::builder().method(method).uri(path)
    }

    /// One request through the router with the stage variables API Gateway would send.
    async fn call(
        store: &Memory,
        builder: axum::http::request::Builder,
        table: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = builder.body(Body::from(body.to_owned())).unwrap();
        if let Some(table) = table {
            let vars: HashMap<String, String> =
                [(TABLE_STAGE_VARIABLE.to_owned(), table.to_owned())].into();
            req = req.with_stage_variables(vars);
        }
        let response = router(store.clone(), Fixed(today()))
            .oneshot(req)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = match bytes.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&bytes).expect("every answer with a body is JSON"),
        };
        (status, json, headers)
    }

    async fn put(store: &Memory, user: &str, date: &str) -> StatusCode {
        let body = format!("{{\"dateOfBirth\": \"{date}\"}}");
        let builder =
            request("PUT", &format!("/hello/{user}")).header("content-type", "application/json");
        call(store, builder, Some(DEV), &body).await.0
    }

    async fn get(store: &Memory, user: &str) -> (StatusCode, Value) {
        let builder = request("GET", &format!("/hello/{user}"));
        let (status, json, _) = call(store, builder, Some(DEV), "").await;
        (status, json)
    }

    #[tokio::test]
    async fn put_then_get_counts_the_days() {
        let store = Memory::default();
        assert_eq!(
            put(&store, "Nando", "1990-12-25").await,
            StatusCode::NO_CONTENT
        );
        let (status, body) = get(&store, "Nando").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({"message": "Hello, Nando! Your birthday is in 19 day(s)"})
        );
        assert_eq!(
            store.contents(),
            BTreeMap::from([(
                (DEV.to_owned(), "nando".to_owned()),
                "1990-12-25".to_owned()
            )])
        );
    }

    #[tokio::test]
    async fn a_birthday_today_is_happy() {
        let store = Memory::default();
        assert_eq!(
            put(&store, "ana", "2000-12-06").await,
            StatusCode::NO_CONTENT
        );
        let (status, body) = get(&store, "ana").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["message"], "Hello, ana! Happy birthday!");
    }

    #[tokio::test]
    async fn a_put_updates_the_date() {
        let store = Memory::default();
        assert_eq!(
            put(&store, "ana", "2000-12-06").await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            put(&store, "ana", "2000-12-08").await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            get(&store, "ana").await.1["message"],
            "Hello, ana! Your birthday is in 2 day(s)"
        );
        assert_eq!(store.contents().len(), 1);
    }

    #[tokio::test]
    async fn nando_and_nando_are_one_user_greeted_as_written() {
        let store = Memory::default();
        assert_eq!(
            put(&store, "Nando", "1990-12-07").await,
            StatusCode::NO_CONTENT
        );
        let (status, body) = get(&store, "nando").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["message"],
            "Hello, nando! Your birthday is in 1 day(s)"
        );
        assert_eq!(
            put(&store, "NANDO", "1990-12-08").await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(store.contents().len(), 1, "{:?}", store.contents());
    }

    #[tokio::test]
    async fn an_unknown_user_is_a_404_with_json() {
        let store = Memory::default();
        let (status, body) = get(&store, "nobody").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "user_not_found");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("PUT /hello/nobody"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_table_is_the_stage_variables() {
        let store = Memory::default();
        assert_eq!(
            put(&store, "ana", "2000-01-01").await,
            StatusCode::NO_CONTENT
        );
        // The same user on another stage's table is unknown there.
        let (status, _, _) = call(
            &store,
            request("GET", "/hello/ana"),
            Some("birthday-test"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(store.contents().keys().all(|(table, _)| table == DEV));
    }

    #[tokio::test]
    async fn no_stage_variable_is_a_500_that_says_so_and_writes_nothing() {
        let store = Memory::default();
        let builder = request("PUT", "/hello/ana").header("content-type", "application/json");
        let (status, body, _) =
            call(&store, builder, None, r#"{"dateOfBirth":"2000-01-01"}"#).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "missing_stage_variable");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(TABLE_STAGE_VARIABLE)
        );
        let (status, body, _) = call(&store, request("GET", "/hello/ana"), None, "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "missing_stage_variable");
        assert!(store.contents().is_empty());
        // The client's mistake is still named first.
        let builder = request("PUT", "/hello/ana").header("content-type", "application/json");
        let (status, body, _) =
            call(&store, builder, None, r#"{"dateOfBirth":"2023-02-30"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_date");
    }

    #[tokio::test]
    async fn a_failing_table_is_a_500_naming_it() {
        let store = Memory {
            failing: true,
            ..Memory::default()
        };
        assert_eq!(
            put(&store, "ana", "2000-01-01").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let (status, body) = get(&store, "ana").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "store_error");
        assert!(body["message"].as_str().unwrap().contains(DEV), "{body}");
    }

    #[tokio::test]
    async fn answers_carry_the_version_headers() {
        let store = Memory::default();
        let (_, _, headers) = call(&store, request("GET", "/hello/ana"), Some(DEV), "").await;
        assert_eq!(headers[lambda_kit::VERSION_HEADER], "local");
        assert_eq!(
            headers[lambda_kit::SHA_HEADER],
            lambda_kit::build_info::short_sha(crate::build_info::GIT_SHA)
        );
    }

    /// method, path, content type, body, expected status, expected error code.
    type BadInput<'a> = (&'a str, String, Option<&'a str>, String, u16, &'a str);

    /// Every bad input: its status, its error code, and nothing written (the table holds the
    /// one earlier write, unchanged).
    #[tokio::test]
    async fn every_bad_input_is_a_4xx_with_json_and_writes_nothing() {
        let json = Some("application/json");
        let good = r#"{"dateOfBirth": "2000-01-01"}"#;
        let long = "a".repeat(contract::MAX_USERNAME_LEN + 1);
        let big = format!(
            r#"{{"dateOfBirth": "2000-01-01", "pad": "{}"}}"#,
            " ".repeat(2000)
        );
        let cases: Vec<BadInput> = vec![
            (
                "PUT",
                "/hello/nando1".into(),
                json,
                good.into(),
                400,
                "invalid_username",
            ),
            (
                "PUT",
                "/hello/Nand%C3%A9".into(),
                json,
                good.into(),
                400,
                "invalid_username",
            ),
            (
                "PUT",
                format!("/hello/{long}"),
                json,
                good.into(),
                400,
                "invalid_username",
            ),
            (
                "GET",
                "/hello/na%20ndo".into(),
                None,
                String::new(),
                400,
                "invalid_username",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                format!(r#"{{"dateOfBirth": "{TODAY}"}}"#),
                400,
                "date_not_in_the_past",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateOfBirth": "2027-01-01"}"#.into(),
                400,
                "date_not_in_the_past",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateOfBirth": "2023-02-30"}"#.into(),
                400,
                "invalid_date",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateOfBirth": "1/2/2000"}"#.into(),
                400,
                "invalid_date",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateOfBirth": 20000101}"#.into(),
                400,
                "invalid_date",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateOfBirth": "2000-01-01""#.into(),
                400,
                "malformed_json",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                "[]".into(),
                400,
                "malformed_json",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                String::new(),
                400,
                "malformed_json",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                "{}".into(),
                400,
                "missing_field",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                json,
                r#"{"dateofbirth": "2000-01-01"}"#.into(),
                400,
                "unknown_field",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                Some("text/plain"),
                good.into(),
                415,
                "unsupported_media_type",
            ),
            (
                "PUT",
                "/hello/ana".into(),
                None,
                good.into(),
                415,
                "unsupported_media_type",
            ),
            ("PUT", "/hello/ana".into(), json, big, 413, "body_too_large"),
            (
                "POST",
                "/hello/ana".into(),
                json,
                good.into(),
                405,
                "method_not_allowed",
            ),
            (
                "DELETE",
                "/hello/ana".into(),
                None,
                String::new(),
                405,
                "method_not_allowed",
            ),
            (
                "PATCH",
                "/hello/ana".into(),
                json,
                good.into(),
                405,
                "method_not_allowed",
            ),
            ("PUT", "/hello".into(), json, good.into(), 404, "not_found"),
            (
                "PUT",
                "/hello/ana/more".into(),
                json,
                good.into(),
                404,
                "not_found",
            ),
        ];
        let store = Memory::default();
        assert_eq!(
            put(&store, "ana", "1999-09-09").await,
            StatusCode::NO_CONTENT
        );
        let before = store.contents();
        for (method, path, content_type, body, status, error) in cases {
            let mut builder = request(method, &path);
            if let Some(ct) = content_type {
                builder = builder.header("content-type", ct);
            }
            let (got, json, _) = call(&store, builder, Some(DEV), &body).await;
            let case = format!("{method} {path} {content_type:?} {:.60}", body);
            assert_eq!(got.as_u16(), status, "{case}: {json}");
            assert_eq!(json["error"], error, "{case}: {json}");
            let message = json["message"].as_str().unwrap_or_default();
            assert!(
                message.len() > 20,
                "{case}: the message says what was wrong: {json}"
            );
            assert_eq!(store.contents(), before, "{case} wrote to the table");
        }
    }

    #[tokio::test]
    async fn another_method_names_the_allowed_ones() {
        let store = Memory::default();
        let (status, body, headers) =
            call(&store, request("DELETE", "/hello/ana"), Some(DEV), "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "method_not_allowed");
        let allow = headers[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
    }

    #[tokio::test]
    async fn content_type_parameters_and_case_are_accepted() {
        let store = Memory::default();
        let builder =
            request("PUT", "/hello/ana").header("content-type", "Application/JSON; charset=utf-8");
        let (status, _, _) = call(
            &store,
            builder,
            Some(DEV),
            r#"{"dateOfBirth":"2000-01-01"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}
