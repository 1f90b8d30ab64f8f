//! Objects in S3 buckets as the HTTP functions (notes, images) see them: the `Objects` trait
//! with the three calls they make, `S3`, the thin adapter over `aws-sdk-s3`, and (feature
//! `memory`, for unit tests only) an in-memory store. The bucket is an argument of every call:
//! a function learns it from each request's stage variables, never from its environment.
#[cfg(feature = "memory")]
pub mod memory;
mod s3;

pub use s3::S3;
use std::future::Future;
use thiserror::Error;

/// An object's bytes and the Content-Type it was stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

/// A failed call, naming the bucket and key.
#[derive(Debug, Error)]
#[error("S3 bucket {bucket}, key {key:?}: {message}")]
pub struct ObjectsError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// What a conditional write found: the key was free (the object is written) or taken (nothing
/// was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutNew {
    Created,
    Exists,
}

pub trait Objects: Send + Sync + 'static {
    /// The object at `key`, or `None` when there is none.
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Object>, ObjectsError>> + Send;

    /// Writes `key`, replacing whatever was there.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), ObjectsError>> + Send;

    /// Writes `key` only if no object has it (S3's conditional write, `If-None-Match: *`), so
    /// that "created" is decided by S3 in one call rather than by a look and a write that
    /// another request can come between.
    fn put_new(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<PutNew, ObjectsError>> + Send;
}
