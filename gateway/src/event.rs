//! The REST API proxy integration (payload 1.0): an HTTP request becomes the event API Gateway
//! sends to Lambda, and the function's answer becomes the HTTP response. Pure functions; the
//! shapes follow the fixtures in `app/tests/fixtures/apigw-rest-*.json`, which were captured
//! from API Gateway.
//!
//! The event is a tree of borrowed structs serialized straight to bytes rather than a
//! `serde_json::Value`: it is built on every request, and the `Value` tree (a map node and
//! a string copy per field) was a tenth of the gateway's CPU per request.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// One request as the gateway received it, split from the transport.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The raw path, stage included: `/dev/build-info`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// In arrival order; a name may repeat.
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    pub body: &'a [u8],
    pub source_ip: String,
}

/// What API Gateway knows of the stage and the request, besides the request itself.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub stage: &'a str,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub api_id: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub request_id: &'a str,
    pub extended_request_id: &'a str,
    pub trace_id: &'a str,
    pub epoch_millis: u128,
    pub http_date: &'a str,
    /// The resource the path selected (`/hello/{username}`; see `resources`).
    pub resource: &'a str,
    /// Its path parameters, decoded; empty for a resource without any.
    pub path_parameters: &'a BTreeMap<String, String>,
    /// The REST API's `binaryMediaTypes` (project.json's `binary_media_types`).
    pub binary_media_types: &'a [String],
}

/// `/dev/build-info` -> (`dev`, `/build-info`); `/dev` and `/dev/` -> (`dev`, `/`).
pub fn split_stage(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (stage, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!stage.is_empty()).then_some((stage, tail))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (an HTTP date) -> `06/Nov/1994:08:49:37 +0000`, the
/// `requestTime` format of API Gateway.
pub fn request_time(http_date: &str) -> String {
    let parts: Vec<&str> = http_date.split_whitespace().collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("{day}/{month}/{year}:{time} +0000"),
        _ => http_date.to_string(),
    }
}

/// Whether API Gateway hands a request body to Lambda base64-encoded: its Content-Type
/// (without parameters, any letter case) is one of the API's binary media types, which may
/// be wildcards (`image/*`, `*/*`). A body of any other type goes as text, as on AWS, where
/// bytes that are not UTF-8 do not survive: the reason to list a binary type.
pub fn is_binary_media_type(content_type: Option<&str>, binary_media_types: &[String]) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, _)) = essence.split_once('/') else {
        return false;
    };
    binary_media_types.iter().any(|t| {
        let t = t.trim();
        t == "*/*"
            || t.eq_ignore_ascii_case(essence)
            || t.strip_suffix("/*")
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(kind))
    })
}

/// The proxy event, ready to serialize.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: LastWins<'a>,
    multi_value_headers: EveryValue<'a>,
    query_string_parameters: Option<LastWins<'a>>,
    multi_value_query_string_parameters: Option<EveryValue<'a>>,
    path_parameters: Option<&'a BTreeMap<String, String>>,
    stage_variables: &'a BTreeMap<String, String>,
    request_context: RequestContext<'a>,
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    resource_id: &'static str,
    resource_path: &'a str,
    http_method: &'a str,
    extended_request_id: &'a str,
    request_time: String,
    path: &'a str,
    account_id: &'a str,
    protocol: &'static str,
    stage: &'a str,
    domain_prefix: &'a str,
    request_time_epoch: u64,
    request_id: &'a str,
    identity: Identity<'a>,
    domain_name: String,
    api_id: &'a str,
}

/// The caller as API Gateway describes an unauthenticated one: every other field is `null`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    cognito_identity_pool_id: Option<&'a str>,
    account_id: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    caller: Option<&'a str>,
    source_ip: &'a str,
    principal_org_id: Option<&'a str>,
    access_key: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    user_arn: Option<&'a str>,
    user_agent: Option<&'a str>,
    user: Option<&'a str>,
}

/// Name/value pairs in arrival order, serialized as one object where the last value of a
/// repeated name wins (`headers`, `queryStringParameters`).
#[derive(Debug)]
struct LastWins<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// The same pairs as an object of lists, every value in arrival order
/// (`multiValueHeaders`, `multiValueQueryStringParameters`).
#[derive(Debug)]
struct EveryValue<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

