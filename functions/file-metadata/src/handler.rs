//! One invocation: every record of the S3 event, in order. A record whose object is summarised
//! is `Written`; one whose object was deleted before it was read is `Gone` (logged, not an
//! error: there is nothing left to summarise); one whose summary would land in the bucket that
//! triggered it is `Refused` (a logged error, nothing written, not retried: a retry would
//! refuse again). A failed S3 call fails the invocation, after the other records were tried,
//! so that Lambda retries the event; summaries are keyed by the object, so a retry rewrites
//! the same ones.
use aws_lambda_events::s3::S3Event;
use thiserror::Error;

use crate::store::{Store, StoreError};
use crate::summary::{
    MadeBy, ObjectRef, SUMMARIES_BUCKET_VAR, Summary, object_of, refuses, stage_of,
    summaries_bucket, summary_key,
};

/// What every invocation of this version shares.
#[derive(Debug, Clone)]
pub struct Config {
    /// [`SUMMARIES_BUCKET_VAR`]'s value.
    pub summaries_template: String,
    pub made_by: MadeBy,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Written {
        bucket: String,
        key: String,
        summary: Summary,
    },
    Gone(ObjectRef),
    Refused {
        object: ObjectRef,
        why: String,
    },
    /// The record named no usable object (no bucket, no key, an undecodable key).
    Unusable(String),
}

#[derive(Debug, Error)]
pub enum HandlerError {
    #[error(
        "invoked as {arn}, which names no alias: the stage (and with it the summaries bucket, {SUMMARIES_BUCKET_VAR}) is the alias a bucket notification invokes"
    )]
    NoStage { arn: String },
    #[error("{failed} of {records} record(s) failed; the first: {first}")]
    Failed {
        failed: usize,
        records: usize,
        first: StoreError,
    },
}

pub async fn handle<S: Store>(
    store: &S,
    config: &Config,
    invoked_arn: &str,
    event: &S3Event,
) -> Result<Vec<Handled>, HandlerError> {
    let stage = stage_of(invoked_arn).ok_or_else(|| HandlerError::NoStage {
        arn: invoked_arn.to_owned(),
    })?;
    let target = summaries_bucket(&config.summaries_template, &stage);
    let mut handled = Vec::with_capacity(event.records.len());
    let mut failures = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        match one(store, config, &target, index, record).await {
            Ok(h) => handled.push(h),
            Err(e) => {
                tracing::error!(stage = %stage, error = %e, "summary not written");
                failures.push(e);
            }
        }
    }
    match failures.into_iter().next() {
        None => Ok(handled),
        Some(first) => Err(HandlerError::Failed {
            failed: event.records.len() - handled.len(),
            records: event.records.len(),
            first,
        }),
    }
}

