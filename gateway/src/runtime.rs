//! Each version's `bootstrap` as Lambda runs it: child processes speaking the Lambda Runtime
//! API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>) to a small server of
//! ours. Every instance gets its own loopback listener, so a request for work, a response and
//! a crash are all tied to the one process that made them. A version scales out by one more
//! instance whenever an invocation arrives while none is idle, up to a cap.
//!
//! Why our own server rather than `cargo lambda watch --only-lambda-apis`: that emulator runs
//! one function from a cargo project it builds itself, keyed by function name, so it can
//! neither hold several published versions of one function side by side nor start instances
//! from a zip, and a crashed bootstrap is restarted by its watcher instead of failing the
//! invocation as Lambda does. The README has the measured comparison.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};

const API: &str = "/2018-06-01/runtime";

/// How an invocation ended, as Lambda reports it to the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Vec<u8>),
    /// The function reported an error through `/error` (`X-Amz-Function-Error: Unhandled`).
    FunctionError {
        error_type: String,
        body: Vec<u8>,
    },
    /// The process died, or never started, holding the invocation (`Runtime.ExitError`).
    Crashed(String),
}

pub struct Invocation {
    pub request_id: String,
    pub event: Vec<u8>,
    pub invoked_arn: String,
    pub trace_id: String,
    pub deadline: SystemTime,
    pub reply: oneshot::Sender<Outcome>,
    /// When an instance took the event: Lambda's `Duration` runs from there to the answer
    /// (an instance's start is its Init Duration, not part of `Duration`).
    pub taken: Arc<OnceLock<Instant>>,
}

/// What Lambda knows of a version when it starts an instance.
#[derive(Debug, Clone)]
pub struct Spec {
    pub function_name: String,
    pub version: String,
    pub memory_mb: i32,
    pub region: String,
    pub environment: BTreeMap<String, String>,
    pub task_root: PathBuf,
    /// Forward the function's stdout (its request log) to ours.
    pub show_output: bool,
}

struct Current {
    request_id: String,
    reply: oneshot::Sender<Outcome>,
}

pub struct Pool {
    spec: Spec,
    tx: mpsc::UnboundedSender<Invocation>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    idle: AtomicUsize,
    starting: AtomicUsize,
    instances: AtomicUsize,
    queued: AtomicUsize,
    max_instances: usize,
    next_instance: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

impl Pool {
    pub fn new(spec: Spec, max_instances: usize, shutdown: watch::Receiver<bool>) -> Arc<Pool> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Pool {
            spec,
            tx,
            rx: tokio::sync::Mutex::new(rx),
            idle: AtomicUsize::new(0),
            starting: AtomicUsize::new(0),
            instances: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            max_instances: max_instances.max(1),
            next_instance: AtomicUsize::new(0),
            shutdown,
        })
    }

    pub fn instances(&self) -> usize {
        self.instances.load(Ordering::SeqCst)
    }

    /// Queues the invocation, starting an instance first when none is idle or starting.
    /// `Err` only when no instance exists and none could be started.
    pub async fn invoke(self: &Arc<Self>, inv: Invocation) -> Result<(), String> {
        let queued = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        let ready = self.idle.load(Ordering::SeqCst) + self.starting.load(Ordering::SeqCst);
        if queued > ready
            && self.instances() < self.max_instances
            && let Err(e) = self.clone().spawn_instance().await
        {
            if self.instances() == 0 {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
            eprintln!("gateway: {e}; the invocation waits for a running instance");
        }
        if self.tx.send(inv).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err("the version's instance pool is closed".into());
        }
        Ok(())
    }

    async fn spawn_instance(self: Arc<Self>) -> Result<(), String> {
        let spec = &self.spec;
        let what = format!("function {} version {}", spec.function_name, spec.version);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("{what}: cannot bind a Runtime API port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("{what}: {e}"))?;
        let n = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let mut cmd = Command::new(spec.task_root.join("bootstrap"));
        cmd.env_clear()
            .envs(&spec.environment)
            .envs(lambda_environment(spec, &addr.to_string(), n))
            .current_dir(&spec.task_root)
            .stdin(std::process::Stdio::null())
            // Our stdout carries only the `listening on` line; the function's log goes to
            // stderr with ours.
            .stdout(match spec.show_output.then(stderr_fd).flatten() {
                Some(fd) => std::process::Stdio::from(fd),
                None => std::process::Stdio::null(),
            })
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "{what}: cannot start {}: {e}",
                spec.task_root.join("bootstrap").display()
            )
        })?;
        self.instances.fetch_add(1, Ordering::SeqCst);
        self.starting.fetch_add(1, Ordering::SeqCst);
        let instance = Arc::new(Instance {
            pool: self.clone(),
            current: Mutex::new(None),
            alive: AtomicBool::new(true),
            started: AtomicBool::new(false),
        });
        let app = Router::new()
            .route(&format!("{API}/invocation/next"), get(next))
            .route(&format!("{API}/invocation/{{id}}/response"), post(response))
            .route(&format!("{API}/invocation/{{id}}/error"), post(error))
            .route(&format!("{API}/init/error"), post(init_error))
            .with_state(instance.clone());
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let server = axum::serve(listener, app);
            let ended = tokio::select! {
                status = child.wait() => match status {
                    Ok(s) => format!("the bootstrap exited ({s})"),
                    Err(e) => format!("the bootstrap could not be waited for: {e}"),
                },
                _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                    let _ = child.kill().await;
                    "the gateway is stopping".to_string()
                }
                r = server => format!("the Runtime API server stopped: {r:?}"),
            };
            instance.end(&ended);
        });
        Ok(())
    }
}