// A request has a dozen headers at most, so finding a name's other occurrences by a scan
// costs less than building a map of them.
impl Serialize for LastWins<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs = &self.0;
        let mut map = s.serialize_map(None)?;
        for (i, (name, value)) in pairs.iter().enumerate() {
            if !pairs[i + 1..].iter().any(|(n, _)| n == name) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

impl Serialize for EveryValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Values<'p, 'a>(&'p [(Cow<'a, str>, Cow<'a, str>)], &'p str);
        impl Serialize for Values<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|(n, _)| n == self.1).map(|(_, v)| v))
            }
        }
        let pairs = &self.0;
        let mut map = s.serialize_map(None)?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !pairs[..i].iter().any(|(n, _)| n == name) {
                map.serialize_entry(name, &Values(&pairs[i..], name))?;
            }
        }
        map.end()
    }
}

/// The proxy event. A body whose Content-Type is one of the API's binary media types goes
/// base64-encoded with `isBase64Encoded: true`, any other as text (`is_binary_media_type`).
pub fn build_event<'a>(req: &'a Incoming<'a>, ctx: &'a Context<'a>) -> Event<'a> {
    let (_, resource_path) = split_stage(req.path).unwrap_or((ctx.stage, "/"));
    let resource = ctx.resource;
    let path_parameters = (!ctx.path_parameters.is_empty()).then_some(ctx.path_parameters);

    let mut headers: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(req.headers.len() + 4);
    let mut user_agent = None;
    let mut forwarded_for = None;
    let mut content_type = None;
    for (name, value) in &req.headers {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("content-type") {
            content_type = Some(value.as_ref());
        }
        if is("user-agent") {
            user_agent = Some(value.as_ref());
        }
        if is("x-forwarded-for") {
            forwarded_for = Some(value.as_ref());
            continue;
        }
        // Hop-by-hop and framing headers are the gateway's business, not the function's.
        if [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "te",
            "upgrade",
        ]
        .into_iter()
        .any(is)
        {
            continue;
        }
        headers.push((Cow::Borrowed(*name), Cow::Borrowed(value.as_ref())));
    }
    // What API Gateway adds in front of every integration request.
    let xff = match forwarded_for {
        Some(prior) => Cow::Owned(format!("{prior}, {}", req.source_ip)),
        None => Cow::Borrowed(req.source_ip.as_str()),
    };
    headers.extend([
        ("X-Forwarded-For".into(), xff),
        ("X-Forwarded-Port".into(), "80".into()),
        ("X-Forwarded-Proto".into(), "http".into()),
        ("X-Amzn-Trace-Id".into(), ctx.trace_id.into()),
    ]);

    let query = query_parameters(req.query);
    let (body, base64) = match req.body {
        [] => (None, false),
        b if is_binary_media_type(content_type, ctx.binary_media_types) => {
            (Some(Cow::Owned(B64.encode(b))), true)
        }
        b => (Some(String::from_utf8_lossy(b)), false),
    };

    Event {
        resource,
        path: resource_path,
        http_method: req.method,
        headers: LastWins(headers.clone()),
        multi_value_headers: EveryValue(headers),
        query_string_parameters: query.clone().map(LastWins),
        multi_value_query_string_parameters: query.map(EveryValue),
        path_parameters,
        stage_variables: ctx.stage_variables,
        request_context: RequestContext {
            // API Gateway's are random; stable ones will do for a function reading them.
            resource_id: match resource {
                "/" => "root",
                r if r.ends_with("+}") => "proxy",
                _ => "resource",
            },
            resource_path: resource,
            http_method: req.method,
            extended_request_id: ctx.extended_request_id,
            request_time: request_time(ctx.http_date),
            path: req.path,
            account_id: ctx.account_id,
            protocol: "HTTP/1.1",
            stage: ctx.stage,
            domain_prefix: ctx.api_id,
            request_time_epoch: ctx.epoch_millis as u64,
            request_id: ctx.request_id,
            identity: Identity {
                cognito_identity_pool_id: None,
                account_id: None,
                cognito_identity_id: None,
                caller: None,
                source_ip: &req.source_ip,
                principal_org_id: None,
                access_key: None,
                cognito_authentication_type: None,
                cognito_authentication_provider: None,
                user_arn: None,
                user_agent,
                user: None,
            },
            domain_name: format!("{}.execute-api.{}.amazonaws.com", ctx.api_id, ctx.region),
            api_id: ctx.api_id,
        },
        body,
        is_base64_encoded: base64,
    }
}

/// The query string's pairs, decoded, in order; `None` (both views `null`) when there is none.
fn query_parameters(query: Option<&str>) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let q = query.filter(|q| !q.is_empty())?;
    Some(form_urlencoded::parse(q.as_bytes()).collect())
}

