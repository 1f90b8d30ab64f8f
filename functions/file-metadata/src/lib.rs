//! file-metadata: triggered by S3 when an object is added to a stage's uploads bucket, it reads
//! the object's content type, size, metadata and last-modified date (HeadObject) and writes a
//! JSON summary, naming the version that made it, to the stage's summaries bucket; and logs it
//! (docs/file-metadata.md). `summary` is the pure part (what is written, where, and when to
//! refuse), `store` the S3 adapter, `handler` one invocation over a batch of records.
pub mod build_info;
pub mod handler;
pub mod store;
pub mod summary;

pub use handler::{Config, Handled, handle};
