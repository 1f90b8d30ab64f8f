//! A fault-injecting HTTP proxy on 127.0.0.1 in front of moto: what a lossy network and a
//! busy Lambda do to `promote`, which moto alone never does.
//!
//! `promote` reaches it through `AWS_ENDPOINT_URL`, so every request it makes (Lambda and
//! API Gateway REST-JSON, CloudWatch awsQuery) passes through. With a seeded RNG, a share of
//! the requests (`rate`) gets one fault, chosen uniformly among those that apply:
//! - a 500 or a 503 in the protocol's own error shape, without forwarding;
//! - throttling as each service answers it (Lambda and API Gateway: 429 with
//!   `x-amzn-ErrorType: TooManyRequestsException`; CloudWatch: 400 `<Code>Throttling</Code>`);
//! - on UpdateAlias, Lambda's `ResourceConflictException` (409, "an update is in progress");
//! - added latency, then the request is served;
//! - the answer dropped after the request was applied upstream: forwarded to moto, then the
//!   connection is closed without a response (the caller cannot tell whether it happened).
//!
//! It can also enforce alias RevisionIds as Lambda does and moto does not: it keeps its own
//! revision id per alias, puts it in GetAlias/UpdateAlias answers, answers an UpdateAlias
//! carrying a stale one with 412 `PreconditionFailedException`, and issues a new id after
//! every applied write (writes are applied one at a time, as Lambda serialises them).
//! Every applied UpdateAlias is recorded (routing and description) so a test can check the
//! sequence of writes, and UpdateAlias requests can be held at a gate to force a race.
//!
//! Written on hyper's connection halves rather than with a proxy crate: the point is to
//! rewrite answers per protocol and to drop connections at chosen moments, which general
//! proxies do not expose.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// How long a request may wait at a gate before it goes on anyway (no test hangs on it).
const GATE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Error500,
    Error503,
    Throttle,
    /// Lambda's ResourceConflictException on UpdateAlias.
    UpdateInProgress,
    Latency,
    /// Forwarded and applied, then the connection closed without an answer.
    AnswerLost,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Error500,
        Fault::Error503,
        Fault::Throttle,
        Fault::UpdateInProgress,
        Fault::Latency,
        Fault::AnswerLost,
    ];
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Share of requests that get a fault, 0.0 to 1.0.
    pub rate: f64,
    pub seed: u64,
    /// Check and rotate alias RevisionIds as Lambda does.
    pub enforce_revisions: bool,
    /// Added latency, uniformly in this range.
    pub latency: (Duration, Duration),
    /// CloudWatch answers every request with a 500, as during an outage of it.
    pub cloudwatch_down: bool,
}

impl Config {
    /// A transparent proxy (no faults, no RevisionId checks): moto as is.
    pub fn clean() -> Config {
        Config {
            rate: 0.0,
            seed: 0,
            enforce_revisions: false,
            latency: (Duration::from_millis(20), Duration::from_millis(200)),
            cloudwatch_down: false,
        }
    }
}

/// One UpdateAlias that moto applied, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedWrite {
    /// The Lambda function whose alias was written.
    pub function: String,
    pub alias: String,
    pub version: String,
    /// AdditionalVersionWeights as sent (empty: routing cleared).
    pub weights: BTreeMap<String, f64>,
    pub description: Option<String>,
    /// The caller never got the answer.
    pub answer_lost: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub requests: usize,
    pub faults: BTreeMap<Fault, usize>,
    /// Requests the SDK marked as a retry (`amz-sdk-request: attempt=N`, N > 1).
    pub sdk_retries: usize,
    /// UpdateAlias answered 412 for a stale RevisionId.
    pub stale_revisions: usize,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.sdk_retries += other.sdk_retries;
        self.stale_revisions += other.stale_revisions;
        for (k, n) in &other.faults {
            *self.faults.entry(*k).or_default() += n;
        }
    }
}

/// Which UpdateAlias requests wait at the gate: those of `alias` for which `matches` holds.
pub struct Gate {
    pub alias: String,
    pub matches: Box<dyn Fn(&UpdateAlias) -> bool + Send>,
}

/// The parts of an UpdateAlias body the proxy looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateAlias {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

