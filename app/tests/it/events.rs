//! Real API Gateway / function URL events fed through the handler exactly as
//! `lambda_http::run` does it: `Adapter` over `app::lambda_service()`, the proxy response
//! serialised as Lambda would return it.
use app::build_info;
use lambda_http::lambda_runtime::Config;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, RequestExt};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const ARN: &str = "arn:aws:lambda:eu-west-2:123456789012:function:app";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn context(invoked_arn: &str, version: &str) -> Context {
    let config = Config {
        function_name: "app".into(),
        version: version.into(),
        memory: 128,
        ..Config::default()
    };
    let mut ctx = Context::default();
    ctx.request_id = "8f5f0b3e-1d2c-4b6a-9e7f-0a1b2c3d4e5f".into();
    ctx.invoked_function_arn = invoked_arn.into();
    ctx.env_config = Arc::new(config);
    ctx
}

/// Invokes the handler and returns the proxy response JSON that Lambda would send back.
async fn invoke(event: Value, ctx: Context) -> Value {
    let payload: LambdaRequest = serde_json::from_value(event).expect("event deserialises");
    let adapter = Adapter::from(app::lambda_service());
    let response = adapter
        .oneshot(LambdaEvent::new(payload, ctx))
        .await
        .expect("handler never fails");
    serde_json::to_value(response).expect("response serialises")
}

/// A header from either `headers` or `multiValueHeaders` (REST responses use the latter).
fn header(response: &Value, name: &str) -> Option<String> {
    if let Some(v) = response["headers"][name].as_str() {
        return Some(v.to_owned());
    }
    response["multiValueHeaders"][name].as_array().map(|vs| {
        vs.iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn json_body(response: &Value) -> Value {
    let body = response["body"].as_str().expect("a text body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body}"))
}

fn assert_build_fields(body: &Value) {
    assert_eq!(body["name"], "app");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["git"]["sha"], build_info::GIT_SHA);
    assert_eq!(
        body["git"]["short_sha"],
        build_info::short_sha(build_info::GIT_SHA)
    );
    for field in ["branch", "commit_timestamp"] {
        assert!(body["git"][field].is_string(), "git.{field}: {body}");
    }
    assert!(body["git"]["dirty"].is_boolean() || body["git"]["dirty"] == "unknown");
    for field in ["timestamp", "rustc", "target", "profile"] {
        assert!(body["build"][field].is_string(), "build.{field}: {body}");
    }
    assert_eq!(body["build"]["target"], build_info::BUILD_TARGET);
}

#[tokio::test]
async fn rest_stage_dev_routes_dev_build_info_to_build_info() {
    let event = fixture("apigw-rest-dev-build-info.json");
    assert_eq!(event["requestContext"]["path"], "/dev/build-info");
    let response = invoke(event, context(&format!("{ARN}:dev"), "7")).await;

    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    let body = json_body(&response);
    assert_build_fields(&body);
    assert_eq!(body["stage"], "dev");
    assert_eq!(body["region"], "eu-west-2");
    assert_eq!(
        body["lambda"],
        serde_json::json!({"function_name": "app", "function_version": "7", "alias": "dev"})
    );
}

#[tokio::test]
async fn rest_root_says_hello() {
    let response = invoke(fixture("apigw-rest-dev-root.json"), context(ARN, "3")).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response["body"], "Hello, World!");
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    for (fixture_name, content_type) in [
        ("apigw-rest-dev-root.json", "text/plain; charset=utf-8"),
        ("apigw-rest-dev-build-info.json", "application/json"),
    ] {
        let mut event = fixture(fixture_name);
        event["httpMethod"] = "HEAD".into();
        let response = invoke(event, context(ARN, "3")).await;
        assert_eq!(response["statusCode"], 200, "{fixture_name}: {response}");
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some(content_type)
        );
        let body = response["body"].as_str().unwrap_or_default();
        assert!(
            body.is_empty(),
            "{fixture_name}: HEAD returned a body: {body}"
        );
    }
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let mut event = fixture("apigw-rest-dev-build-info.json");
    event["path"] = "/build-infos".into();
    let response = invoke(event, context(ARN, "3")).await;
    assert_eq!(response["statusCode"], 404, "{response}");
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    let body = json_body(&response);
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"].as_str().unwrap().contains("/build-infos"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    for path in ["/", "/build-info"] {
        let mut event = fixture("apigw-rest-dev-build-info.json");
        event["path"] = path.into();
        event["httpMethod"] = "DELETE".into();
        let response = invoke(event, context(ARN, "3")).await;
        assert_eq!(response["statusCode"], 405, "{path}: {response}");
        let allow = header(&response, "allow").expect("an Allow header");
        let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["GET", "HEAD"], "{path}");
        assert_eq!(json_body(&response)["error"], "method_not_allowed");
    }
}

