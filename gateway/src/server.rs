//! `ANY /{stage}/{path}`: the request resolved to a version, run, and answered as API Gateway
//! answers, with the metrics of both services recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::{oneshot, watch};

use crate::artifacts::Artifacts;
use crate::chaos::Chaos;
use crate::event::{self, Incoming};
use crate::metrics::{self, ApiRecord, InvocationRecord, Metrics};
use crate::resources::Resources;
use crate::runtime::{self, Invocation, Outcome, Pool};
use crate::stack::{self, Route, Shared};

/// API Gateway's payload limit.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Lambda's limit on a synchronous invocation's event (the request: 6 MiB; a response may be
/// 100 bytes more). A body near it is over it once API Gateway has base64-encoded it.
pub const MAX_EVENT: usize = 6 * 1024 * 1024;
/// How much of a body over `MAX_BODY` is read and thrown away before the 413 is sent: a
/// client still sending when the connection closes sees it reset, not the answer.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

pub struct Gateway {
    pub stack: Shared,
    /// Every function of the project, in project.json's order.
    pub functions: Vec<String>,
    pub api_name: String,
    pub stage_variable: String,
    pub region: String,
    pub artifacts: Artifacts,
    pub chaos: Chaos,
    pub metrics: Arc<Metrics>,
    pub verbose: bool,
    pub max_instances: usize,
    pub shutdown: watch::Receiver<bool>,
    /// The API's resource tree: which function a path reaches.
    pub resources: Resources,
    /// The endpoint the instances' own AWS calls go to (runtime::aws_environment).
    pub aws_endpoint: Option<String>,
    /// The REST API's binaryMediaTypes: request bodies of these types reach the function
    /// base64-encoded (event::is_binary_media_type).
    pub binary_media_types: Vec<String>,
    /// (function, version) -> its instances.
    pools: Mutex<BTreeMap<(String, String), Arc<Pool>>>,
    /// Versions whose missing code was already reported, so stderr says it once.
    reported: Mutex<BTreeSet<(String, String)>>,
}

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stack: Shared,
        project: &rollout::Project,
        resources: Resources,
        region: String,
        artifacts: Artifacts,
        chaos: Chaos,
        metrics: Arc<Metrics>,
        verbose: bool,
        max_instances: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Gateway {
        Gateway {
            stack,
            functions: stack::functions(project),
            api_name: project.rest_api_name.clone(),
            stage_variable: project.stage_variable.clone(),
            region,
            artifacts,
            chaos,
            metrics,
            verbose,
            max_instances,
            shutdown,
            resources,
            aws_endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
            binary_media_types: project.binary_media_types.clone(),
            pools: Mutex::new(BTreeMap::new()),
            reported: Mutex::new(BTreeSet::new()),
        }
    }

    fn report_once(&self, function: &str, version: &str, message: &str) {
        if self
            .reported
            .lock()
            .expect("reported lock")
            .insert((function.to_string(), version.to_string()))
        {
            eprintln!("gateway: {message}");
        }
    }

    fn pool(&self, function: &str, config: &stack::VersionConfig) -> Result<Arc<Pool>, String> {
        let mut pools = self.pools.lock().expect("pools lock");
        let key = (function.to_string(), config.version.clone());
        if let Some(p) = pools.get(&key) {
            return Ok(p.clone());
        }
        let task_root = self.artifacts.task_root(&config.code_sha256).map_err(|e| {
            format!(
                "function {function} version {}: its code is missing: {e:#}; pass its zip with --artifacts (the file `promote publish` uploaded)",
                config.version
            )
        })?;
        let spec = runtime::Spec {
            function_name: function.to_string(),
            version: config.version.clone(),
            memory_mb: config.memory_mb,
            region: self.region.clone(),
            environment: config.environment.clone(),
            task_root,
            show_output: self.verbose,
            aws_endpoint: self.aws_endpoint.clone(),
        };
        let pool = Pool::new(spec, self.max_instances, self.shutdown.clone());
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// One invocation of `version` through `alias`, as Lambda's Invoke would run it, and its
    /// `Duration` as Lambda measures it: from an instance taking the event to its answer (plus
    /// `--latency`, the function's own slowness). Starting an instance (unpacking the zip,
    /// the bootstrap's init) or waiting for a free one is not in it, as Lambda reports init
    /// apart; counting it would make every new version look slow on its first requests.
    pub async fn invoke(
        &self,
        function: &str,
        alias: &stack::Alias,
        version: &str,
        event: Vec<u8>,
        request_id: &str,
        trace_id: &str,
    ) -> (Outcome, Duration) {
        let entered = Instant::now();
        let snapshot = self.stack.get();
        let config = snapshot
            .function(function)
            .and_then(|f| f.versions.get(version));
        let Some(config) = config else {
            let why = format!(
                "alias {} of function {function} routes to version {version}, which the function does not have",
                alias.name
            );
            self.report_once(function, version, &why);
            return (Outcome::CodeMissing(why), entered.elapsed());
        };
        let pool = match self.pool(function, config) {
            Ok(p) => p,
            Err(why) => {
                self.report_once(function, version, &why);
                return (Outcome::CodeMissing(why), entered.elapsed());
            }
        };
        if self.chaos.throttled(function, version) {
            return (
                Outcome::Throttled(format!("Rate Exceeded. (--throttle {version})")),
                Duration::ZERO,
            );
        }
        let mut delayed = Duration::ZERO;
        if let Some(delay) = self.chaos.latency(function, version) {
            tokio::time::sleep(delay).await;
            delayed = delay;
        }
        if self.chaos.fails(function, version) {
            let why = format!(
                "RequestId: {request_id} Error: Runtime exited with error: signal: killed (--fault {version})"
            );
            return (Outcome::Crashed(why), delayed);
        }
        let taken = Arc::new(std::sync::OnceLock::new());
        let (reply, answer) = oneshot::channel();
        let inv = Invocation {
            request_id: request_id.to_string(),
            event,
            invoked_arn: alias.arn.clone(),
            trace_id: trace_id.to_string(),
            deadline: SystemTime::now() + config.timeout,
            reply,
            taken: taken.clone(),
        };
        if let Err(why) = pool.invoke(inv).await {
            eprintln!("gateway: {why}");
            return (Outcome::Crashed(why), entered.elapsed());
        }
        let outcome = match tokio::time::timeout(config.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Crashed("the invocation was dropped".into()),
            Err(_) => Outcome::Crashed(format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                config.timeout.as_secs_f64()
            )),
        };
        let ran = taken
            .get()
            .map_or_else(|| entered.elapsed(), |t| delayed + t.elapsed());
        (outcome, ran)
    }
}

