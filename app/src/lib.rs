//! The function behind the API: `/` and `/build-info`, served by lambda_http inside Lambda and
//! over plain HTTP everywhere else, through the same axum router. What every function shares
//! (invocation, logs, version headers, serving) is in `lambda_kit`; re-exported here under
//! the names app's users have always used.
pub mod build_info;
pub mod routes;

pub use lambda_kit::{invocation, logging};
pub use routes::router;

pub mod serve {
    //! The shared serve loop, bound to this function's router.
    pub use lambda_kit::serve::*;

    /// The router as lambda_http runs it (see `lambda_kit::serve::lambda_service`).
    pub fn lambda_service() -> LambdaService {
        lambda_kit::serve::lambda_service(crate::router())
    }
}

pub use serve::{lambda_service, route_without_stage};
