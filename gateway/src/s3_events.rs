//! S3 event notifications as S3 and Lambda deliver them, as pure functions over plain data:
//! which Lambda notification of a bucket an added object matches, which objects a bucket's
//! listing shows as added since the previous one, the event S3 sends for one, and the
//! asynchronous invocation's retry schedule. The watcher (`s3_watch`) does the I/O.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The event name of an object added by PutObject. A listing cannot tell a put from a copy or
/// a completed multipart upload, so every added object is reported as a put.
pub const OBJECT_CREATED_PUT: &str = "ObjectCreated:Put";

/// One `LambdaFunctionConfiguration` of a bucket's notification configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: the invoked ARN.
    pub function_arn: String,
    /// `s3:ObjectCreated:*`, `s3:ObjectCreated:Put`, ...
    pub events: Vec<String>,
    /// The key filter's `prefix` and `suffix` rules (empty when absent).
    pub prefix: String,
    pub suffix: String,
}

impl Notification {
    /// Whether an object added at `key` (by `event`, e.g. [`OBJECT_CREATED_PUT`]) is delivered
    /// to this configuration's function: an event type it names (exactly, or with `*` for the
    /// rest) and a key within its filter.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let named = self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            match e.strip_suffix('*') {
                Some(family) => event.starts_with(family),
                None => e == event,
            }
        });
        named && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }
}

/// What a listing says of one object: enough to tell an object written again (a new ETag or
/// modification time) from the one seen before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub size: i64,
    pub etag: String,
    pub last_modified_ms: u64,
}

/// The objects of `now` that `before` did not have, or had with other content (an overwrite,
/// which S3 also reports as an `ObjectCreated` event), in key order.
pub fn added<'a>(
    before: &BTreeMap<String, Seen>,
    now: &'a BTreeMap<String, Seen>,
) -> Vec<(&'a str, &'a Seen)> {
    now.iter()
        .filter(|(key, seen)| {
            before.get(*key).is_none_or(|old| {
                old.etag != seen.etag || old.last_modified_ms != seen.last_modified_ms
            })
        })
        .map(|(k, s)| (k.as_str(), s))
        .collect()
}

/// A key as S3 writes it in an event: URL-encoded as in a form (a space is `+`, a `+` is
/// `%2B`), its slashes kept.
pub fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// `2026-12-06T16:49:02.123Z`, the spelling of an S3 event's `eventTime`.
pub fn event_time(at: SystemTime) -> String {
    let seconds = crate::clock::iso8601(at, false);
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_millis();
    match seconds.strip_suffix('Z') {
        Some(s) => format!("{s}.{ms:03}Z"),
        None => seconds,
    }
}

/// Where an added object was seen, for its event.
#[derive(Debug, Clone)]
pub struct Added<'a> {
    pub region: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub seen: &'a Seen,
    pub at: SystemTime,
    /// Orders the events of one key, as S3's `sequencer` does (hex, growing).
    pub sequence: u64,
    pub request_id: &'a str,
}

/// The event S3 sends a function for one added object: one record, as S3 sends them.
pub fn event(n: &Notification, a: &Added<'_>) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": a.region,
        "eventTime": event_time(a.at),
        "eventName": OBJECT_CREATED_PUT,
        // Who wrote the object is not in a listing: the local gateway stands in.
        "userIdentity": {"principalId": "AWS:LOCALGATEWAY"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": a.request_id,
            "x-amz-id-2": a.request_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": n.id,
            "bucket": {
                "name": a.bucket,
                "ownerIdentity": {"principalId": "LOCALGATEWAY"},
                "arn": format!("arn:aws:s3:::{}", a.bucket),
            },
            "object": {
                "key": encode_key(a.key),
                "size": a.seen.size,
                "eTag": a.seen.etag,
                "sequencer": format!("{:016X}", a.sequence),
            },
        },
    }]})
}

/// Lambda's asynchronous invocation: on a function error, two more attempts, one minute after
/// the first and two minutes after the second; `time_scale` divides the waits as it divides
/// the alarms' periods.
pub const ATTEMPTS: usize = 3;

