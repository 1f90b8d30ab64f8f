//! Images: `POST /images` (multipart/form-data: `file`, `s3Key`) stores the image and two
//! copies, 200 and 75 pixels wide, in the stage's bucket; `GET /images/{key}` reads any of them
//! back. Served like `app` (lambda_kit); the bucket is named by the request's stage variable
//! `imagesBucket` (docs/images.md).
pub mod build_info;
pub mod contract;
pub mod copies;
pub mod form;
pub mod routes;

pub use routes::{BUCKET_STAGE_VARIABLE, router};