/// The HTTP answer built from a function's proxy response.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResponseError {
    #[error("the function's answer is not JSON: {0}")]
    NotJson(String),
    #[error("the function's answer has no integer statusCode")]
    NoStatus,
    #[error("the function's body is marked isBase64Encoded but is not base64: {0}")]
    BadBase64(String),
}

/// Maps the function's answer back. API Gateway answers 502 for a malformed proxy response
/// (`Execution failed due to configuration error: Malformed Lambda proxy response`).
pub fn map_response(payload: &[u8]) -> Result<Outgoing, ResponseError> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| ResponseError::NotJson(e.to_string()))?;
    let status = v
        .get("statusCode")
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
        })
        .filter(|s| (100..=599).contains(s))
        .ok_or(ResponseError::NoStatus)? as u16;
    // Documented merge: multiValueHeaders win over headers for the same name.
    let mut headers = Vec::new();
    let multi = v.get("multiValueHeaders").and_then(Value::as_object);
    if let Some(m) = multi {
        for (name, values) in m {
            for value in values.as_array().into_iter().flatten() {
                headers.push((name.clone(), scalar(value)));
            }
        }
    }
    if let Some(h) = v.get("headers").and_then(Value::as_object) {
        for (name, value) in h {
            let shadowed = multi.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(name)));
            if !shadowed {
                headers.push((name.clone(), scalar(value)));
            }
        }
    }
    let text = v.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        B64.decode(text)
            .map_err(|e| ResponseError::BadBase64(e.to_string()))?
    } else {
        text.as_bytes().to_vec()
    };
    Ok(Outgoing {
        status,
        headers,
        body,
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The event as the function receives it, for a stack whose routes are the fixtures'
    /// (`/` and `/{proxy+}`, as they were captured) plus the birthday API's.
    fn build_event(req: &Incoming<'_>, ctx: &Context<'_>) -> Value {
        let routes = crate::resources::Resources::new([
            ("app", "/"),
            ("app", "/{proxy+}"),
            ("birthday", "/hello/{username}"),
        ])
        .unwrap();
        let (_, path) = split_stage(req.path).unwrap();
        let matched = routes.find(path).expect("a route");
        let ctx = Context {
            resource: matched.resource,
            path_parameters: &matched.parameters,
            ..ctx.clone()
        };
        serde_json::to_value(super::build_event(req, &ctx)).unwrap()
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../app/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([("lambdaAlias".to_string(), "dev".to_string())])
    }

    fn ctx<'a>(vars: &'a BTreeMap<String, String>) -> Context<'a> {
        Context {
            stage: "dev",
            stage_variables: vars,
            api_id: "k3xq7mz2ab",
            account_id: "123456789012",
            region: "eu-west-2",
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            extended_request_id: "Bk2fXHc3LPEFt8Q=",
            trace_id: "Root=1-6741e2b0-5c3f1a7d2e9b4c8f0a6d1e3b",
            epoch_millis: 1795430528123,
            http_date: "Mon, 23 Nov 2026 10:42:08 GMT",
            resource: "/",
            path_parameters: &NO_PARAMETERS,
            binary_media_types: &[],
        }
    }

    static NO_PARAMETERS: BTreeMap<String, String> = BTreeMap::new();

    #[test]
    fn a_path_parameter_arrives_in_path_parameters_with_its_resource() {
        let vars = vars();
        let mut req = get_build_info();
        req.method = "PUT";
        req.path = "/dev/hello/Nand%C3%A9";
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["resource"], "/hello/{username}");
        assert_eq!(got["requestContext"]["resourcePath"], "/hello/{username}");
        assert_eq!(got["pathParameters"], json!({"username": "Nandé"}));
        assert_eq!(got["path"], "/hello/Nand%C3%A9");
        assert_eq!(got["stageVariables"], json!({"lambdaAlias": "dev"}));
    }

    /// Every key of `want` exists in `got` with a value of the same JSON type, recursively.
    fn same_shape(want: &Value, got: &Value, at: &str) {
        match (want, got) {
            // Which headers arrive depends on the client and the endpoint type (the
            // edge-optimized fixture has CloudFront's); their names are checked apart.
            (Value::Object(_), Value::Object(_)) if at.ends_with("eaders") => {}
            (Value::Object(w), Value::Object(g)) => {
                for (k, wv) in w {
                    let gv = g
                        .get(k)
                        .unwrap_or_else(|| panic!("{at}.{k} missing in {got}"));
                    same_shape(wv, gv, &format!("{at}.{k}"));
                }
            }
            (Value::Null, _) => {}
            (w, g) => assert_eq!(
                std::mem::discriminant(w),
                std::mem::discriminant(g),
                "{at}: fixture has {w}, gateway sends {g}"
            ),
        }
    }

    fn get_build_info<'a>() -> Incoming<'a> {
        Incoming {
            method: "GET",
            path: "/dev/build-info",
            query: None,
            headers: vec![
                ("Accept", "application/json".into()),
                ("User-Agent", "curl/8.5.0".into()),
                (
                    "Host",
                    "k3xq7mz2ab.execute-api.eu-west-2.amazonaws.com".into(),
                ),
            ],
            body: b"",
            source_ip: "203.0.113.7".into(),
        }
    }

    #[test]
    fn the_event_has_the_fixture_shape_and_values() {
        let want = fixture("apigw-rest-dev-build-info.json");
        let vars = vars();
        let got = build_event(&get_build_info(), &ctx(&vars));
        same_shape(&want, &got, "event");
        for key in [
            "resource",
            "path",
            "httpMethod",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
            "isBase64Encoded",
        ] {
            assert_eq!(got[key], want[key], "{key}");
        }
        let (w, g) = (&want["requestContext"], &got["requestContext"]);
        for key in [
            "resourcePath",
            "httpMethod",
            "requestTime",
            "path",
            "accountId",
            "protocol",
            "stage",
            "domainPrefix",
            "requestTimeEpoch",
            "requestId",
            "domainName",
            "apiId",
            "identity",
        ] {
            assert_eq!(g[key], w[key], "requestContext.{key}");
        }
        assert_eq!(got["headers"]["Accept"], "application/json");
        assert_eq!(
            got["multiValueHeaders"]["User-Agent"],
            json!(["curl/8.5.0"])
        );
        assert_eq!(got["headers"]["X-Forwarded-For"], "203.0.113.7");
    }

    #[test]
    fn the_stage_root_is_resource_slash_without_path_parameters() {
        let want = fixture("apigw-rest-dev-root.json");
        let vars = vars();
        let mut req = get_build_info();
        req.path = "/dev/";
        let got = build_event(&req, &ctx(&vars));
        same_shape(&want, &got, "event");
        for key in ["resource", "path", "pathParameters"] {
            assert_eq!(got[key], want[key], "{key}");
        }
        assert_eq!(got["requestContext"]["path"], "/dev/");
        // A regional endpoint's headers: the client's plus those API Gateway adds.
        let names = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        req.headers = vec![
            ("Accept", "*/*".into()),
            (
                "Host",
                "k3xq7mz2ab.execute-api.eu-west-2.amazonaws.com".into(),
            ),
            ("User-Agent", "curl/8.5.0".into()),
        ];
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(names(&got["headers"]), names(&want["headers"]));
        assert_eq!(
            names(&got["multiValueHeaders"]),
            names(&want["multiValueHeaders"])
        );
        req.path = "/dev";
        assert_eq!(build_event(&req, &ctx(&vars))["path"], "/");
    }

    #[test]
    fn queries_keep_every_value_and_the_last_one() {
        let vars = vars();
        let mut req = get_build_info();
        req.query = Some("a=1&a=2&b=x%20y");
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["queryStringParameters"], json!({"a": "2", "b": "x y"}));
        assert_eq!(
            got["multiValueQueryStringParameters"],
            json!({"a": ["1", "2"], "b": ["x y"]})
        );
    }

    #[test]
    fn a_repeated_header_keeps_its_last_value_and_lists_every_one() {
        let vars = vars();
        let mut req = get_build_info();
        req.headers = vec![
            ("x-a", "1".into()),
            ("connection", "keep-alive".into()),
            ("x-b", "only".into()),
            ("x-a", "2".into()),
            ("x-forwarded-for", "198.51.100.1".into()),
        ];
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["headers"]["x-a"], "2");
        assert_eq!(got["multiValueHeaders"]["x-a"], json!(["1", "2"]));
        assert_eq!(got["multiValueHeaders"]["x-b"], json!(["only"]));
        // Hop-by-hop headers stay with the gateway; a client's X-Forwarded-For is extended.
        assert!(got["headers"].get("connection").is_none(), "{got}");
        assert!(got["headers"].get("x-forwarded-for").is_none(), "{got}");
        assert_eq!(
            got["headers"]["X-Forwarded-For"],
            "198.51.100.1, 203.0.113.7"
        );
        assert_eq!(got["requestContext"]["identity"]["userAgent"], Value::Null);
    }

    fn binary_types() -> Vec<String> {
        ["multipart/form-data", "image/jpeg", "application/*"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn bodies_of_binary_media_types_go_as_base64_and_others_as_text() {
        let vars = vars();
        let types = binary_types();
        let ctx = Context {
            binary_media_types: &types,
            ..ctx(&vars)
        };
        let bytes = [0u8, 159, 146, 150, 255];
        for content_type in [
            "image/jpeg",
            "Image/JPEG",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
        ] {
            let mut req = get_build_info();
            req.headers.push(("Content-Type", content_type.into()));
            req.body = &bytes;
            let got = build_event(&req, &ctx);
            assert_eq!(got["isBase64Encoded"], true, "{content_type}");
            assert_eq!(B64.decode(got["body"].as_str().unwrap()).unwrap(), bytes);
            // Text of a binary type is encoded too: the type decides, not the bytes.
            req.body = b"plain";
            let got = build_event(&req, &ctx);
            assert_eq!(got["body"], B64.encode(b"plain"), "{content_type}");
        }
        for content_type in [Some("text/plain"), Some("image/png"), None] {
            let mut req = get_build_info();
            if let Some(ct) = content_type {
                req.headers.push(("Content-Type", ct.into()));
            }
            req.body = b"{\"k\":1}";
            let got = build_event(&req, &ctx);
            assert_eq!(got["isBase64Encoded"], false, "{content_type:?}");
            assert_eq!(got["body"], "{\"k\":1}");
            // Bytes that are not UTF-8, sent as text, arrive mangled, as on AWS.
            req.body = &bytes;
            let got = build_event(&req, &ctx);
            assert_eq!(got["isBase64Encoded"], false);
            assert_ne!(got["body"].as_str().unwrap().as_bytes(), bytes);
        }
    }

    #[test]
    fn binary_media_types_match_by_type_and_wildcard() {
        let types = binary_types();
        assert!(is_binary_media_type(Some("image/jpeg"), &types));
        assert!(!is_binary_media_type(Some("image/jpegx"), &types));
        assert!(is_binary_media_type(Some("application/pdf"), &types));
        assert!(!is_binary_media_type(Some("text/plain"), &types));
        assert!(!is_binary_media_type(Some("garbage"), &types));
        assert!(!is_binary_media_type(None, &types));
        assert!(!is_binary_media_type(Some("image/jpeg"), &[]));
        assert!(is_binary_media_type(
            Some("text/plain"),
            &["*/*".to_string()]
        ));
    }

    #[test]
    fn proxy_path_parameter_is_decoded_but_path_is_not() {
        let vars = vars();
        let mut req = get_build_info();
        req.path = "/dev/a%20b/c+d";
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["pathParameters"]["proxy"], "a b/c+d");
        assert_eq!(got["path"], "/a%20b/c+d");
    }

    #[test]
    fn split_stage_takes_the_first_segment() {
        assert_eq!(split_stage("/dev/build-info"), Some(("dev", "/build-info")));
        assert_eq!(split_stage("/dev"), Some(("dev", "/")));
        assert_eq!(split_stage("/dev/"), Some(("dev", "/")));
        assert_eq!(split_stage("/"), None);
        assert_eq!(split_stage("//x"), None);
    }

    #[test]
    fn responses_map_back_with_multi_value_headers_winning() {
        let out = map_response(
            br#"{"statusCode":201,"headers":{"a":"1","B":"2"},"multiValueHeaders":{"b":["3","4"]},"body":"hi","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(out.status, 201);
        assert_eq!(out.body, b"hi");
        let mut h = out.headers.clone();
        h.sort();
        assert_eq!(
            h,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "3".into()),
                ("b".into(), "4".into())
            ]
        );
    }

    #[test]
    fn base64_response_bodies_are_decoded_byte_for_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let payload =
            json!({"statusCode": 200, "body": B64.encode(&bytes), "isBase64Encoded": true});
        let out = map_response(payload.to_string().as_bytes()).unwrap();
        assert_eq!(out.body, bytes);
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert_eq!(map_response(b"{}"), Err(ResponseError::NoStatus));
        assert!(matches!(
            map_response(b"nope"),
            Err(ResponseError::NotJson(_))
        ));
        assert!(matches!(
            map_response(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#),
            Err(ResponseError::BadBase64(_))
        ));
    }

    #[test]
    fn request_time_is_spelt_as_api_gateway_does() {
        assert_eq!(
            request_time("Mon, 23 Nov 2026 10:42:08 GMT"),
            "23/Nov/2026:10:42:08 +0000"
        );
    }
}
