//! What the probe sends one function and where: the request and its healthy answer
//! (`ProbeCall`), and the alias a probe by Invoke calls (`InvokeAt`). Shared by the probe
//! source and the Invoke transport, neither of which owns the other.

use std::collections::BTreeMap;

use ::probe::Stats;
use ::probe::http::{RequestSpec, TargetError};

/// The alias a probe by Invoke calls, and the stage whose request it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeAt {
    pub function: String,
    pub alias: String,
    pub stage: String,
    /// The stage's variables, as API Gateway passes them to the function (a function that
    /// finds its table there answers a probe by Invoke as it answers one through the stage).
    pub variables: BTreeMap<String, String>,
}

/// What the probe sends one function, and what a healthy answer is: the function's probe
/// request in project.json (`functions[].probe`), or `promote probe --path`'s `GET`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCall {
    pub method: String,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub content_type: Option<String>,
    /// The one status a healthy version answers; `None`: any 2xx or 3xx.
    pub expect_status: Option<u16>,
}

impl ProbeCall {
    /// `GET path`, any 2xx or 3xx a success.
    pub fn get(path: &str) -> ProbeCall {
        ProbeCall {
            method: "GET".into(),
            path: path.to_string(),
            body: None,
            content_type: None,
            expect_status: None,
        }
    }

    /// A function's probe request as project.json gives it.
    pub fn of(r: &rollout::ProbeRequest) -> ProbeCall {
        ProbeCall {
            method: r.method.clone(),
            path: r.path.clone(),
            body: r.body.clone(),
            content_type: r.content_type.clone(),
            expect_status: Some(r.expect_status),
        }
    }

    /// The HTTP request's method, body and content type.
    pub fn spec(&self) -> Result<RequestSpec, TargetError> {
        RequestSpec::new(
            &self.method,
            self.body.as_deref(),
            self.content_type.as_deref(),
        )
    }

    /// Empty statistics that judge answers as this call expects them.
    pub fn stats(&self, rate: f64) -> Stats {
        let stats = Stats::new(rate);
        match self.expect_status {
            Some(s) => stats.expecting(s),
            None => stats,
        }
    }

    /// `PUT /hello/probe (expects 204)`, for what is said before a run.
    pub fn describe(&self) -> String {
        match self.expect_status {
            Some(s) => format!("{} {} (expects {s})", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}
