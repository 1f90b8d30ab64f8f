//! The only way an alias is written, by `promote` and by the guardian alike.
//!
//! Idempotent: before every attempt the alias is re-read, and if it already is what this
//! write makes it (an earlier attempt was applied but its answer lost), that is success. If
//! it is neither that nor what the writer last saw, someone else changed it: nothing is
//! written ([`GuardedError::Changed`]), so of two writers racing from the same reading
//! exactly one wins. Throttling, an update in progress (`ResourceConflictException`), a
//! 5xx, a timeout or a stale RevisionId are retried with backoff and jitter until the
//! deadline.

use std::time::{Duration, SystemTime};

use rollout::{AliasView, format_duration};
use tokio::time::Instant;

use crate::record::{AliasRecord, AliasWrite, WriteError};

/// How long one alias write may keep retrying (re-read, backoff, write again) before the
/// writer gives up with the alias as it is. A rollback tries for longer: it is the write
/// that must not give up on a transient error.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(60);
pub const ROLLBACK_DEADLINE: Duration = Duration::from_secs(180);
/// Exponential backoff between write attempts (doubling from the first, capped), with
/// full jitter so that two writers do not retry in lockstep.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// One alias of one function, as the guarded write reads and writes it.
pub trait Alias {
    /// Its name, for messages.
    fn name(&self) -> &str;
    async fn read(&self) -> anyhow::Result<AliasRecord>;
    /// Writes it if its RevisionId still is `revision_id`.
    async fn update(
        &self,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError>;
}

/// A write that went through.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The alias after it.
    pub record: AliasRecord,
    /// An earlier attempt was applied though its answer was lost (seen on the re-read).
    pub by_earlier_attempt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardedError {
    /// The alias is neither what the writer last saw nor what it meant to make it: another
    /// writer moved it. Nothing was written.
    #[error("alias {alias} was changed by someone else: it was {was} and is now {now}")]
    Changed {
        alias: String,
        was: AliasView,
        now: AliasView,
    },
    /// The alias could not be read (even after retries until the deadline).
    #[error("{0:#}")]
    Unread(anyhow::Error),
    /// Lambda refused the write as invalid; never retried.
    #[error("{0:#}")]
    Refused(anyhow::Error),
    /// Every attempt until the deadline was refused as stale or transient: `last` says why.
    #[error("the write of alias {alias} did not go through within {}: {last:#}", format_duration(*within))]
    TimedOut {
        alias: String,
        within: Duration,
        last: anyhow::Error,
    },
}

/// Makes `alias` what `write` says, provided it still is `seen` (what the decision was
/// based on), retrying for at most `within`. `on_retry(attempt, error)` is told of every
/// attempt that did not go through before the wait that follows it.
pub async fn write<A: Alias>(
    alias: &A,
    seen: &AliasRecord,
    write: &AliasWrite,
    within: Duration,
    mut on_retry: impl FnMut(u32, &anyhow::Error),
) -> Result<Written, GuardedError> {
    let name = alias.name();
    let deadline = Instant::now() + within;
    let mut attempt = 0u32;
    loop {
        let now = read(alias, deadline).await.map_err(GuardedError::Unread)?;
        if attempt > 0 && write.is_applied_on(&now) {
            tracing::info!(alias = %name, "an earlier attempt of this write was applied");
            return Ok(Written {
                record: now,
                by_earlier_attempt: true,
            });
        }
        if now.view != seen.view || now.description.trim() != seen.description.trim() {
            return Err(GuardedError::Changed {
                alias: name.to_string(),
                was: seen.view,
                now: now.view,
            });
        }
        tracing::info!(alias = %name, revision_id = %now.revision_id, ?write, attempt, "UpdateAlias");
        let err = match alias.update(write, &now.revision_id).await {
            Ok(record) => {
                return Ok(Written {
                    record,
                    by_earlier_attempt: false,
                });
            }
            Err(WriteError::Other(e)) => return Err(GuardedError::Refused(e)),
            Err(WriteError::Conflict(m)) => anyhow::anyhow!(m),
            Err(WriteError::Transient(e)) => e,
        };
        let wait = jitter(backoff(attempt));
        if Instant::now() + wait >= deadline {
            return Err(GuardedError::TimedOut {
                alias: name.to_string(),
                within,
                last: err,
            });
        }
        tracing::warn!(attempt, error = %format!("{err:#}"), "UpdateAlias did not go through; re-reading");
        on_retry(attempt, &err);
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Reads the alias, retrying failed reads until `deadline`.
async fn read<A: Alias>(alias: &A, deadline: Instant) -> anyhow::Result<AliasRecord> {
    let mut attempt = 0u32;
    loop {
        match alias.read().await {
            Ok(a) => return Ok(a),
            Err(e) if Instant::now() + backoff(attempt) < deadline => {
                tracing::warn!(attempt, error = %format!("{e:#}"), "GetAlias failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The wait before retry `attempt` (0-based): doubling from the first, capped.
fn backoff(attempt: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.min(10))
        .min(BACKOFF_CAP)
}

/// Equal jitter: uniformly between half and all of `d`, seeded from the clock (no RNG crate
/// needed for spreading retries).
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let frac = f64::from(nanos % 1000) / 1000.0;
    d.mul_f64(0.5 + frac / 2.0)
}
