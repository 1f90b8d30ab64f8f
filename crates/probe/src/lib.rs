//! `probe`: open-loop synthetic traffic attributed to the version that served it.
//!
//! Requests leave on a fixed [`schedule`] whatever the server does; each one's latency is
//! measured from when it was due, so a stall shows in the figures instead of vanishing
//! (coordinated omission). Each answer is attributed to the version named in its
//! `x-app-version` header, and [`stats`] compares each version's share against what the
//! alias was configured to give it. The [`engine`] and [`http`] do the I/O; everything else
//! is pure.

pub mod engine;
pub mod evidence;
pub mod http;
pub mod plot;
pub mod schedule;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use engine::{Config, Running, Transport, start};
pub use schedule::{Schedule, ScheduleError};
pub use stats::{Answer, Failure, Outcome, Report, Split, Stats};