/// An invocation, for the `AWS/Lambda` metrics.
pub(crate) struct Invoked {
    pub function: String,
    pub alias: String,
    pub version: String,
    pub duration_ms: f64,
    pub error: bool,
    /// Refused for want of concurrency: a throttle, not an invocation.
    pub throttled: bool,
    pub weighted: bool,
}

/// What one request adds to the metrics. `status` is set for a request through a stage
/// (the `AWS/ApiGateway` metrics), not for one through the Invoke API.
pub(crate) struct Usage {
    pub at_ms: u64,
    pub invocation: Option<Invoked>,
    pub stage: Option<String>,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub integration_ms: Option<f64>,
}

impl Gateway {
    /// Records `usage` once the answer is on its way: turning it into CloudWatch points (a
    /// key of strings for each metric and dimension set, some twenty per request) is work
    /// the caller need not wait for. Measured with bench/gateway.sh (README, The local API
    /// Gateway).
    pub(crate) fn record_later(self: &Arc<Self>, usage: Usage) {
        let gw = self.clone();
        tokio::spawn(async move {
            if let Some(i) = &usage.invocation {
                let points = metrics::invocation_points(&InvocationRecord {
                    function: &i.function,
                    alias: &i.alias,
                    version: &i.version,
                    duration_ms: i.duration_ms,
                    error: i.error,
                    throttled: i.throttled,
                    weighted: i.weighted,
                });
                gw.metrics.record(usage.at_ms, points);
            }
            if let Some(status) = usage.status {
                let points = metrics::api_points(&ApiRecord {
                    api_name: &gw.api_name,
                    stage: usage.stage.as_deref(),
                    status,
                    latency_ms: usage.latency_ms,
                    integration_ms: usage.integration_ms,
                });
                gw.metrics.record(usage.at_ms, points);
            }
        });
    }
}

fn json_response(status: StatusCode, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("static response")
}

fn hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A v4-shaped UUID, as API Gateway and Lambda spell request ids.
pub(crate) fn request_id() -> String {
    format!("{}-{}-4{}-{}-{}", hex(8), hex(4), hex(3), hex(4), hex(12))
}

pub(crate) fn trace_id(epoch_secs: u64) -> String {
    format!("Root=1-{epoch_secs:08x}-{}", hex(24))
}

