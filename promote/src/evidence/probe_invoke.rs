//! The probe's other way in: invoking the stage's alias through Lambda's Invoke API instead
//! of an HTTP request to the stage's URL. Lambda names the version that ran in
//! `X-Amz-Executed-Version` on every answer, a crash included, where API Gateway's 502 names
//! none: every answer is attributed exactly, so a crashing candidate is judged by the
//! Fisher test at once instead of by the slower shortfall test. It skips API Gateway, so it
//! judges the versions' code, not the stage's wiring (the HTTP probe does that).
//!
//! The event is the REST proxy event API Gateway would send for the function's probe request
//! on the stage (its method, path, body and content type, and the stage's variables), so the
//! function runs the same route as for a real request.

use std::future::Future;
use std::time::Duration;

use ::probe::{Answer, Failure, Transport};
use std::collections::BTreeMap;

use crate::evidence::probe_call::{InvokeAt, ProbeCall};
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use base64::Engine as _;
use serde_json::{Value, json};

/// What a status is taken to be when the function failed or answered something API Gateway
/// could not map: the 502 API Gateway would have answered.
const FUNCTION_FAILED: u16 = 502;

#[derive(Clone)]
pub struct Invoke {
    client: aws_sdk_lambda::Client,
    function: String,
    qualifier: String,
    payload: Blob,
}

impl Invoke {
    /// A client of its own: no retries (a retried request would hide the failure the probe
    /// is there to count) and the request timeout as its operation timeout. `endpoint` is the
    /// Invoke endpoint (the local gateway's base URL), else the SDK's usual one.
    pub async fn new(
        at: &InvokeAt,
        call: &ProbeCall,
        endpoint: Option<&str>,
        timeout: Duration,
    ) -> Invoke {
        let mut loader = aws_https::defaults()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(timeout)
                    .build(),
            );
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        let sdk = loader.load().await;
        Invoke {
            client: aws_sdk_lambda::Client::new(&sdk),
            function: at.function.clone(),
            qualifier: at.alias.clone(),
            payload: Blob::new(rest_event(&at.stage, call, &at.variables).to_string()),
        }
    }
}

/// API Gateway's REST proxy event (payload 1.0) for `call` on `stage`, whose variables are
/// `variables`.
pub fn rest_event(stage: &str, call: &ProbeCall, variables: &BTreeMap<String, String>) -> Value {
    let path = call.path.as_str();
    let method = call.method.to_ascii_uppercase();
    // API Gateway base64-encodes a body whose content type is a binary media type; a body
    // that is not UTF-8 could only have come that way, and any other goes as text.
    let (body, base64_encoded) = match call.body.as_deref().map(std::str::from_utf8) {
        None => (Value::Null, false),
        Some(Ok(text)) => (json!(text), false),
        Some(Err(_)) => (
            json!(
                base64::engine::general_purpose::STANDARD
                    .encode(call.body.as_deref().unwrap_or_default())
            ),
            true,
        ),
    };
    let mut headers = json!({"user-agent": "promote-probe"});
    let mut multi = json!({"user-agent": ["promote-probe"]});
    if let Some(c) = &call.content_type {
        headers["content-type"] = json!(c);
        multi["content-type"] = json!([c]);
    }
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": if variables.is_empty() { Value::Null } else { json!(variables) },
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": format!("/{stage}{path}"),
            "stage": stage,
            "requestId": "promote-probe",
            "accountId": "000000000000",
            "apiId": "promote-probe",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "promote-probe"},
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    })
}

/// The status API Gateway would answer for a function's answer: its `statusCode`, or 502 for
/// a function error or an answer it could not map.
pub fn status_of(function_error: bool, payload: &[u8]) -> u16 {
    if function_error {
        return FUNCTION_FAILED;
    }
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(FUNCTION_FAILED)
}

impl Transport for Invoke {
    fn call(&self, _seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static {
        let this = self.clone();
        async move {
            let out = this
                .client
                .invoke()
                .function_name(&this.function)
                .qualifier(&this.qualifier)
                .payload(this.payload.clone())
                .send()
                .await;
            match out {
                Ok(o) => Ok(Answer {
                    status: status_of(
                        o.function_error().is_some(),
                        o.payload().map_or(&[][..], |p| p.as_ref()),
                    ),
                    version: o.executed_version().map(str::to_string),
                }),
                // Lambda refused the call (throttled, no such alias...): an answer with its
                // status and no version, as an API Gateway 5xx would be.
                Err(SdkError::ServiceError(e)) => Ok(Answer {
                    status: e.raw().status().as_u16(),
                    version: None,
                }),
                Err(SdkError::TimeoutError(_)) => Err(Failure::Timeout),
                Err(SdkError::DispatchFailure(e)) if e.is_timeout() => Err(Failure::Timeout),
                Err(SdkError::DispatchFailure(e)) if e.is_io() => Err(Failure::Connect),
                Err(_) => Err(Failure::Transport),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_the_functions_or_api_gateways_502() {
        assert_eq!(
            status_of(false, br#"{"statusCode": 404, "body": "{}"}"#),
            404
        );
        assert_eq!(status_of(true, br#"{"statusCode": 200}"#), 502);
        assert_eq!(status_of(false, b"not json"), 502);
        assert_eq!(status_of(false, br#"{"body": "no status"}"#), 502);
    }

    #[test]
    fn the_event_is_a_rest_proxy_event_for_the_stage() {
        let e = rest_event("live", &ProbeCall::get("/build-info"), &BTreeMap::new());
        assert_eq!(e["requestContext"]["stage"], "live");
        assert_eq!(e["requestContext"]["path"], "/live/build-info");
        assert_eq!(e["path"], "/build-info");
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["body"], Value::Null);
        assert_eq!(e["stageVariables"], Value::Null);
    }

    #[test]
    fn the_event_carries_the_functions_probe_request_and_the_stages_variables() {
        let call = ProbeCall::of(&rollout::ProbeRequest {
            method: "put".into(),
            path: "/hello/probe".into(),
            body: Some(br#"{"dateOfBirth":"2000-01-01"}"#.to_vec()),
            content_type: Some("application/json".into()),
            expect_status: 204,
        });
        let vars = BTreeMap::from([("birthdayTable".to_string(), "birthday-live".to_string())]);
        let e = rest_event("live", &call, &vars);
        assert_eq!(e["httpMethod"], "PUT");
        assert_eq!(e["requestContext"]["httpMethod"], "PUT");
        assert_eq!(e["body"], r#"{"dateOfBirth":"2000-01-01"}"#);
        assert_eq!(e["headers"]["content-type"], "application/json");
        assert_eq!(
            e["multiValueHeaders"]["content-type"][0],
            "application/json"
        );
        assert_eq!(e["stageVariables"]["birthdayTable"], "birthday-live");
        assert_eq!(e["requestContext"]["path"], "/live/hello/probe");
    }
}
