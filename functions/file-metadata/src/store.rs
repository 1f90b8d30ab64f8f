//! The two S3 calls the function makes, behind the `Store` trait the handler sees: HeadObject
//! on the object that triggered it and PutObject of its summary (the only two actions its role
//! allows, docs/file-metadata.md). `S3` is the thin adapter; the tests use an in-memory store
//! (cfg(test), in `handler`).
use std::future::Future;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::{ByteStream, DateTimeFormat};
use thiserror::Error;

use crate::summary::ObjectHead;

#[derive(Debug, Error)]
#[error("{action} s3://{bucket}/{key}: {message}")]
pub struct StoreError {
    pub action: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
}

pub trait Store: Send + Sync {
    /// What HeadObject says of the object; `None` when it is gone (deleted before it was read).
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectHead>, StoreError>> + Send;

    /// Writes (or overwrites) a JSON object.
    fn put_json(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone)]
pub struct S3 {
    client: Client,
}

impl S3 {
    pub fn new(client: Client) -> S3 {
        S3 { client }
    }
}

fn store_error(
    action: &'static str,
    bucket: &str,
    key: &str,
    error: impl std::error::Error,
) -> StoreError {
    StoreError {
        action,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: DisplayErrorContext(error).to_string(),
    }
}

impl Store for S3 {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, StoreError> {
        let out = match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if matches!(e.err(), HeadObjectError::NotFound(_)) => {
                return Ok(None);
            }
            Err(e) => return Err(store_error("HeadObject", bucket, key, e)),
        };
        Ok(Some(ObjectHead {
            size: out.content_length().unwrap_or(0),
            content_type: out.content_type().map(str::to_owned),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            last_modified: out
                .last_modified()
                .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok()),
            etag: out.e_tag().map(|e| e.trim_matches('"').to_owned()),
        }))
    }

    async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("PutObject", bucket, key, e))
    }
}
