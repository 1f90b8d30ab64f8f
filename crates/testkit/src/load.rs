//! An open-loop load for the zero-downtime tests: requests are sent on a fixed schedule
//! whatever the answers, so a slow or stalled server shows as late and failed requests instead
//! of quietly lowering the rate (the closed-loop mistake the seed's load generator avoided by
//! measuring from the intended start). Every answer is kept with what the test's attribution
//! says served it, so a test can tell which release answered and which failed.
//!
//! Not `oha` or `hey`: a test needs each answer attributed to its request and version, and
//! those tools print summaries. Threads rather than an async client: the rates are tens to
//! hundreds a second on loopback, one connection per request (`http::request_to`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::{Answer, request_to};

/// One kind of request in the mix, sent in turn with the others.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The statuses a correct server answers with.
    pub ok: Vec<u16>,
}

impl Request {
    pub fn get(path: &str, ok: u16) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: vec![],
            body: vec![],
            ok: vec![ok],
        }
    }

    pub fn with_body(method: &str, path: &str, content_type: &str, body: &str, ok: u16) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
            ok: vec![ok],
        }
    }
}

/// What one request got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index into the mix.
    pub request: usize,
    /// Since the load started, when it was meant to be sent.
    pub scheduled: Duration,
    /// From the scheduled start to the whole answer (so queueing counts).
    pub latency: Duration,
    /// The status, or the transport error.
    pub result: Result<u16, String>,
    /// Who served it, as the load's attribution read the answer (see [`start`]).
    pub version: Option<String>,
}

/// The load's record: every outcome, in completion order.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub mix: Vec<Request>,
    pub outcomes: Vec<Outcome>,
}

impl Tally {
    /// The outcomes whose status is not one the request allows, or that got no answer.
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| match &o.result {
                Ok(status) => !self.mix[o.request].ok.contains(status),
                Err(_) => true,
            })
            .collect()
    }

    /// Answers per attributed version, for every request of the mix at `index`.
    pub fn versions_of(&self, index: usize) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for o in self.outcomes.iter().filter(|o| o.request == index) {
            if let Some(v) = &o.version {
                *out.entry(v.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// "N requests, F failed (R%)" and the first few failures, for an assertion message.
    pub fn summary(&self) -> String {
        let failures = self.failures();
        let mut s = format!(
            "{} requests, {} failed ({:.3}%)",
            self.outcomes.len(),
            failures.len(),
            100.0 * failures.len() as f64 / self.outcomes.len().max(1) as f64
        );
        for f in failures.iter().take(5) {
            let r = &self.mix[f.request];
            s.push_str(&format!(
                "\n  {} {} at {:?}: {:?} (version {:?})",
                r.method, r.path, f.scheduled, f.result, f.version
            ));
        }
        s
    }
}

/// A load running in the background until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    mix: Vec<Request>,
    scheduler: Option<JoinHandle<()>>,
}

/// Who served an answer: a version a test can count, or None when the answer does not say.
pub type Attribution = fn(&Answer) -> Option<String>;

/// The `x-app-version` header every function of the project sets (its semver).
pub fn by_version_header(answer: &Answer) -> Option<String> {
    answer.header("x-app-version").map(str::to_string)
}

/// Starts sending the mix in turn to `addr` at `rate` requests a second, for at most
/// `limit` (a bound, so a test that forgets to stop it still ends); `attribute` names the
/// version behind each answer.
pub fn start(
    addr: SocketAddr,
    mix: Vec<Request>,
    rate: f64,
    limit: Duration,
    attribute: Attribution,
) -> Load {
    assert!(
        !mix.is_empty() && rate > 0.0,
        "a load needs requests and a rate"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let scheduler = {
        let (stop, outcomes, mix) = (stop.clone(), outcomes.clone(), mix.clone());
        std::thread::spawn(move || schedule(addr, mix, rate, limit, attribute, &stop, &outcomes))
    };
    Load {
        stop,
        outcomes,
        mix,
        scheduler: Some(scheduler),
    }
}

impl Load {
    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }

    /// Stops scheduling, waits for the requests in flight and returns the record.
    pub fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.scheduler.take() {
            h.join().expect("the load's scheduler panicked");
        }
        Tally {
            mix: self.mix.clone(),
            outcomes: std::mem::take(&mut self.outcomes.lock().unwrap()),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Enough workers that a request waiting on a cold start does not hold up the schedule.
const WORKERS: usize = 32;

fn schedule(
    addr: SocketAddr,
    mix: Vec<Request>,
    rate: f64,
    limit: Duration,
    attribute: Attribution,
    stop: &AtomicBool,
    outcomes: &Arc<Mutex<Vec<Outcome>>>,
) {
    let (tx, rx) = mpsc::channel::<(usize, Duration)>();
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (rx, outcomes, mix) = (rx.clone(), outcomes.clone(), mix.clone());
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok((index, scheduled)) = next else { return };
                    let r = &mix[index];
                    let headers: Vec<(&str, &str)> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let answer = request_to(addr, &r.method, &r.path, &headers, &r.body);
                    let latency = start.elapsed().saturating_sub(scheduled);
                    let (result, version) = match answer {
                        Ok(a) => (Ok(a.status), attribute(&a)),
                        Err(e) => (Err(e.to_string()), None),
                    };
                    outcomes.lock().unwrap().push(Outcome {
                        request: index,
                        scheduled,
                        latency,
                        result,
                        version,
                    });
                }
            })
        })
        .collect();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        let scheduled = interval * n;
        if scheduled > limit {
            break;
        }
        if let Some(wait) = scheduled.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        if tx.send((n as usize % mix.len(), scheduled)).is_err() {
            break;
        }
        n += 1;
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
}
