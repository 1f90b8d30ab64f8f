//! Each version's `bootstrap` as Lambda runs it: child processes speaking the Lambda Runtime
//! API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>) to a small server of
//! ours. Every instance gets its own loopback listener, so a request for work, a response and
//! a crash are all tied to the one process that made them. A version scales out by one more
//! instance whenever an invocation arrives while none is idle, up to a cap. An invocation goes
//! to the instance that became idle last, as Lambda favours its warmest environment: after a
//! burst has scaled a version out, steady traffic keeps to a few hot processes instead of
//! waking every one in turn. (On this 2-core machine the p50 at 200 requests a second moved
//! within run-to-run noise either way; the order is kept for its likeness to Lambda.)
//!
//! Why our own server rather than `cargo lambda watch --only-lambda-apis`: that emulator runs
//! one function from a cargo project it builds itself, keyed by function name, so it can
//! neither hold several published versions of one function side by side nor start instances
//! from a zip, and a crashed bootstrap is restarted by its watcher instead of failing the
//! invocation as Lambda does. The README has the measured comparison.

use std::collections::{BTreeMap, VecDeque};
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
use tokio::sync::{oneshot, watch};

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
    /// The version's code is not here (no zip given with `--artifacts` has its CodeSha256):
    /// nothing ran, as when Lambda cannot unpack a deployment (`InvalidZipFileException`).
    CodeMissing(String),
    /// Lambda refused the invocation for want of concurrency (429
    /// `TooManyRequestsException`): nothing ran, and only `Throttles` counts it.
    Throttled(String),
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
    /// The AWS endpoint the function's own SDK calls go to: the gateway's `AWS_ENDPOINT_URL`
    /// (the emulator), so that a function reaches DynamoDB there (`aws_environment`).
    pub aws_endpoint: Option<String>,
}

struct Current {
    request_id: String,
    reply: oneshot::Sender<Outcome>,
}

/// Who waits for whom: instances for work, or work for instances; never both at once.
#[derive(Default)]
struct Queue {
    /// Instances waiting in `/next`, the most recently idle last.
    idle: Vec<oneshot::Sender<Invocation>>,
    /// Invocations no instance has taken yet, oldest first.
    pending: VecDeque<Invocation>,
}

impl Queue {
    /// To the instance idle most recently, else queued. An instance whose `/next` was
    /// dropped (its process died while it waited) is passed over.
    fn place(&mut self, mut inv: Invocation) {
        while let Some(waiter) = self.idle.pop() {
            match waiter.send(inv) {
                Ok(()) => return,
                Err(back) => inv = back,
            }
        }
        self.pending.push_back(inv);
    }

