//! The birthday API: `PUT /hello/{username}` stores a date of birth, `GET /hello/{username}`
//! says how many days are left until the birthday. Served like `app` (lambda_kit: build
//! stamp, version headers, request log, serve loop); data in the stage's DynamoDB table,
//! named by the request's stage variable (docs/birthday.md).
pub mod build_info;
pub mod clock;
pub mod contract;
pub mod routes;
pub mod store;

pub use routes::{TABLE_STAGE_VARIABLE, router};