fn stderr_fd() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    std::io::stderr().as_fd().try_clone_to_owned().ok()
}

/// The variables Lambda sets for a `provided.al2023` function
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>).
pub fn lambda_environment(
    spec: &Spec,
    runtime_api: &str,
    instance: usize,
) -> Vec<(String, String)> {
    let day = httpdate::fmt_http_date(SystemTime::now());
    let stream_date = crate::clock::ymd_slashes(&day);
    [
        ("AWS_LAMBDA_FUNCTION_NAME", spec.function_name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", spec.version.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.function_name),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("{stream_date}/[{}]{instance:032x}", spec.version),
        ),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        (
            "AWS_EXECUTION_ENV",
            "AWS_Lambda_provided.al2023".to_string(),
        ),
        ("AWS_REGION", spec.region.clone()),
        ("AWS_DEFAULT_REGION", spec.region.clone()),
        ("LAMBDA_TASK_ROOT", spec.task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", spec.task_root.display().to_string()),
        ("_HANDLER", "bootstrap".to_string()),
        ("TZ", ":UTC".to_string()),
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

struct Instance {
    pool: Arc<Pool>,
    current: Mutex<Option<Current>>,
    alive: AtomicBool,
    started: AtomicBool,
}

impl Instance {
    /// The process is gone: the invocation it held fails as Lambda's `Runtime.ExitError`.
    fn end(&self, why: &str) {
        self.alive.store(false, Ordering::SeqCst);
        if !self.started.swap(true, Ordering::SeqCst) {
            self.pool.starting.fetch_sub(1, Ordering::SeqCst);
        }
        self.pool.instances.fetch_sub(1, Ordering::SeqCst);
        if let Some(cur) = self.current.lock().expect("instance lock").take() {
            let _ = cur.reply.send(Outcome::Crashed(format!(
                "RequestId: {} Error: Runtime exited: {why}",
                cur.request_id
            )));
        }
    }

    fn finish(&self, id: &str, outcome: Outcome) -> StatusCode {
        let mut current = self.current.lock().expect("instance lock");
        match current.take() {
            Some(cur) if cur.request_id == id => {
                let _ = cur.reply.send(outcome);
                StatusCode::ACCEPTED
            }
            other => {
                *current = other;
                StatusCode::BAD_REQUEST
            }
        }
    }
}

async fn next(State(inst): State<Arc<Instance>>) -> Response {
    let pool = &inst.pool;
    if !inst.started.swap(true, Ordering::SeqCst) {
        pool.starting.fetch_sub(1, Ordering::SeqCst);
    }
    pool.idle.fetch_add(1, Ordering::SeqCst);
    let inv = loop {
        let mut rx = pool.rx.lock().await;
        let Some(inv) = rx.recv().await else {
            drop(rx);
            // The pool is gone: the gateway is stopping.
            return std::future::pending().await;
        };
        drop(rx);
        pool.queued.fetch_sub(1, Ordering::SeqCst);
        // The caller gave up (its timeout): Lambda would not run it either.
        if inv.reply.is_closed() {
            continue;
        }
        break inv;
    };
    pool.idle.fetch_sub(1, Ordering::SeqCst);
    let Invocation {
        request_id,
        event,
        invoked_arn,
        trace_id,
        deadline,
        reply,
        taken,
    } = inv;
    {
        let mut current = inst.current.lock().expect("instance lock");
        if !inst.alive.load(Ordering::SeqCst) {
            // This instance died while waiting: hand the work to another one.
            drop(current);
            pool.queued.fetch_add(1, Ordering::SeqCst);
            let _ = pool.tx.send(Invocation {
                request_id,
                event,
                invoked_arn,
                trace_id,
                deadline,
                reply,
                taken,
            });
            return StatusCode::GONE.into_response();
        }
        *current = Some(Current {
            request_id: request_id.clone(),
            reply,
        });
        let _ = taken.set(Instant::now());
    }
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", &request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &invoked_arn);
    set("lambda-runtime-trace-id", &trace_id);
    set("content-type", "application/json");
    (StatusCode::OK, headers, event).into_response()
}

async fn response(
    State(inst): State<Arc<Instance>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    inst.finish(&id, Outcome::Response(body.to_vec()))
}

async fn error(
    State(inst): State<Arc<Instance>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_string();
    inst.finish(
        &id,
        Outcome::FunctionError {
            error_type,
            body: body.to_vec(),
        },
    )
}

async fn init_error(State(inst): State<Arc<Instance>>, body: Bytes) -> StatusCode {
    eprintln!(
        "gateway: function {} version {}: init error: {}",
        inst.pool.spec.function_name,
        inst.pool.spec.version,
        String::from_utf8_lossy(&body)
    );
    StatusCode::ACCEPTED
}
