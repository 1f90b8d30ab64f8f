//! What every Lambda HTTP function of the project shares: the build stamp and `/build-info`
//! types, where a request came from (invocation, stage, stage variables), the version
//! headers and the structured request log, and the serve loop (Lambda runtime or local HTTP).
//! A function crate brings its router and its `build_info!()`; everything else is here, so
//! that a new function answers, logs and identifies itself exactly as `app` does.
pub mod build_info;
pub mod invocation;
pub mod layers;
pub mod logging;
pub mod refusal;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;

pub use layers::{SHA_HEADER, VERSION_HEADER, with_common_layers};

/// What the shared code needs to know about the binary it runs in (its `build_info::BINARY`).
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The crate name (`app`, `birthday`).
    pub name: &'static str,
    /// The full commit sha, or "unknown".
    pub git_sha: &'static str,
    /// Returns the build stamp; called at start-up so the linker keeps it.
    pub stamp: fn() -> &'static str,
}
