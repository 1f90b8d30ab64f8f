//! Notes: `PUT /notes/{name}` writes a text body to `{name}.txt` in the stage's bucket,
//! `GET /notes/{name}` reads it back. Served like `app` (lambda_kit); the bucket is named by
//! the request's stage variable `notesBucket` (docs/notes.md).
pub mod build_info;
pub mod contract;
pub mod routes;

pub use routes::{BUCKET_STAGE_VARIABLE, router};
