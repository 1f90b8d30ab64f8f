//! The guardian function on a laptop: its real bootstrap (`--guardian PATH`), started as
//! Lambda starts a function's (`runtime`), handed what AWS would hand it: an EventBridge
//! "CloudWatch Alarm State Change" event for every state change of a stage's alarm that the
//! gateway's own evaluation makes (`alarms`), and EventBridge Scheduler's tick every
//! minute, scaled by `--time-scale` as the alarm periods are.
//!
//! Event format: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>.
//! EventBridge invokes the function asynchronously: nobody waits for its answer, which the
//! gateway only logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::alarms::State;
use crate::clock;
use crate::runtime::{Invocation, Outcome, Pool, Spec};

/// The name the function has in AWS (terraform/guardian.tf).
pub const FUNCTION: &str = "guardian";
/// EventBridge Scheduler's rate.
const SCHEDULE_EVERY: Duration = Duration::from_secs(60);
/// The function's timeout in terraform/guardian.tf.
const TIMEOUT: Duration = Duration::from_secs(300);
/// What the bootstrap gets of the gateway's own environment beyond what every instance gets
/// (the emulator's endpoint and dummy credentials, `runtime::aws_environment`): what to log.
const PASSED_ON: [&str; 1] = ["RUST_LOG"];

pub struct Guardian {
    pool: Arc<Pool>,
    region: String,
    verbose: bool,
    sent: AtomicU64,
    /// The directory holding `bootstrap`, removed when the gateway stops.
    task_root: PathBuf,
}

impl Guardian {
    /// Starts the schedule; instances start on the first event.
    pub fn start(
        bootstrap: &Path,
        environments: &Path,
        region: &str,
        time_scale: f64,
        verbose: bool,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Guardian>> {
        let bootstrap = std::path::absolute(bootstrap)?;
        if !bootstrap.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "--guardian {}: no such file (the guardian's bootstrap: build it with `cargo build -p guardian`)",
                    bootstrap.display()
                ),
            ));
        }
        // Lambda runs `bootstrap` in the task root; the binary keeps its own name.
        let task_root =
            std::env::temp_dir().join(format!("gateway-guardian-{}", std::process::id()));
        std::fs::create_dir_all(&task_root)?;
        let link = task_root.join("bootstrap");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&bootstrap, &link)?;
        let mut environment: BTreeMap<String, String> = PASSED_ON
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        environment.insert(
            "GUARDIAN_ENVIRONMENTS".into(),
            std::path::absolute(environments)?.display().to_string(),
        );
        let spec = Spec {
            function_name: FUNCTION.into(),
            version: "$LATEST".into(),
            memory_mb: 256,
            region: region.into(),
            environment,
            task_root: task_root.clone(),
            show_output: verbose,
            // The instances' AWS environment (runtime::aws_environment): the emulator the
            // gateway reads, with dummy credentials.
            aws_endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        };
        let guardian = Arc::new(Guardian {
            pool: Pool::new(spec, 4, shutdown.clone()),
            region: region.into(),
            verbose,
            sent: AtomicU64::new(0),
            task_root,
        });
        let every = Duration::from_secs_f64(SCHEDULE_EVERY.as_secs_f64() / time_scale);
        let g = guardian.clone();
        let mut stop = shutdown;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                g.deliver(scheduled_event(&g.region, SystemTime::now()));
            }
            let _ = std::fs::remove_dir_all(&g.task_root);
        });
        Ok(guardian)
    }

    /// A stage alarm changed state: the rule on the stages' alarms fires.
    pub fn alarm_changed(self: &Arc<Self>, name: &str, previous: Option<State>, state: State) {
        self.deliver(alarm_event(
            &self.region,
            name,
            previous,
            state,
            SystemTime::now(),
        ));
    }

    /// An asynchronous invocation: handed to an instance, its answer logged.
    fn deliver(self: &Arc<Self>, event: Value) {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        let g = self.clone();
        tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            let inv = Invocation {
                request_id: format!("guardian-{n:06}-{}", clock::now_millis()),
                event: serde_json::to_vec(&event).unwrap_or_default(),
                invoked_arn: format!(
                    "arn:aws:lambda:{}:000000000000:function:{FUNCTION}",
                    g.region
                ),
                trace_id: format!("Root=1-{:08x}-{n:024x}", clock::now_millis() / 1000),
                deadline: SystemTime::now() + TIMEOUT,
                reply,
                taken: Arc::new(std::sync::OnceLock::new()),
            };
            let what = event["detail-type"].as_str().unwrap_or("event").to_string();
            if let Err(e) = g.pool.invoke(inv).await {
                eprintln!("gateway: guardian: {what}: {e}");
                return;
            }
            match tokio::time::timeout(TIMEOUT, answer).await {
                Ok(Ok(Outcome::Response(body))) if g.verbose => {
                    eprintln!(
                        "gateway: guardian: {what}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                Ok(Ok(Outcome::Response(_))) => {}
                Ok(Ok(other)) => eprintln!("gateway: guardian: {what}: {other:?}"),
                Ok(Err(_)) | Err(_) => eprintln!("gateway: guardian: {what}: no answer"),
            }
        });
    }
}