pub async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let Some((stage, _)) = event::split_stage(&path) else {
        return forbidden(&gw, None, start, &path);
    };
    let snapshot = gw.stack.get();
    let (_, resource_path) = event::split_stage(&path).unwrap_or((stage, "/"));
    let Some(matched) = gw.resources.find(resource_path) else {
        return missing_authentication_token(&gw, stage, start);
    };
    let function = matched.function;
    let alias = match snapshot.route(stage, &gw.stage_variable, function) {
        Route::NoStage => return forbidden(&gw, None, start, &path),
        Route::NoAlias(why) => {
            eprintln!("gateway: {why}");
            let resp = json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"message": "Internal server error"}"#,
            );
            record_api(&gw, Some(stage), 500, start, None);
            return resp;
        }
        Route::Alias(a) => a,
    };
    let body = match read_body(&parts.headers, body).await {
        Ok(b) => b,
        Err(()) => {
            record_api(&gw, Some(stage), 413, start, None);
            return request_too_long();
        }
    };
    let now = SystemTime::now();
    let epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let http_date = httpdate::fmt_http_date(now);
    let rid = request_id();
    let trace = trace_id(epoch.as_secs());
    let account = alias.arn.split(':').nth(4).unwrap_or("123456789012");
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let extended = format!("{}=", &rid[..14].replace('-', ""));
    let empty = BTreeMap::new();
    let stage_variables = snapshot.stages.get(stage).unwrap_or(&empty);
    let incoming = Incoming {
        method: parts.method.as_str(),
        path: &path,
        query: parts.uri.query(),
        headers,
        body: &body,
        source_ip: peer.ip().to_string(),
    };
    let ctx = event::Context {
        stage,
        stage_variables,
        api_id: &snapshot.api_id,
        account_id: account,
        region: &gw.region,
        request_id: &rid,
        extended_request_id: &extended,
        trace_id: &trace,
        epoch_millis: epoch.as_millis(),
        http_date: &http_date,
        resource: matched.resource,
        path_parameters: &matched.parameters,
        binary_media_types: &gw.binary_media_types,
    };
    let payload = serde_json::to_vec(&event::build_event(&incoming, &ctx)).expect("event json");
    if payload.len() > MAX_EVENT {
        // Lambda refuses the Invoke (RequestEntityTooLargeException) before any instance
        // sees it: no invocation is counted, and API Gateway answers 413.
        if gw.verbose {
            eprintln!(
                "gateway: stage {stage} function {function}: the event is {} bytes, over Lambda's {MAX_EVENT}: 413",
                payload.len()
            );
        }
        record_api(&gw, Some(stage), 413, start, None);
        return request_too_long();
    }

    let version = stack::pick_version(alias, fastrand::f64()).to_string();
    let lambda_start = Instant::now();
    let (outcome, ran) = gw
        .invoke(function, alias, &version, payload, &rid, &trace)
        .await;
    // API Gateway's IntegrationLatency includes a cold start; Lambda's Duration does not.
    let integration_ms = lambda_start.elapsed().as_secs_f64() * 1000.0;
    let duration_ms = ran.as_secs_f64() * 1000.0;
    let throttled = matches!(outcome, Outcome::Throttled(_));
    let function_failed = !matches!(outcome, Outcome::Response(_)) && !throttled;
    let invocation = Invoked {
        function: function.to_string(),
        alias: alias.name.clone(),
        version: version.clone(),
        duration_ms,
        error: function_failed,
        throttled,
        weighted: !alias.weights.is_empty(),
    };

    let mut response = match outcome {
        Outcome::Response(bytes) => match event::map_response(&bytes) {
            Ok(out) => {
                let mut r = Response::builder().status(out.status);
                for (k, v) in &out.headers {
                    if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                        r = r.header(k, v);
                    }
                }
                r.body(Body::from(out.body))
                    .unwrap_or_else(|_| bad_gateway())
            }
            Err(e) => {
                eprintln!(
                    "gateway: stage {stage} function {function} version {version}: Execution failed due to configuration error: Malformed Lambda proxy response ({e})"
                );
                bad_gateway()
            }
        },
        Outcome::FunctionError { error_type, body } => {
            if gw.verbose {
                eprintln!(
                    "gateway: stage {stage} function {function} version {version}: function error {error_type}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            bad_gateway()
        }
        Outcome::Crashed(why) => {
            if gw.verbose {
                eprintln!("gateway: stage {stage} function {function} version {version}: {why}");
            }
            bad_gateway()
        }
        Outcome::CodeMissing(why) => broken_deployment(&why),
        Outcome::Throttled(why) => {
            if gw.verbose {
                eprintln!(
                    "gateway: stage {stage} function {function} version {version}: throttled: {why}"
                );
            }
            lambda_throttled()
        }
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace) {
        h.insert("x-amzn-trace-id", v);
    }
    let status = response.status().as_u16();
    gw.record_later(Usage {
        at_ms: crate::clock::now_millis(),
        invocation: Some(invocation),
        stage: Some(stage.to_string()),
        status: Some(status),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        integration_ms: Some(integration_ms),
    });
    if gw.verbose {
        eprintln!(
            "{} {} {path} stage={stage} function={function} version={version} status={status} latency_ms={:.2}",
            httpdate::fmt_http_date(SystemTime::now()),
            parts.method,
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

/// The body, up to API Gateway's `MAX_BODY`; `Err` when it is longer. A client that waits
/// for `100 Continue` before sending a body declared too long is answered at once (it then
/// sends nothing); any other has the rest of its body read and dropped (up to `MAX_DRAIN`)
/// so that it reads the 413 instead of a reset connection.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue && declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(());
    }
    let mut body = body;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(());
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > MAX_BODY + MAX_DRAIN {
            return Err(());
        }
        if seen <= MAX_BODY {
            kept.extend_from_slice(&data);
        }
    }
    match seen <= MAX_BODY {
        true => Ok(Bytes::from(kept)),
        false => Err(()),
    }
}

