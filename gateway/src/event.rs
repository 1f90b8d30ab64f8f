//! The REST API proxy integration (payload 1.0): an HTTP request becomes the event API Gateway
//! sends to Lambda, and the function's answer becomes the HTTP response. Pure functions; the
//! shapes follow the fixtures in `app/tests/fixtures/apigw-rest-*.json`, which were captured
//! from API Gateway.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

/// One request as the gateway received it, split from the transport.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The raw path, stage included: `/dev/build-info`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// In arrival order; a name may repeat.
    pub headers: Vec<(String, String)>,
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

fn is_binary(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_err()
}

/// The proxy event. The binary test is on the bytes: API Gateway decides by its
/// `binaryMediaTypes`, which a stack created by our Terraform does not set; encoding exactly
/// the bodies that are not UTF-8 is the setting under which every body arrives intact.
pub fn build_event(req: &Incoming<'_>, ctx: &Context<'_>) -> Value {
    let (_, resource_path) = split_stage(req.path).unwrap_or((ctx.stage, "/"));
    let (resource, path_parameters) = if resource_path == "/" {
        ("/", Value::Null)
    } else {
        let proxy = percent_decode(resource_path.trim_start_matches('/'));
        ("/{proxy+}", json!({ "proxy": proxy }))
    };

    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    let mut add_header = |name: &str, value: &str| {
        headers.insert(name.to_string(), Value::String(value.to_string()));
        match multi_headers.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::String(value.to_string())),
            _ => {
                multi_headers.insert(name.to_string(), json!([value]));
            }
        }
    };
    let mut user_agent = None;
    let mut forwarded_for = None;
    for (name, value) in &req.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "user-agent" {
            user_agent = Some(value.clone());
        }
        if lower == "x-forwarded-for" {
            forwarded_for = Some(value.clone());
            continue;
        }
        // Hop-by-hop and framing headers are the gateway's business, not the function's.
        if matches!(
            lower.as_str(),
            "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade"
        ) {
            continue;
        }
        add_header(name, value);
    }
    // What API Gateway adds in front of every integration request.
    let xff = match forwarded_for {
        Some(prior) => format!("{prior}, {}", req.source_ip),
        None => req.source_ip.clone(),
    };
    add_header("X-Forwarded-For", &xff);
    add_header("X-Forwarded-Port", "80");
    add_header("X-Forwarded-Proto", "http");
    add_header("X-Amzn-Trace-Id", ctx.trace_id);

    let (query, multi_query) = query_parameters(req.query);
    let (body, base64) = match req.body {
        [] => (Value::Null, false),
        b if is_binary(b) => (Value::String(B64.encode(b)), true),
        b => (
            Value::String(String::from_utf8_lossy(b).into_owned()),
            false,
        ),
    };
    let domain = format!("{}.execute-api.{}.amazonaws.com", ctx.api_id, ctx.region);

    json!({
        "resource": resource,
        "path": resource_path,
        "httpMethod": req.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": ctx.stage_variables,
        "requestContext": {
            "resourceId": if resource == "/" { "root" } else { "proxy" },
            "resourcePath": resource,
            "httpMethod": req.method,
            "extendedRequestId": ctx.extended_request_id,
            "requestTime": request_time(ctx.http_date),
            "path": req.path,
            "accountId": ctx.account_id,
            "protocol": "HTTP/1.1",
            "stage": ctx.stage,
            "domainPrefix": ctx.api_id,
            "requestTimeEpoch": ctx.epoch_millis as u64,
            "requestId": ctx.request_id,
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "sourceIp": req.source_ip,
                "principalOrgId": null,
                "accessKey": null,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": user_agent,
                "user": null
            },
            "domainName": domain,
            "apiId": ctx.api_id
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

fn percent_decode(s: &str) -> String {
    // form_urlencoded turns '+' into a space, which a path must not; protect it first.
    let protected = s.replace('+', "%2B");
    form_urlencoded::parse(format!("x={protected}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// API Gateway's two views of the query string: last value wins, and every value; both
/// `null` when there is none.
fn query_parameters(query: Option<&str>) -> (Value, Value) {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return (Value::Null, Value::Null);
    };
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        single.insert(k.to_string(), Value::String(v.to_string()));
        match multi.get_mut(k.as_ref()) {
            Some(Value::Array(list)) => list.push(Value::String(v.into_owned())),
            _ => {
                multi.insert(k.into_owned(), json!([v]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
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
        }
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
                ("Accept".into(), "application/json".into()),
                ("User-Agent".into(), "curl/8.5.0".into()),
                (
                    "Host".into(),
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
            ("Accept".into(), "*/*".into()),
            (
                "Host".into(),
                "k3xq7mz2ab.execute-api.eu-west-2.amazonaws.com".into(),
            ),
            ("User-Agent".into(), "curl/8.5.0".into()),
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
    fn binary_bodies_go_as_base64_and_text_as_is() {
        let vars = vars();
        let mut req = get_build_info();
        let bytes = [0u8, 159, 146, 150, 255];
        req.body = &bytes;
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["isBase64Encoded"], true);
        assert_eq!(B64.decode(got["body"].as_str().unwrap()).unwrap(), bytes);
        req.body = b"{\"k\":1}";
        let got = build_event(&req, &ctx(&vars));
        assert_eq!(got["isBase64Encoded"], false);
        assert_eq!(got["body"], "{\"k\":1}");
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
