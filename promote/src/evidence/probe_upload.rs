//! The probe of a function that S3 events trigger (project.json `probe.type = "upload"`):
//! no request reaches it, so the probe does what its callers do. Each probe "request" puts
//! a small object under the probe prefix of the stage's trigger bucket and waits for its
//! summary (the object's key followed by `.json`) to appear in the stage's summaries bucket;
//! the summary names the version that wrote it (`made_by.version`), so every answer is
//! attributed as an HTTP answer is by its version header. No summary within the deadline is a
//! timeout: a failing version's event is retried by Lambda and may land on the other version,
//! so a missing summary blames no version and is judged by the shortfall test.
//!
//! Both bucket names come from the stage's variables (`<purpose>Bucket`), as the functions
//! read theirs (docs/storage.md).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use ::probe::{Answer, Failure, Transport};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

/// How often the summaries bucket is asked for a summary while it is due.
const POLL: Duration = Duration::from_millis(100);

/// Where an upload probe puts its objects and reads their summaries, on one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadAt {
    pub bucket: String,
    pub summaries: String,
    /// The probe prefix followed by this run's id, so two runs never read each other's.
    pub prefix: String,
    pub deadline: Duration,
}

impl UploadAt {
    /// `probe`'s buckets on the stage whose variables are `variables`; a variable missing is
    /// an error that names it and the stage.
    pub fn resolve(
        probe: &rollout::UploadProbe,
        stage: &str,
        variables: &BTreeMap<String, String>,
        run: &str,
    ) -> Result<UploadAt, String> {
        let name = |purpose: &str| {
            let var = rollout::bucket_stage_variable(purpose);
            variables.get(&var).cloned().ok_or_else(|| {
                format!(
                    "stage {stage} has no stage variable {var} naming its {purpose} bucket; \
                     set it on the API stage (Terraform does, from project.json's buckets)"
                )
            })
        };
        Ok(UploadAt {
            bucket: name(&probe.bucket)?,
            summaries: name(&probe.summaries)?,
            prefix: format!("{}{run}-", probe.prefix),
            deadline: Duration::from_secs(probe.deadline_seconds),
        })
    }

    /// The key of request `seq`'s object, and of its summary.
    pub fn keys(&self, seq: u64) -> (String, String) {
        let key = format!("{}{seq}", self.prefix);
        let summary = format!("{key}.json");
        (key, summary)
    }
}

/// An id for one probe run, in its objects' keys: two runs, even of two machines at once,
/// never read each other's summaries.
pub fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{millis:x}-{}", std::process::id())
}

/// The version a summary names (`made_by.version`); `None` for a summary that names none.
pub fn summary_version(summary: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(summary).ok()?;
    match &v["made_by"]["version"] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Clone)]
pub struct Upload {
    client: aws_sdk_s3::Client,
    at: UploadAt,
}

impl Upload {
    /// A client of its own with no retries (a retried put would hide the failure the probe
    /// counts), path-style addressing when an endpoint is set (the emulator on 127.0.0.1).
    pub async fn new(at: UploadAt) -> Upload {
        let sdk = aws_https::defaults()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let path_style = sdk.endpoint_url().is_some();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build();
        Upload {
            client: aws_sdk_s3::Client::from_conf(config),
            at,
        }
    }

    async fn one(self, seq: u64) -> Result<Answer, Failure> {
        let (key, summary) = self.at.keys(seq);
        self.client
            .put_object()
            .bucket(&self.at.bucket)
            .key(&key)
            .content_type("text/plain")
            .body(ByteStream::from(
                format!("promote probe {seq}\n").into_bytes(),
            ))
            .send()
            .await
            .map_err(|e| match e {
                aws_sdk_s3::error::SdkError::DispatchFailure(_) => Failure::Connect,
                _ => Failure::Transport,
            })?;
        let due = tokio::time::Instant::now() + self.at.deadline;
        loop {
            let got = self
                .client
                .get_object()
                .bucket(&self.at.summaries)
                .key(&summary)
                .send()
                .await;
            if let Ok(out) = got {
                let bytes = out.body.collect().await.map_err(|_| Failure::Transport)?;
                return Ok(Answer {
                    status: 200,
                    version: summary_version(&bytes.into_bytes()),
                });
            }
            if tokio::time::Instant::now() + POLL > due {
                return Err(Failure::Timeout);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Transport for Upload {
    fn call(&self, seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static {
        self.clone().one(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> rollout::UploadProbe {
        rollout::UploadProbe {
            bucket: "uploads".into(),
            prefix: "probe/".into(),
            summaries: "summaries".into(),
            deadline_seconds: 7,
        }
    }

    #[test]
    fn the_buckets_are_the_stages_variables_and_each_run_has_its_own_keys() {
        let vars = BTreeMap::from([
            ("uploadsBucket".to_string(), "app-dev-uploads-1".to_string()),
            (
                "summariesBucket".to_string(),
                "app-dev-summaries-1".to_string(),
            ),
        ]);
        let at = UploadAt::resolve(&probe(), "dev", &vars, "r1").unwrap();
        assert_eq!(at.bucket, "app-dev-uploads-1");
        assert_eq!(at.summaries, "app-dev-summaries-1");
        assert_eq!(at.deadline, Duration::from_secs(7));
        assert_eq!(
            at.keys(3),
            ("probe/r1-3".to_string(), "probe/r1-3.json".to_string())
        );
        let other = UploadAt::resolve(&probe(), "dev", &vars, "r2").unwrap();
        assert_ne!(other.keys(3), at.keys(3));
    }

    #[test]
    fn a_missing_stage_variable_is_named_with_the_stage() {
        let vars = BTreeMap::from([("uploadsBucket".to_string(), "u".to_string())]);
        let e = UploadAt::resolve(&probe(), "test", &vars, "r").unwrap_err();
        assert!(e.contains("stage test"), "{e}");
        assert!(e.contains("summariesBucket"), "{e}");
    }

    #[test]
    fn a_summary_is_attributed_to_the_version_it_names() {
        let s = br#"{"key":"probe/x","made_by":{"function":"file-metadata","version":"7"}}"#;
        assert_eq!(summary_version(s), Some("7".into()));
        assert_eq!(
            summary_version(br#"{"made_by":{"version":12}}"#),
            Some("12".into())
        );
        assert_eq!(summary_version(br#"{"made_by":{}}"#), None);
        assert_eq!(summary_version(b"not json"), None);
    }
}
