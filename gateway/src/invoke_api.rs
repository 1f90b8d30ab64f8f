//! Lambda's Invoke API for the aliases and versions of the functions the gateway knows:
//! `POST /2015-03-31/functions/{function}/invocations?Qualifier=Q`. A client invoking an alias
//! directly learns which version ran from `X-Amz-Executed-Version`, even when the function
//! crashed, which API Gateway's 502 never says: the probe uses it to attribute every answer.
//!
//! As Lambda answers: 200 with the function's payload; on a function error or a crash, 200
//! with `X-Amz-Function-Error: Unhandled` and `{"errorType", "errorMessage"}`; an unknown
//! function or qualifier, 404 `ResourceNotFoundException`. The invocation is counted in the
//! `AWS/Lambda` metrics like any other (by alias and, when weighted, by executed version).
//! Every other Lambda call belongs to the endpoint behind the gateway (`AWS_ENDPOINT_URL`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::runtime::Outcome;
use crate::server::{Gateway, Invoked, Usage, request_id, trace_id};
use crate::stack::{self, Alias};

/// Lambda's synchronous payload limit.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// `{function}` as Lambda takes it: a name, a partial or a full ARN, the last two possibly
/// ending in `:qualifier`. The function's name and the qualifier it names, if any.
pub fn parse_function(function: &str) -> (&str, Option<&str>) {
    let parts: Vec<&str> = function.split(':').collect();
    match parts.as_slice() {
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        ["arn", _, "lambda", _, _, "function", name] => (name, None),
        ["arn", _, "lambda", _, _, "function", name, q] => (name, Some(q)),
        // ACCOUNT:function:NAME[:QUALIFIER]
        [_, "function", name] => (name, None),
        [_, "function", name, q] => (name, Some(q)),
        // NAME:QUALIFIER
        [name, q] => (name, Some(q)),
        _ => (function, None),
    }
}

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .body(Body::from(
            json!({"Type": "User", "message": message}).to_string(),
        ))
        .expect("static response")
}

pub async fn invoke(
    State(gw): State<Arc<Gateway>>,
    Path(function): Path<String>,
    req: Request,
) -> Response {
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let (name, in_arn) = parse_function(&function);
    if !gw.functions.iter().any(|f| f == name) {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "Function not found: {function} (the gateway serves functions {})",
                gw.functions.join(", ")
            ),
        );
    }
    let Some(qualifier) = query.get("Qualifier").map(String::as_str).or(in_arn) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "the local gateway runs published versions only: give an alias or a version as the Qualifier".into(),
        );
    };
    let Some(alias) = alias_or_version(&gw, name, qualifier) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {name}:{qualifier} (no such alias or version)"),
        );
    };
    let Ok(payload) = to_bytes(req.into_body(), MAX_PAYLOAD).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!(
                "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
            ),
        );
    };
    let Ran {
        outcome,
        version,
        request_id: rid,
        trace_id: trace,
        duration: ran,
        failed,
        throttled: _,
    } = invoke_alias(&gw, name, &alias, payload.to_vec()).await;
    let body = match outcome {
        // Lambda's own answer to a throttled Invoke: 429, nothing ran.
        Outcome::Throttled(why) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                why,
            );
        }
        Outcome::Response(bytes) => bytes,
        Outcome::FunctionError { body, .. } => body,
        Outcome::Crashed(why) => json!({"errorType": "Runtime.ExitError", "errorMessage": why})
            .to_string()
            .into_bytes(),
        Outcome::CodeMissing(why) => {
            json!({"errorType": "InvalidZipFileException", "errorMessage": why})
                .to_string()
                .into_bytes()
        }
    };
    let mut r = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("x-amz-executed-version", &version)
        .header("x-amzn-requestid", &rid)
        .header("x-amzn-trace-id", &trace);
    if failed {
        r = r.header("x-amz-function-error", "Unhandled");
    }
    if gw.verbose {
        eprintln!(
            "{} Invoke {name}:{} version={version} error={failed} duration_ms={:.2}",
            httpdate::fmt_http_date(SystemTime::now()),
            alias.name,
            ran.as_secs_f64() * 1000.0
        );
    }
    r.body(Body::from(body)).expect("invoke response")
}

