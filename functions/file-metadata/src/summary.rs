//! What a summary is and where it goes, as pure functions: the object an S3 event record names
//! (its key URL-decoded), the stage an invocation serves (the alias in its invoked ARN), the
//! summaries bucket of that stage (`SUMMARIES_BUCKET`, a template with `{stage}`), the key
//! (`<object key>.json`) and the JSON written there.
use std::collections::BTreeMap;

use aws_lambda_events::s3::S3EventRecord;
use serde::Serialize;
use thiserror::Error;

/// The environment variable naming the summaries bucket: a template in which `{stage}` stands
/// for the invoking alias (Terraform sets `app-{stage}-summaries-<account>`). A published
/// version serves every stage, so the stage cannot be in the value itself.
pub const SUMMARIES_BUCKET_VAR: &str = "SUMMARIES_BUCKET";
/// The placeholder in [`SUMMARIES_BUCKET_VAR`] for the stage.
pub const STAGE_PLACEHOLDER: &str = "{stage}";
/// Appended to the object's key to name its summary.
pub const SUMMARY_SUFFIX: &str = ".json";

/// One object a record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// URL-decoded: what S3 calls the key.
    pub key: String,
}

/// What HeadObject says about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectHead {
    pub size: i64,
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub last_modified: Option<String>,
    /// Without the quotes S3 puts around it.
    pub etag: Option<String>,
}

/// Who wrote a summary: the version is what a canary's evidence attributes it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MadeBy {
    pub function: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`: the published version that ran.
    pub version: String,
    /// The commit the binary was built from.
    pub commit: String,
}

/// The summary's JSON (docs/file-metadata.md, "The summary").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub bucket: String,
    pub key: String,
    pub size: i64,
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub last_modified: Option<String>,
    pub etag: Option<String>,
    pub made_by: MadeBy,
}

impl Summary {
    pub fn new(object: &ObjectRef, head: ObjectHead, made_by: MadeBy) -> Summary {
        Summary {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            size: head.size,
            content_type: head.content_type,
            metadata: head.metadata,
            last_modified: head.last_modified,
            etag: head.etag,
            made_by,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record {index} names no bucket")]
    NoBucket { index: usize },
    #[error("record {index} names no object key")]
    NoKey { index: usize },
    #[error("record {index}: the object key {key:?} is not valid URL-encoded UTF-8")]
    BadKey { index: usize, key: String },
}

/// The object record `index` names. S3 sends the key URL-encoded as in a form (a space is
/// `+`, a literal `+` is `%2B`).
pub fn object_of(index: usize, record: &S3EventRecord) -> Result<ObjectRef, RecordError> {
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or(RecordError::NoBucket { index })?;
    let raw = record
        .s3
        .object
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or(RecordError::NoKey { index })?;
    let key = decode_key(raw).ok_or_else(|| RecordError::BadKey {
        index,
        key: raw.to_owned(),
    })?;
    Ok(ObjectRef { bucket, key })
}

/// A key as S3 writes it in an event: form URL-encoding.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

/// The stage an invocation serves: the alias in its invoked ARN (`...:function:file-metadata:dev`).
/// `None` when invoked by version or unqualified, as no bucket notification does.
pub fn stage_of(invoked_arn: &str) -> Option<String> {
    lambda_kit::invocation::alias_from_arn(invoked_arn)
}

/// The summaries bucket of `stage`: the template with `{stage}` replaced. A template without
/// the placeholder names one bucket for every stage.
pub fn summaries_bucket(template: &str, stage: &str) -> String {
    template.replace(STAGE_PLACEHOLDER, stage)
}

/// The key of the summary of `key`.
pub fn summary_key(key: &str) -> String {
    format!("{key}{SUMMARY_SUFFIX}")
}

/// Why a summary must not be written: into the bucket whose event triggered it, it would
/// trigger the function again, for ever (Lambda's recursive-loop lesson).
pub fn refuses(source_bucket: &str, summaries_bucket: &str) -> Option<String> {
    (source_bucket == summaries_bucket).then(|| {
        format!(
            "refusing to write the summary to s3://{summaries_bucket}: it is the bucket that triggered this invocation, so the summary would trigger the function again; set {SUMMARIES_BUCKET_VAR} to another bucket"
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(bucket: &str, key: &str) -> S3EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-2",
            "eventTime": "2026-12-06T16:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "file-metadata",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": key, "size": 3, "eTag": "abc"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        let o = object_of(0, &record("up", "a/my+file%2B1%C3%A9.txt")).unwrap();
        assert_eq!(o.bucket, "up");
        assert_eq!(o.key, "a/my file+1é.txt");
        assert_eq!(
            object_of(1, &record("", "k")),
            Err(RecordError::NoBucket { index: 1 })
        );
        assert_eq!(
            object_of(2, &record("up", "")),
            Err(RecordError::NoKey { index: 2 })
        );
        assert!(matches!(
            object_of(3, &record("up", "%FF")),
            Err(RecordError::BadKey { index: 3, .. })
        ));
    }

    #[test]
    fn the_stage_is_the_alias_and_names_the_bucket() {
        let arn = "arn:aws:lambda:eu-west-2:123456789012:function:file-metadata";
        assert_eq!(stage_of(&format!("{arn}:dev")).as_deref(), Some("dev"));
        assert_eq!(stage_of(&format!("{arn}:7")), None);
        assert_eq!(stage_of(arn), None);
        assert_eq!(
            summaries_bucket("app-{stage}-summaries-123456789012", "live"),
            "app-live-summaries-123456789012"
        );
        assert_eq!(summaries_bucket("fixed", "live"), "fixed");
        assert_eq!(summary_key("probe/a b.txt"), "probe/a b.txt.json");
    }

    #[test]
    fn only_the_triggering_bucket_is_refused() {
        let why = refuses("app-dev-uploads", "app-dev-uploads").unwrap();
        assert!(why.contains("trigger the function again"), "{why}");
        assert!(why.contains(SUMMARIES_BUCKET_VAR), "{why}");
        assert_eq!(refuses("app-dev-uploads", "app-dev-summaries"), None);
    }

    #[test]
    fn the_summary_has_the_documented_fields() {
        let head = ObjectHead {
            size: 3,
            content_type: Some("text/plain".into()),
            metadata: BTreeMap::from([("owner".into(), "me".into())]),
            last_modified: Some("2026-12-06T16:00:00Z".into()),
            etag: Some("abc".into()),
        };
        let made_by = MadeBy {
            function: "file-metadata".into(),
            version: "4".into(),
            commit: "3f2c0e9".into(),
        };
        let object = ObjectRef {
            bucket: "up".into(),
            key: "k".into(),
        };
        let json = serde_json::to_value(Summary::new(&object, head, made_by)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "bucket": "up", "key": "k", "size": 3, "content_type": "text/plain",
                "metadata": {"owner": "me"}, "last_modified": "2026-12-06T16:00:00Z",
                "etag": "abc",
                "made_by": {"function": "file-metadata", "version": "4", "commit": "3f2c0e9"}
            })
        );
    }
}