/// API Gateway's answer to a body over its 10 MB, or an event over Lambda's 6 MB. The
/// connection is closed after it, as a server that stopped reading a body must.
fn request_too_long() -> Response {
    let mut r = json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        r#"{"message":"Request Too Long"}"#,
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// An API Gateway error: a JSON body and the `x-amzn-errortype` that names it.
fn gateway_error(status: StatusCode, body: &'static str, error_type: &'static str) -> Response {
    let mut r = json_response(status, body);
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    r
}

/// How API Gateway answers when the function fails or answers something it cannot map.
fn bad_gateway() -> Response {
    gateway_error(
        StatusCode::BAD_GATEWAY,
        r#"{"message": "Internal server error"}"#,
        "InternalServerErrorException",
    )
}

/// How API Gateway answers when Lambda throttles a proxy integration: a 500, not the 429
/// Lambda gave it (the client cannot tell it from any other integration failure).
fn lambda_throttled() -> Response {
    gateway_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"message": "Internal server error"}"#,
        "InternalServerErrorException",
    )
}

/// A version whose code the gateway lacks: still API Gateway's 502, but the body says why (the
/// function, the version, its missing code and what to pass), where a bare "Internal server
/// error" would leave the reader to find the gateway's log.
fn broken_deployment(why: &str) -> Response {
    let body = serde_json::json!({
        "message": format!("Internal server error: {why}"),
        "errorType": "InvalidZipFileException",
    });
    let mut r = Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("json response");
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("InvalidZipFileException"),
    );
    r
}

/// A path no resource of the API matches: API Gateway's 403, which names a missing token
/// because an unknown resource and an unauthenticated call look alike from outside.
fn missing_authentication_token(gw: &Arc<Gateway>, stage: &str, start: Instant) -> Response {
    record_api(gw, Some(stage), 403, start, None);
    gateway_error(
        StatusCode::FORBIDDEN,
        r#"{"message":"Missing Authentication Token"}"#,
        "MissingAuthenticationTokenException",
    )
}

fn forbidden(gw: &Arc<Gateway>, stage: Option<&str>, start: Instant, path: &str) -> Response {
    record_api(gw, stage, 403, start, None);
    if gw.verbose {
        eprintln!(
            "{} {path} stage=- version=- status=403 latency_ms={:.2}",
            httpdate::fmt_http_date(SystemTime::now()),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    gateway_error(
        StatusCode::FORBIDDEN,
        r#"{"message":"Forbidden"}"#,
        "ForbiddenException",
    )
}

fn record_api(
    gw: &Arc<Gateway>,
    stage: Option<&str>,
    status: u16,
    start: Instant,
    integration_ms: Option<f64>,
) {
    gw.record_later(Usage {
        at_ms: crate::clock::now_millis(),
        invocation: None,
        stage: stage.map(str::to_string),
        status: Some(status),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        integration_ms,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[tokio::test]
    async fn a_body_up_to_10_mb_is_read_and_one_over_it_refused() {
        let at_limit = vec![7u8; MAX_BODY];
        let got = read_body(&HeaderMap::new(), Body::from(at_limit.clone())).await;
        assert_eq!(got.unwrap().len(), MAX_BODY);
        let over = vec![7u8; MAX_BODY + 1];
        assert!(
            read_body(&HeaderMap::new(), Body::from(over))
                .await
                .is_err()
        );
        assert!(
            read_body(&HeaderMap::new(), Body::empty())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_client_waiting_to_continue_is_refused_on_its_declared_length() {
        // The body is never read: a client that waits for 100 Continue has not sent it.
        let waits = headers(&[("expect", "100-continue"), ("content-length", "10485761")]);
        assert!(read_body(&waits, Body::empty()).await.is_err());
        // Within the limit it is read as usual.
        let small = headers(&[("expect", "100-continue"), ("content-length", "3")]);
        assert_eq!(read_body(&small, Body::from("abc")).await.unwrap(), "abc");
    }

    #[test]
    fn the_413_closes_the_connection() {
        let r = request_too_long();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }
}