    /// The oldest invocation still wanted, else a place among the idle.
    fn take_or_wait(&mut self) -> Result<Invocation, oneshot::Receiver<Invocation>> {
        // The caller gave up (its timeout): Lambda would not run it either.
        while let Some(inv) = self.pending.pop_front() {
            if !inv.reply.is_closed() {
                return Ok(inv);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.idle.push(tx);
        Err(rx)
    }
}

pub struct Pool {
    spec: Spec,
    queue: Mutex<Queue>,
    starting: AtomicUsize,
    instances: AtomicUsize,
    max_instances: usize,
    next_instance: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

impl Pool {
    pub fn new(spec: Spec, max_instances: usize, shutdown: watch::Receiver<bool>) -> Arc<Pool> {
        Arc::new(Pool {
            spec,
            queue: Mutex::new(Queue::default()),
            starting: AtomicUsize::new(0),
            instances: AtomicUsize::new(0),
            max_instances: max_instances.max(1),
            next_instance: AtomicUsize::new(0),
            shutdown,
        })
    }

    pub fn instances(&self) -> usize {
        self.instances.load(Ordering::SeqCst)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the invocation to an idle instance, or queues it, starting an instance first
    /// when none is idle and fewer are starting than invocations wait.
    /// `Err` only when no instance exists and none could be started.
    pub async fn invoke(self: &Arc<Self>, inv: Invocation) -> Result<(), String> {
        let waiting = {
            let q = self.queue();
            // Dropped waiters are found by `place`; a live one means no new instance.
            let idle = q.idle.iter().filter(|w| !w.is_closed()).count();
            (q.pending.len() + 1).saturating_sub(idle)
        };
        if waiting > self.starting.load(Ordering::SeqCst)
            && self.instances() < self.max_instances
            && let Err(e) = self.clone().spawn_instance().await
        {
            if self.instances() == 0 {
                return Err(e);
            }
            eprintln!("gateway: {e}; the invocation waits for a running instance");
        }
        self.queue().place(inv);
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
            // As the gateway's own listener: no Nagle wait on an event or a 202.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
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
    .chain(aws_environment(spec.aws_endpoint.as_deref()))
    .collect()
}

/// Dummy credentials: an instance's SDK signs its calls as Lambda's would with the execution
/// role's; the emulator accepts any, and the developer's own never reach a function process.
pub const DUMMY_ACCESS_KEY_ID: &str = "gateway-instance";
pub const DUMMY_SECRET_ACCESS_KEY: &str = "gateway-instance-secret";
pub const DUMMY_SESSION_TOKEN: &str = "gateway-instance-session";

/// The gateway's environment for its instances' AWS calls, in place of the role credentials
/// Lambda would give: the endpoint the gateway itself reads (`AWS_ENDPOINT_URL`, the
/// emulator) and dummy credentials (docs/gateway.md, the instances' AWS environment).
pub fn aws_environment(endpoint: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            DUMMY_ACCESS_KEY_ID.to_string(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            DUMMY_SECRET_ACCESS_KEY.to_string(),
        ),
        (
            "AWS_SESSION_TOKEN".to_string(),
            DUMMY_SESSION_TOKEN.to_string(),
        ),
    ];
    if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
        env.push(("AWS_ENDPOINT_URL".to_string(), endpoint.to_string()));
    }
    env
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
    let inv = loop {
        let waiting = pool.queue().take_or_wait();
        match waiting {
            Ok(inv) => break inv,
            Err(rx) => match rx.await {
                Ok(inv) if inv.reply.is_closed() => continue,
                Ok(inv) => break inv,
                // The pool is gone: the gateway is stopping.
                Err(_) => return std::future::pending().await,
            },
        }
    };
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
            pool.queue().place(Invocation {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(id: &str) -> (Invocation, oneshot::Receiver<Outcome>) {
        let (reply, answer) = oneshot::channel();
        let inv = Invocation {
            request_id: id.to_string(),
            event: Vec::new(),
            invoked_arn: String::new(),
            trace_id: String::new(),
            deadline: SystemTime::now(),
            reply,
            taken: Arc::new(OnceLock::new()),
        };
        (inv, answer)
    }

    fn waiting(q: &mut Queue) -> oneshot::Receiver<Invocation> {
        q.take_or_wait()
            .err()
            .expect("nothing pending: the instance waits")
    }

    #[test]
    fn instances_reach_the_gateways_endpoint_with_dummy_credentials() {
        let spec = Spec {
            function_name: "birthday".into(),
            version: "3".into(),
            memory_mb: 128,
            region: "eu-west-2".into(),
            environment: BTreeMap::new(),
            task_root: PathBuf::from("/tmp/task"),
            show_output: false,
            aws_endpoint: Some("http://127.0.0.1:5999".into()),
        };
        let env: BTreeMap<String, String> = lambda_environment(&spec, "127.0.0.1:1", 0)
            .into_iter()
            .collect();
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:5999");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], DUMMY_ACCESS_KEY_ID);
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], DUMMY_SECRET_ACCESS_KEY);
        assert_eq!(env["AWS_SESSION_TOKEN"], DUMMY_SESSION_TOKEN);
        assert_eq!(env["AWS_REGION"], "eu-west-2");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "birthday");
        // Without an endpoint, none is invented; the credentials stay dummies.
        let bare: BTreeMap<String, String> = aws_environment(None).into_iter().collect();
        assert!(!bare.contains_key("AWS_ENDPOINT_URL"));
        assert_eq!(bare["AWS_ACCESS_KEY_ID"], DUMMY_ACCESS_KEY_ID);
    }

    #[test]
    fn work_goes_to_the_instance_idle_most_recently() {
        let mut q = Queue::default();
        let (mut first, mut second, mut third) =
            (waiting(&mut q), waiting(&mut q), waiting(&mut q));
        let (a, _a) = invocation("a");
        q.place(a);
        assert_eq!(
            third.try_recv().expect("the warmest takes it").request_id,
            "a"
        );
        assert!(second.try_recv().is_err() && first.try_recv().is_err());
        let (b, _b) = invocation("b");
        q.place(b);
        assert_eq!(second.try_recv().unwrap().request_id, "b");
    }

    #[test]
    fn an_instance_that_died_waiting_is_passed_over() {
        let mut q = Queue::default();
        let mut alive = waiting(&mut q);
        drop(waiting(&mut q));
        let (a, _a) = invocation("a");
        q.place(a);
        assert_eq!(alive.try_recv().unwrap().request_id, "a");
        assert!(q.idle.is_empty() && q.pending.is_empty());
    }

    #[test]
    fn with_no_instance_idle_work_waits_in_order_and_abandoned_work_is_skipped() {
        let mut q = Queue::default();
        let (a, _a) = invocation("a");
        let (b, gave_up) = invocation("b");
        let (c, _c) = invocation("c");
        q.place(a);
        q.place(b);
        q.place(c);
        drop(gave_up);
        let next = |q: &mut Queue| q.take_or_wait().ok().map(|i| i.request_id);
        assert_eq!(next(&mut q).as_deref(), Some("a"));
        assert_eq!(next(&mut q).as_deref(), Some("c"), "b's caller is gone");
        assert_eq!(next(&mut q), None, "then the instance waits");
        assert_eq!(q.idle.len(), 1);
    }
}