/// The wait before attempt `attempt` (counted from 1), or `None` when none is left.
pub fn retry_after(attempt: usize, time_scale: f64) -> Option<Duration> {
    let minutes = match attempt {
        2 => 1.0,
        3 => 2.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(minutes * 60.0 / time_scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(events: &[&str], prefix: &str, suffix: &str) -> Notification {
        Notification {
            id: "file-metadata".into(),
            function_arn: "arn:aws:lambda:eu-west-2:123456789012:function:file-metadata:dev".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn events_and_key_filters_match_as_s3_matches_them() {
        let all = notification(&["s3:ObjectCreated:*"], "", "");
        assert!(all.matches(OBJECT_CREATED_PUT, "a/b.txt"));
        assert!(!all.matches("ObjectRemoved:Delete", "a/b.txt"));
        let put = notification(&["s3:ObjectCreated:Put"], "", "");
        assert!(put.matches(OBJECT_CREATED_PUT, "x"));
        assert!(!put.matches("ObjectCreated:Copy", "x"));
        let filtered = notification(&["s3:ObjectCreated:*"], "probe/", ".txt");
        assert!(filtered.matches(OBJECT_CREATED_PUT, "probe/1.txt"));
        assert!(!filtered.matches(OBJECT_CREATED_PUT, "probe/1.png"));
        assert!(!filtered.matches(OBJECT_CREATED_PUT, "other/1.txt"));
        assert!(!notification(&[], "", "").matches(OBJECT_CREATED_PUT, "x"));
    }

    fn seen(etag: &str, at: u64) -> Seen {
        Seen {
            size: 1,
            etag: etag.into(),
            last_modified_ms: at,
        }
    }

    #[test]
    fn a_listing_shows_new_and_rewritten_objects_not_unchanged_or_deleted_ones() {
        let before = BTreeMap::from([
            ("kept".to_string(), seen("a", 1)),
            ("rewritten".to_string(), seen("b", 1)),
            ("touched".to_string(), seen("c", 1)),
            ("deleted".to_string(), seen("d", 1)),
        ]);
        let now = BTreeMap::from([
            ("kept".to_string(), seen("a", 1)),
            ("rewritten".to_string(), seen("B", 1)),
            ("touched".to_string(), seen("c", 2)),
            ("new".to_string(), seen("e", 3)),
        ]);
        let keys: Vec<&str> = added(&before, &now).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["new", "rewritten", "touched"]);
        assert!(added(&now, &now).is_empty());
    }

    #[test]
    fn the_event_is_the_one_s3_sends_and_the_function_can_read_it() {
        let n = notification(&["s3:ObjectCreated:*"], "", "");
        let s = Seen {
            size: 5,
            etag: "764efa88".into(),
            last_modified_ms: 0,
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_765_039_742_123);
        let e = event(
            &n,
            &Added {
                region: "eu-west-2",
                bucket: "app-dev-uploads-123456789012",
                key: "photos/my cat+1.txt",
                seen: &s,
                at,
                sequence: 255,
                request_id: "r1",
            },
        );
        let r = &e["Records"][0];
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventTime"], "2025-12-06T16:49:02.123Z");
        assert_eq!(r["s3"]["configurationId"], "file-metadata");
        assert_eq!(r["s3"]["bucket"]["name"], "app-dev-uploads-123456789012");
        assert_eq!(
            r["s3"]["bucket"]["arn"],
            "arn:aws:s3:::app-dev-uploads-123456789012"
        );
        assert_eq!(r["s3"]["object"]["key"], "photos/my+cat%2B1.txt");
        assert_eq!(r["s3"]["object"]["size"], 5);
        assert_eq!(r["s3"]["object"]["sequencer"], "00000000000000FF");
        // What the function deserialises (aws_lambda_events' required fields) is all there.
        for field in ["userIdentity", "requestParameters", "responseElements"] {
            assert!(r[field].is_object(), "{field}");
        }
    }

    #[test]
    fn a_failed_event_is_tried_three_times_with_lambdas_waits_scaled() {
        assert_eq!(retry_after(1, 1.0), None);
        assert_eq!(retry_after(2, 1.0), Some(Duration::from_secs(60)));
        assert_eq!(retry_after(3, 1.0), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(4, 1.0), None);
        assert_eq!(retry_after(2, 60.0), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(3, 60.0), Some(Duration::from_secs(2)));
        assert_eq!(ATTEMPTS, 3);
    }
}
