//! The probe of a function that S3 events trigger (project.json `"probe": {"type": "upload"}`):
//! each scheduled probe is a small object put to the stage's trigger bucket under the probe's
//! prefix, answered when its summary appears in the stage's summaries bucket. The summary
//! names the version that wrote it (`made_by.version`), so every answer is attributed exactly
//! as an Invoke is; an upload whose summary does not appear within the deadline (a failing
//! version's event, retried by Lambda minutes later) is a timeout that names no version, which
//! the probe judge's shortfall test counts against the candidate.

use std::future::Future;
use std::time::Duration;

use ::probe::{Answer, Failure, Transport};
use aws_sdk_s3::error::SdkError;
use serde_json::Value;

/// How often a probe looks for its summary.
pub const SUMMARY_POLL: Duration = Duration::from_millis(100);

/// The status a summary that names no version, or another object, counts as: the function
/// answered wrongly.
const WRONG_SUMMARY: u16 = 500;

/// Where an upload probe puts its objects and finds their summaries, on one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAt {
    /// The stage's trigger bucket (its `<purpose>Bucket` stage variable's value).
    pub bucket: String,
    pub prefix: String,
    /// The stage's summaries bucket.
    pub summaries: String,
    /// How long a summary may take: the probe's request timeout.
    pub deadline: Duration,
}

impl UploadAt {
    /// `PUT s3://bucket/prefix* (summary in s3://summaries within 10 s)`, for what is said
    /// before a run.
    pub fn describe(&self) -> String {
        format!(
            "PUT s3://{}/{}* (its summary in s3://{} within {} s)",
            self.bucket,
            self.prefix,
            self.summaries,
            self.deadline.as_secs()
        )
    }
}

/// The key of probe `seq` of run `run`: under the prefix, unique per run so that two runs'
/// probes (or a rerun's) never read each other's summaries.
pub fn probe_key(prefix: &str, run: &str, seq: u64) -> String {
    format!("{prefix}{run}-{seq}.txt")
}

/// The key of the summary of `key` (docs/file-metadata.md).
pub fn summary_key(key: &str) -> String {
    format!("{key}.json")
}

/// A summary as an answer: 200 and its version when it is the summary of `bucket`/`key` and
/// names a version; otherwise the function answered wrongly (500), attributed if it can be.
pub fn answer_of(summary: &[u8], bucket: &str, key: &str) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(summary) else {
        return Answer {
            status: WRONG_SUMMARY,
            version: None,
        };
    };
    let version = v["made_by"]["version"].as_str().map(str::to_string);
    let right = v["bucket"] == bucket && v["key"] == key && version.is_some();
    Answer {
        status: if right { 200 } else { WRONG_SUMMARY },
        version,
    }
}

#[derive(Clone)]
pub struct Upload {
    client: aws_sdk_s3::Client,
    at: UploadAt,
    run: String,
}

impl Upload {
    /// A client of its own with no retries (a retried upload would hide the failure the probe
    /// is there to count); path-style addressing when an emulator is the endpoint.
    pub async fn new(at: &UploadAt) -> Upload {
        let sdk = aws_https::defaults()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(at.deadline)
                    .build(),
            )
            .load()
            .await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
            s3 = s3.force_path_style(true);
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Upload {
            client: aws_sdk_s3::Client::from_conf(s3.build()),
            at: at.clone(),
            run: format!("{}-{:04x}", started.as_millis(), run_salt()),
        }
    }
}

/// A few random bits for the run's name: two runs started in the same millisecond differ.
fn run_salt() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    (nanos ^ std::process::id()) as u16
}

fn failure<E>(e: &SdkError<E>) -> Failure {
    match e {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_io() => Failure::Connect,
        _ => Failure::Transport,
    }
}

impl Transport for Upload {
    fn call(&self, seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static {
        let this = self.clone();
        async move {
            let key = probe_key(&this.at.prefix, &this.run, seq);
            this.client
                .put_object()
                .bucket(&this.at.bucket)
                .key(&key)
                .content_type("text/plain")
                .body(b"probe".to_vec().into())
                .send()
                .await
                .map_err(|e| failure(&e))?;
            let summary = summary_key(&key);
            // Until the engine's timeout (the deadline) drops this future.
            loop {
                match this
                    .client
                    .get_object()
                    .bucket(&this.at.summaries)
                    .key(&summary)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let body = out.body.collect().await.map_err(|_| Failure::Transport)?;
                        return Ok(answer_of(&body.into_bytes(), &this.at.bucket, &key));
                    }
                    Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {}
                    Err(e @ SdkError::ServiceError(_)) => return Err(failure(&e)),
                    Err(e) => return Err(failure(&e)),
                }
                tokio::time::sleep(SUMMARY_POLL).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_probe_has_its_own_key_under_the_prefix_and_its_summary_beside_it() {
        assert_eq!(probe_key("probe/", "r1", 7), "probe/r1-7.txt");
        assert_ne!(probe_key("probe/", "r1", 7), probe_key("probe/", "r2", 7));
        assert_eq!(summary_key("probe/r1-7.txt"), "probe/r1-7.txt.json");
    }

    #[test]
    fn a_summary_answers_for_the_version_that_wrote_it() {
        let good = br#"{"bucket":"up","key":"probe/r-1.txt","made_by":{"version":"4"}}"#;
        assert_eq!(
            answer_of(good, "up", "probe/r-1.txt"),
            Answer {
                status: 200,
                version: Some("4".into())
            }
        );
        // Another object's summary, or one naming no version: the function answered wrongly.
        let other = br#"{"bucket":"up","key":"elsewhere","made_by":{"version":"4"}}"#;
        assert_eq!(answer_of(other, "up", "probe/r-1.txt").status, 500);
        assert_eq!(
            answer_of(other, "up", "probe/r-1.txt").version.as_deref(),
            Some("4")
        );
        let anonymous = br#"{"bucket":"up","key":"probe/r-1.txt"}"#;
        assert_eq!(
            answer_of(anonymous, "up", "probe/r-1.txt"),
            Answer {
                status: 500,
                version: None
            }
        );
        assert_eq!(answer_of(b"not json", "up", "k").status, 500);
    }

    #[test]
    fn the_plan_says_where_it_uploads_and_how_long_it_waits() {
        let at = UploadAt {
            bucket: "app-live-uploads-1".into(),
            prefix: "probe/".into(),
            summaries: "app-live-summaries-1".into(),
            deadline: Duration::from_secs(10),
        };
        assert_eq!(
            at.describe(),
            "PUT s3://app-live-uploads-1/probe/* (its summary in s3://app-live-summaries-1 within 10 s)"
        );
    }
}
