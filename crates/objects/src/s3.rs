//! The adapter over `aws-sdk-s3`: GetObject and PutObject, the two actions the functions'
//! roles allow.
use crate::{Object, Objects, ObjectsError, PutNew};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

/// The variable through which the local gateway (and the tests) point the SDK at the emulator.
pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";

#[derive(Debug, Clone)]
pub struct S3 {
    client: Client,
}

impl S3 {
    /// A client from the standard AWS environment (region, credentials, endpoint) with the
    /// workspace's HTTPS client. Path-style addressing when an endpoint is set: the emulator
    /// listens on 127.0.0.1, where `<bucket>.127.0.0.1` names no host.
    pub async fn from_env() -> S3 {
        let config = aws_https::defaults().load().await;
        let path_style = std::env::var_os(ENDPOINT_VAR).is_some_and(|v| !v.is_empty());
        S3::new(Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(path_style)
                .build(),
        ))
    }

    pub fn new(client: Client) -> S3 {
        S3 { client }
    }
}

fn failed(bucket: &str, key: &str, error: impl std::error::Error) -> ObjectsError {
    ObjectsError {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: DisplayErrorContext(error).to_string(),
    }
}

impl Objects for S3 {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Object>, ObjectsError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(failed(bucket, key, e)),
        };
        let content_type = out.content_type().map(str::to_owned);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| failed(bucket, key, e))?
            .to_vec();
        Ok(Some(Object { body, content_type }))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectsError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failed(bucket, key, e))?;
        Ok(())
    }

    async fn put_new(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<PutNew, ObjectsError> {
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match out {
            Ok(_) => Ok(PutNew::Created),
            // 412: an object has the key. 409: another conditional write to it is under way,
            // which S3 resolves for one of the two; this one did not create it.
            Err(e)
                if matches!(
                    e.as_service_error().and_then(|s| s.code()),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) =>
            {
                Ok(PutNew::Exists)
            }
            Err(e) => Err(failed(bucket, key, e)),
        }
    }
}