/// `qualifier` of function `name`: its alias, or a version invoked directly (an alias of one
/// version, unweighted), as the snapshot holds it now.
pub(crate) fn alias_or_version(gw: &Gateway, name: &str, qualifier: &str) -> Option<Alias> {
    let snapshot = gw.stack.get();
    let held = snapshot.function(name)?;
    match held.aliases.get(qualifier) {
        Some(a) => Some(a.clone()),
        None if held.versions.contains_key(qualifier) => Some(Alias {
            name: qualifier.to_string(),
            arn: format!(
                "arn:aws:lambda:{}:{}:function:{name}:{qualifier}",
                gw.region,
                account_of(&snapshot)
            ),
            version: qualifier.to_string(),
            weights: BTreeMap::new(),
        }),
        None => None,
    }
}

/// One invocation through `alias` as Lambda's Invoke runs it.
pub(crate) struct Ran {
    pub outcome: Outcome,
    /// The version the alias's weights picked.
    pub version: String,
    pub request_id: String,
    pub trace_id: String,
    pub duration: std::time::Duration,
    /// A function error, a crash or missing code: counted in `Errors`.
    pub failed: bool,
    /// Refused for want of concurrency: counted in `Throttles` only.
    pub throttled: bool,
}

/// Invokes `alias` of `name` with `payload`: the version drawn by its weights, run, and counted
/// in the `AWS/Lambda` metrics (by alias and, when weighted, by executed version). The Invoke
/// API and the S3 event deliveries (`s3_watch`) both invoke this way.
pub(crate) async fn invoke_alias(
    gw: &Arc<Gateway>,
    name: &str,
    alias: &Alias,
    payload: Vec<u8>,
) -> Ran {
    let epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let (rid, trace) = (request_id(), trace_id(epoch.as_secs()));
    let version = stack::pick_version(alias, fastrand::f64()).to_string();
    let (outcome, ran) = gw
        .invoke(name, alias, &version, payload, &rid, &trace)
        .await;
    let throttled = matches!(outcome, Outcome::Throttled(_));
    let failed = !matches!(outcome, Outcome::Response(_)) && !throttled;
    gw.record_later(Usage {
        at_ms: crate::clock::now_millis(),
        invocation: Some(Invoked {
            function: name.to_string(),
            alias: alias.name.clone(),
            version: version.clone(),
            duration_ms: ran.as_secs_f64() * 1000.0,
            error: failed,
            throttled,
            weighted: !alias.weights.is_empty(),
        }),
        stage: None,
        status: None,
        latency_ms: 0.0,
        integration_ms: None,
    });
    Ran {
        outcome,
        version,
        request_id: rid,
        trace_id: trace,
        duration: ran,
        failed,
        throttled,
    }
}

fn account_of(s: &stack::Snapshot) -> String {
    s.functions
        .values()
        .flat_map(|f| f.aliases.values())
        .find_map(|a| a.arn.split(':').nth(4).map(str::to_string))
        .unwrap_or_else(|| "123456789012".into())
}

/// Any other Lambda API call: not the gateway's to answer.
pub async fn elsewhere(req: Request) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!(
            "{} {}: the local gateway serves only Invoke of the function's aliases and versions; send other Lambda calls to the endpoint behind it (AWS_ENDPOINT_URL)",
            req.method(),
            req.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_function;

    #[test]
    fn a_function_is_named_as_lambda_takes_it() {
        assert_eq!(parse_function("app"), ("app", None));
        assert_eq!(parse_function("app:live"), ("app", Some("live")));
        assert_eq!(
            parse_function("arn:aws:lambda:eu-west-1:123456789012:function:app"),
            ("app", None)
        );
        assert_eq!(
            parse_function("arn:aws:lambda:eu-west-1:123456789012:function:app:7"),
            ("app", Some("7"))
        );
        assert_eq!(
            parse_function("123456789012:function:app:live"),
            ("app", Some("live"))
        );
    }
}