impl UpdateAlias {
    fn parse(body: &[u8]) -> Option<UpdateAlias> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let weights = v["RoutingConfig"]["AdditionalVersionWeights"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, w)| Some((k.clone(), w.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Some(UpdateAlias {
            version: v["FunctionVersion"].as_str()?.to_string(),
            weights,
            description: v["Description"].as_str().map(str::to_string),
            revision_id: v["RevisionId"].as_str().map(str::to_string),
        })
    }
}

#[derive(Default)]
struct State {
    /// `function/alias` -> the proxy's current revision number for it.
    revisions: BTreeMap<String, u64>,
    next_revision: u64,
    applied: Vec<AppliedWrite>,
    tally: Tally,
    gate: Option<Gate>,
    /// Requests waiting at the gate now, and the release generation they wait for.
    held: usize,
    released: u64,
}

impl State {
    fn revision(&mut self, alias: &str) -> String {
        let next = &mut self.next_revision;
        let n = *self.revisions.entry(alias.to_string()).or_insert_with(|| {
            *next += 1;
            *next
        });
        revision_text(n)
    }

    fn rotate(&mut self, alias: &str) -> String {
        self.next_revision += 1;
        self.revisions.insert(alias.to_string(), self.next_revision);
        revision_text(self.next_revision)
    }
}

fn revision_text(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

struct Shared {
    upstream: SocketAddr,
    config: Mutex<Config>,
    rng: Mutex<fastrand::Rng>,
    state: Mutex<State>,
    /// Signalled whenever `state` changes (a write applied, a request held).
    changed: Condvar,
    /// Lambda applies one write to an alias at a time; so does the proxy when enforcing.
    write_lock: tokio::sync::Mutex<()>,
    release: tokio::sync::Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The proxy: a thread running its own runtime, stopped on drop.
pub struct FaultProxy {
    pub port: u16,
    pub endpoint: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream_port` on 127.0.0.1.
    pub fn start(upstream_port: u16, config: Config) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            config: Mutex::new(config),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            write_lock: tokio::sync::Mutex::new(()),
            release: tokio::sync::Notify::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(serve(listener, s, stopped));
            })
            .unwrap();
        FaultProxy {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn set_config(&self, config: Config) {
        *self.shared.rng.lock().unwrap() = fastrand::Rng::with_seed(config.seed);
        *self.shared.config.lock().unwrap() = config;
    }

    pub fn set_rate(&self, rate: f64) {
        self.shared.config.lock().unwrap().rate = rate;
    }

    pub fn tally(&self) -> Tally {
        self.shared.state().tally.clone()
    }

    /// Every UpdateAlias applied so far, in order.
    pub fn applied(&self) -> Vec<AppliedWrite> {
        self.shared.state().applied.clone()
    }

    /// Waits until at least `n` writes have been applied; false after `timeout`.
    pub fn wait_applied(&self, n: usize, timeout: Duration) -> bool {
        self.wait(timeout, |st| st.applied.len() >= n)
    }

    /// Someone wrote the alias behind the proxy's back (the test, directly on moto): as
    /// Lambda would, the alias gets a new RevisionId.
    pub fn written_outside(&self, alias: &str) {
        let mut st = self.shared.state();
        let keys: Vec<String> = st
            .revisions
            .keys()
            .filter(|k| k.rsplit_once('/').is_some_and(|(_, a)| a == alias))
            .cloned()
            .collect();
        for k in keys {
            st.rotate(&k);
        }
    }

    /// From now on, UpdateAlias requests matching `gate` wait until [`FaultProxy::release`].
    pub fn hold(&self, gate: Gate) {
        self.shared.state().gate = Some(gate);
    }

    /// Waits until `n` requests are held at the gate; false after `timeout`.
    pub fn wait_held(&self, n: usize, timeout: Duration) -> bool {
        self.wait(timeout, |st| st.held >= n)
    }

    /// Lets every held request go (in the order they arrived at the write lock), and
    /// removes the gate.
    pub fn release(&self) {
        let mut st = self.shared.state();
        st.gate = None;
        st.released += 1;
        drop(st);
        self.shared.release.notify_waiters();
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state();
        while !done(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Held requests go on, so the runtime can stop.
        self.release();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            // A service error closes the connection without an answer: that is how an
            // answer is lost on purpose.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the proxy knows about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Lambda,
    ApiGateway,
    /// CloudWatch's awsQuery (form body, XML answers).
    Query,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// (function, alias)
    GetAlias(String, String),
    UpdateAlias(String, String),
    Other,
}

#[derive(Debug)]
struct AnswerDropped;

impl std::fmt::Display for AnswerDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped on purpose")
    }
}

impl std::error::Error for AnswerDropped {}

type Answer = Result<Response<Full<Bytes>>, AnswerDropped>;

fn classify(req: &hyper::http::request::Parts) -> (Protocol, Op) {
    let scope_service = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_string();
    let form = req
        .headers
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let protocol = match scope_service.as_str() {
        "lambda" => Protocol::Lambda,
        "apigateway" => Protocol::ApiGateway,
        _ if form => Protocol::Query,
        "monitoring" => Protocol::Query,
        _ => Protocol::ApiGateway,
    };
    let path: Vec<&str> = req
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let op = match (protocol, path.as_slice()) {
        (Protocol::Lambda, [_, "functions", function, "aliases", name]) => {
            match req.method.as_str() {
                "GET" => Op::GetAlias(function.to_string(), name.to_string()),
                "PUT" => Op::UpdateAlias(function.to_string(), name.to_string()),
                _ => Op::Other,
            }
        }
        _ => Op::Other,
    };
    (protocol, op)
}

fn error_answer(protocol: Protocol, fault: Fault) -> Response<Full<Bytes>> {
    let (status, code, message) = match (fault, protocol) {
        (Fault::Error500, Protocol::Query) => (500, "InternalFailure", "internal failure"),
        (Fault::Error500, _) => (500, "ServiceException", "internal service error"),
        (Fault::Error503, Protocol::Query) => (503, "ServiceUnavailable", "service unavailable"),
        (Fault::Error503, _) => (503, "ServiceUnavailableException", "service unavailable"),
        (Fault::Throttle, Protocol::Query) => (400, "Throttling", "Rate exceeded"),
        (Fault::Throttle, _) => (429, "TooManyRequestsException", "Rate exceeded"),
        (Fault::UpdateInProgress, _) => (
            409,
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress for resource",
        ),
        (Fault::Latency | Fault::AnswerLost, _) => unreachable!("not an error answer"),
    };
    let builder = Response::builder()
        .status(status)
        .header("x-amzn-RequestId", "00000000-fault-proxy");
    match protocol {
        Protocol::Query => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><Error><Type>{kind}</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error><RequestId>00000000-fault-proxy</RequestId></ErrorResponse>"
            );
            builder
                .header(CONTENT_TYPE, "text/xml")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        }
        Protocol::Lambda | Protocol::ApiGateway => {
            let kind = if status >= 500 { "Service" } else { "User" };
            let body = json!({"Type": kind, "message": message});
            builder
                .header(CONTENT_TYPE, "application/json")
                .header("x-amzn-ErrorType", code)
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        }
    }
}

fn stale_revision_answer() -> Response<Full<Bytes>> {
    let body = json!({
        "Type": "User",
        "message": "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    });
    Response::builder()
        .status(412)
        .header(CONTENT_TYPE, "application/json")
        .header("x-amzn-ErrorType", "PreconditionFailedException")
        .header("x-amzn-RequestId", "00000000-fault-proxy")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Picks this request's fault, if any.
fn pick(shared: &Shared, op: &Op) -> Option<(Fault, Duration)> {
    let cfg = shared.config();
    let mut rng = shared.rng.lock().unwrap_or_else(|p| p.into_inner());
    if cfg.rate <= 0.0 || rng.f64() >= cfg.rate {
        return None;
    }
    let kinds: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| *f != Fault::UpdateInProgress || matches!(op, Op::UpdateAlias(..)))
        .collect();
    let fault = kinds[rng.usize(..kinds.len())];
    let (lo, hi) = cfg.latency;
    let span = hi.saturating_sub(lo).as_millis() as u64;
    let latency = lo + Duration::from_millis(rng.u64(0..=span));
    Some((fault, latency))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Answer {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| AnswerDropped)?.to_bytes();
    let (protocol, op) = classify(&parts);
    let retry = parts
        .headers
        .get("amz-sdk-request")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.split(';')
                .find_map(|kv| kv.trim().strip_prefix("attempt="))
        })
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 1);
    let fault = if protocol == Protocol::Query && shared.config().cloudwatch_down {
        Some((Fault::Error500, Duration::ZERO))
    } else {
        pick(&shared, &op)
    };
    {
        let mut st = shared.state();
        st.tally.requests += 1;
        st.tally.sdk_retries += usize::from(retry);
        if let Some((f, _)) = fault {
            *st.tally.faults.entry(f).or_default() += 1;
        }
    }
    match fault {
        Some((
            f @ (Fault::Error500 | Fault::Error503 | Fault::Throttle | Fault::UpdateInProgress),
            _,
        )) => {
            return Ok(error_answer(protocol, f));
        }
        Some((Fault::Latency, d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let lose_answer = matches!(fault, Some((Fault::AnswerLost, _)));
    let answer = match &op {
        Op::UpdateAlias(function, alias) => {
            update_alias(&shared, function, alias, &mut parts, body, lose_answer).await?
        }
        Op::GetAlias(function, alias) => {
            let mut answer = forward(&shared, parts, body).await?;
            if shared.config().enforce_revisions && answer.status().is_success() {
                let rev = shared.state().revision(&format!("{function}/{alias}"));
                answer = answer.with_revision(&rev);
            }
            answer.into_response()
        }
        Op::Other => forward(&shared, parts, body).await?.into_response(),
    };
    if lose_answer {
        return Err(AnswerDropped);
    }
    Ok(answer)
}

async fn update_alias(
    shared: &Arc<Shared>,
    function: &str,
    alias: &str,
    parts: &mut hyper::http::request::Parts,
    body: Bytes,
    lose_answer: bool,
) -> Result<Response<Full<Bytes>>, AnswerDropped> {
    let request = UpdateAlias::parse(&body);
    if let Some(r) = &request {
        hold_at_gate(shared, alias, r).await;
    }
    let enforce = shared.config().enforce_revisions;
    let _one_at_a_time = shared.write_lock.lock().await;
    let mut body = body;
    if enforce && let Some(r) = &request {
        let current = shared.state().revision(&format!("{function}/{alias}"));
        if r.revision_id.as_deref().is_some_and(|sent| sent != current) {
            shared.state().tally.stale_revisions += 1;
            return Ok(stale_revision_answer());
        }
        // The proxy's ids are not moto's: moto is not asked to check them.
        let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("RevisionId");
            body = Bytes::from(v.to_string());
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
    }
    let mut answer = forward(shared, parts.clone(), body).await?;
    if answer.status().is_success() {
        let mut st = shared.state();
        let rev = st.rotate(&format!("{function}/{alias}"));
        if let Some(r) = request {
            st.applied.push(AppliedWrite {
                function: function.to_string(),
                alias: alias.to_string(),
                version: r.version,
                weights: r.weights,
                description: r.description,
                answer_lost: lose_answer,
            });
        }
        drop(st);
        shared.changed.notify_all();
        if enforce {
            answer = answer.with_revision(&rev);
        }
    }
    Ok(answer.into_response())
}

async fn hold_at_gate(shared: &Arc<Shared>, alias: &str, request: &UpdateAlias) {
    let generation = {
        let mut st = shared.state();
        let held = st
            .gate
            .as_ref()
            .is_some_and(|g| g.alias == alias && (g.matches)(request));
        if !held {
            return;
        }
        st.held += 1;
        st.released
    };
    shared.changed.notify_all();
    let released = async {
        loop {
            let notified = shared.release.notified();
            if shared.state().released > generation {
                return;
            }
            notified.await;
        }
    };
    let _ = tokio::time::timeout(GATE_TIMEOUT, released).await;
    shared.state().held -= 1;
}

/// An answer from moto, read whole.
struct Upstream {
    parts: hyper::http::response::Parts,
    body: Bytes,
}

impl Upstream {
    fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// Puts the proxy's RevisionId into a JSON answer.
    fn with_revision(mut self, revision: &str) -> Upstream {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&self.body) {
            v["RevisionId"] = Value::String(revision.to_string());
            self.body = Bytes::from(v.to_string());
        }
        self
    }

    fn into_response(mut self) -> Response<Full<Bytes>> {
        self.parts.headers.remove(TRANSFER_ENCODING);
        self.parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        Response::from_parts(self.parts, Full::new(self.body))
    }
}

/// One request to moto on a fresh connection; the whole answer read.
async fn forward(
    shared: &Shared,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Upstream, AnswerDropped> {
    let stream = tokio::net::TcpStream::connect(shared.upstream)
        .await
        .map_err(|_| AnswerDropped)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| AnswerDropped)?;
    tokio::spawn(conn);
    let answer = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| AnswerDropped)?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.map_err(|_| AnswerDropped)?.to_bytes();
    Ok(Upstream { parts, body })
}