fn aws_state(s: State) -> &'static str {
    match s {
        State::Ok => "OK",
        State::Alarm => "ALARM",
        State::InsufficientData => "INSUFFICIENT_DATA",
    }
}

/// EventBridge's envelope.
fn envelope(
    region: &str,
    detail_type: &str,
    source: &str,
    resource: String,
    at: SystemTime,
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "id": format!("{:016x}", clock::now_millis()),
        "detail-type": detail_type,
        "source": source,
        "account": "000000000000",
        "time": clock::iso8601(at, false),
        "region": region,
        "resources": [resource],
        "detail": detail,
    })
}

/// CloudWatch's alarm state change as EventBridge delivers it.
pub fn alarm_event(
    region: &str,
    name: &str,
    previous: Option<State>,
    state: State,
    at: SystemTime,
) -> Value {
    let state_of = |s: State| {
        json!({
            "value": aws_state(s),
            "reason": format!("evaluated by the local gateway: {}", aws_state(s)),
            "timestamp": clock::iso8601(at, true),
        })
    };
    let mut detail = json!({
        "alarmName": name,
        "state": state_of(state),
        "configuration": {"metrics": []},
    });
    if let Some(p) = previous {
        detail["previousState"] = state_of(p);
    }
    envelope(
        region,
        "CloudWatch Alarm State Change",
        "aws.cloudwatch",
        format!("arn:aws:cloudwatch:{region}:000000000000:alarm:{name}"),
        at,
        detail,
    )
}

/// The schedule's tick (its input in terraform/guardian.tf has this envelope).
pub fn scheduled_event(region: &str, at: SystemTime) -> Value {
    envelope(
        region,
        "Scheduled Event",
        "aws.scheduler",
        format!("arn:aws:scheduler:{region}:000000000000:schedule/default/guardian"),
        at,
        json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_eventbridges_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_570_035_880_989);
        let e = alarm_event(
            "eu-west-2",
            "app-live-lambda-errors",
            Some(State::Ok),
            State::Alarm,
            at,
        );
        assert_eq!(e["detail-type"], "CloudWatch Alarm State Change");
        assert_eq!(e["source"], "aws.cloudwatch");
        assert_eq!(e["time"], "2019-10-02T17:04:40Z");
        assert_eq!(e["detail"]["alarmName"], "app-live-lambda-errors");
        assert_eq!(e["detail"]["state"]["value"], "ALARM");
        assert_eq!(
            e["detail"]["state"]["timestamp"],
            "2019-10-02T17:04:40.989+0000"
        );
        assert_eq!(e["detail"]["previousState"]["value"], "OK");
        assert_eq!(
            e["resources"][0],
            "arn:aws:cloudwatch:eu-west-2:000000000000:alarm:app-live-lambda-errors"
        );
        let t = scheduled_event("eu-west-2", at);
        assert_eq!(
            (
                t["detail-type"].as_str(),
                t["detail"].as_object().map(|d| d.len())
            ),
            (Some("Scheduled Event"), Some(0))
        );
    }
}
