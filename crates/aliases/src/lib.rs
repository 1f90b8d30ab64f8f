//! One Lambda alias, read and written safely: the record as read (routing, note,
//! RevisionId), the write a decision asks for, the thin adapter over aws-sdk-lambda that
//! reads and writes it, and the guarded write both `promote` and the guardian go through
//! (RevisionId-checked, re-read before every attempt so that an earlier attempt whose
//! answer was lost counts as done, retried with backoff until a deadline).
//!
//! Nothing here decides what to write: `rollout` does.

// The trait's users call it on a concrete type, whose futures' Send-ness the compiler sees.
#![allow(async_fn_in_trait)]

pub mod guarded;
pub mod lambda;
mod record;
pub mod sdk_error;

pub use record::{AliasRecord, AliasWrite, WriteError, alias_record, routing_config};
pub use sdk_error::is_transient;