async fn one<S: Store>(
    store: &S,
    config: &Config,
    target: &str,
    index: usize,
    record: &aws_lambda_events::s3::S3EventRecord,
) -> Result<Handled, StoreError> {
    let object = match object_of(index, record) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "record skipped");
            return Ok(Handled::Unusable(e.to_string()));
        }
    };
    if let Some(why) = refuses(&object.bucket, target) {
        tracing::error!(bucket = %object.bucket, key = %object.key, "{why}");
        return Ok(Handled::Refused { object, why });
    }
    let Some(head) = store.head(&object.bucket, &object.key).await? else {
        tracing::warn!(
            bucket = %object.bucket,
            key = %object.key,
            "the object was deleted before it was read: nothing to summarise"
        );
        return Ok(Handled::Gone(object));
    };
    let summary = Summary::new(&object, head, config.made_by.clone());
    let key = summary_key(&object.key);
    let body = serde_json::to_vec(&summary).expect("a summary serialises");
    store.put_json(target, &key, body).await?;
    tracing::info!(
        summary = %serde_json::to_string(&summary).expect("a summary serialises"),
        to = %format!("s3://{target}/{key}"),
        "summary written"
    );
    Ok(Handled::Written {
        bucket: target.to_owned(),
        key,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::ObjectHead;
    use crate::summary::tests::record;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// (bucket, key) -> (what HeadObject says, the body).
    type Objects = BTreeMap<(String, String), (ObjectHead, Vec<u8>)>;

    /// Objects by (bucket, key); `fail_puts` makes every PutObject fail.
    #[derive(Default)]
    struct Memory {
        objects: Mutex<Objects>,
        fail_puts: bool,
    }

    impl Memory {
        fn with(objects: &[(&str, &str)]) -> Memory {
            let m = Memory::default();
            for (b, k) in objects {
                let head = ObjectHead {
                    size: 5,
                    content_type: Some("text/plain".into()),
                    metadata: BTreeMap::from([("owner".into(), "me".into())]),
                    last_modified: Some("2026-12-06T16:00:00Z".into()),
                    etag: Some("e".into()),
                };
                m.objects
                    .lock()
                    .unwrap()
                    .insert((b.to_string(), k.to_string()), (head, b"hello".to_vec()));
            }
            m
        }
        fn get(&self, bucket: &str, key: &str) -> Option<serde_json::Value> {
            let o = self.objects.lock().unwrap();
            let (_, body) = o.get(&(bucket.to_string(), key.to_string()))?;
            Some(serde_json::from_slice(body).unwrap())
        }
        fn keys(&self) -> Vec<(String, String)> {
            self.objects.lock().unwrap().keys().cloned().collect()
        }
    }

    impl Store for Memory {
        async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, StoreError> {
            let o = self.objects.lock().unwrap();
            Ok(o.get(&(bucket.to_string(), key.to_string()))
                .map(|(h, _)| h.clone()))
        }
        async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
            if self.fail_puts {
                return Err(StoreError {
                    action: "PutObject",
                    bucket: bucket.into(),
                    key: key.into(),
                    message: "AccessDenied".into(),
                });
            }
            let head = ObjectHead {
                size: body.len() as i64,
                ..ObjectHead::default()
            };
            self.objects
                .lock()
                .unwrap()
                .insert((bucket.to_string(), key.to_string()), (head, body));
            Ok(())
        }
    }

    const DEV: &str = "arn:aws:lambda:eu-west-2:123456789012:function:file-metadata:dev";

    fn config() -> Config {
        Config {
            summaries_template: "app-{stage}-summaries".into(),
            made_by: MadeBy {
                function: "file-metadata".into(),
                version: "3".into(),
                commit: "abc1234".into(),
            },
        }
    }

    fn event(records: &[(&str, &str)]) -> S3Event {
        let mut e = S3Event::default();
        e.records = records.iter().map(|(b, k)| record(b, k)).collect();
        e
    }

    #[tokio::test]
    async fn a_batch_is_summarised_into_the_stages_bucket() {
        let store = Memory::with(&[("app-dev-uploads", "a.txt"), ("app-dev-uploads", "b c")]);
        let done = handle(
            &store,
            &config(),
            DEV,
            &event(&[("app-dev-uploads", "a.txt"), ("app-dev-uploads", "b+c")]),
        )
        .await
        .unwrap();
        assert_eq!(done.len(), 2);
        let a = store.get("app-dev-summaries", "a.txt.json").unwrap();
        assert_eq!(a["bucket"], "app-dev-uploads");
        assert_eq!(a["key"], "a.txt");
        assert_eq!(a["size"], 5);
        assert_eq!(a["content_type"], "text/plain");
        assert_eq!(a["metadata"]["owner"], "me");
        assert_eq!(a["made_by"]["version"], "3");
        // The event's key is URL-encoded; the summary names the object's real key.
        assert_eq!(
            store.get("app-dev-summaries", "b c.json").unwrap()["key"],
            "b c"
        );
    }

    #[tokio::test]
    async fn an_object_deleted_before_it_was_read_is_skipped_not_failed() {
        let store = Memory::with(&[("app-dev-uploads", "kept")]);
        let done = handle(
            &store,
            &config(),
            DEV,
            &event(&[("app-dev-uploads", "gone"), ("app-dev-uploads", "kept")]),
        )
        .await
        .unwrap();
        assert!(matches!(&done[0], Handled::Gone(o) if o.key == "gone"));
        assert!(matches!(&done[1], Handled::Written { key, .. } if key == "kept.json"));
        assert!(store.get("app-dev-summaries", "gone.json").is_none());
    }

    #[tokio::test]
    async fn nothing_is_written_to_the_bucket_that_triggered_it() {
        let store = Memory::with(&[("app-dev-summaries", "loop.txt")]);
        let before = store.keys();
        let done = handle(
            &store,
            &config(),
            DEV,
            &event(&[("app-dev-summaries", "loop.txt")]),
        )
        .await
        .unwrap();
        assert!(matches!(&done[0], Handled::Refused { why, .. } if why.contains("trigger")));
        assert_eq!(store.keys(), before, "nothing written");
    }

    #[tokio::test]
    async fn without_an_alias_there_is_no_stage_and_nothing_is_written() {
        let store = Memory::with(&[("app-dev-uploads", "a")]);
        let err = handle(
            &store,
            &config(),
            "arn:aws:lambda:eu-west-2:123456789012:function:file-metadata:3",
            &event(&[("app-dev-uploads", "a")]),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, HandlerError::NoStage { .. }), "{err}");
        assert_eq!(store.keys().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_invocation_after_every_record_was_tried() {
        let store = Memory {
            fail_puts: true,
            ..Memory::with(&[("app-dev-uploads", "a"), ("app-dev-uploads", "b")])
        };
        let err = handle(
            &store,
            &config(),
            DEV,
            &event(&[("app-dev-uploads", "a"), ("app-dev-uploads", "b")]),
        )
        .await
        .unwrap_err();
        let HandlerError::Failed {
            failed,
            records,
            first,
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!((failed, records), (2, 2));
        assert_eq!(first.key, "a.json");
    }

    #[tokio::test]
    async fn an_unusable_record_is_skipped() {
        let store = Memory::with(&[("app-dev-uploads", "a")]);
        let done = handle(
            &store,
            &config(),
            DEV,
            &event(&[("app-dev-uploads", ""), ("app-dev-uploads", "a")]),
        )
        .await
        .unwrap();
        assert!(matches!(&done[0], Handled::Unusable(why) if why.contains("no object key")));
        assert!(matches!(&done[1], Handled::Written { .. }));
    }
}
