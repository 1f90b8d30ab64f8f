//! The function behind the API: `/` and `/build-info`, served by lambda_http inside Lambda and
//! over plain HTTP everywhere else, through the same axum router.
pub mod build_info;
pub mod invocation;
pub mod logging;
pub mod routes;
pub mod serve;

pub use routes::router;
pub use serve::{lambda_service, route_without_stage};