#[tokio::test]
async fn http_api_named_stage_is_stripped_and_reported() {
    let event = fixture("apigw-http-v2-dev-build-info.json");
    assert_eq!(event["rawPath"], "/dev/build-info");
    // Invoked unqualified: no alias, and $LATEST is the version that ran.
    let response = invoke(event, context(ARN, "$LATEST")).await;

    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["headers"]["content-type"], "application/json");
    let body = json_body(&response);
    assert_build_fields(&body);
    assert_eq!(body["stage"], "dev");
    assert_eq!(body["lambda"]["function_version"], "$LATEST");
    assert_eq!(body["lambda"]["alias"], Value::Null);
}

#[tokio::test]
async fn function_url_has_no_stage() {
    let response = invoke(
        fixture("function-url-build-info.json"),
        context(&format!("{ARN}:live"), "12"),
    )
    .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body = json_body(&response);
    assert_build_fields(&body);
    assert_eq!(body["stage"], Value::Null);
    assert_eq!(body["lambda"]["alias"], "live");
    assert_eq!(body["lambda"]["function_version"], "12");
}

#[test]
fn stripping_the_stage_keeps_the_query() {
    let text = fixture("apigw-http-v2-dev-build-info.json").to_string();
    let request = app::route_without_stage(lambda_http::request::from_str(&text).unwrap());
    assert_eq!(request.uri().path(), "/build-info");
    assert_eq!(request.uri().query(), Some("verbose=1"));
    assert_eq!(request.raw_http_path(), "/dev/build-info");
}

#[test]
fn stage_less_paths_are_left_alone() {
    // What lambda_http produces when AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH is set: the path is
    // already stage-less, and stripping must not touch it.
    let text = fixture("apigw-rest-dev-build-info.json").to_string();
    let mut request = lambda_http::request::from_str(&text).unwrap();
    *request.uri_mut() = "https://k3xq7mz2ab.execute-api.eu-west-2.amazonaws.com/build-info"
        .parse()
        .unwrap();
    let request = app::route_without_stage(request);
    assert_eq!(request.uri().path(), "/build-info");
}

#[tokio::test]
async fn every_answer_names_the_lambda_version_errors_included() {
    let sha = build_info::short_sha(build_info::GIT_SHA);
    let mut missing = fixture("apigw-rest-dev-build-info.json");
    missing["path"] = "/nowhere".into();
    let mut wrong_method = fixture("apigw-rest-dev-build-info.json");
    wrong_method["httpMethod"] = "DELETE".into();
    for (event, status) in [
        (fixture("apigw-rest-dev-root.json"), 200),
        (missing, 404),
        (wrong_method, 405),
    ] {
        let response = invoke(event, context(&format!("{ARN}:live"), "12")).await;
        assert_eq!(response["statusCode"], status, "{response}");
        assert_eq!(header(&response, "x-app-version").as_deref(), Some("12"));
        assert_eq!(header(&response, "x-app-git-sha").as_deref(), Some(sha));
    }
}
