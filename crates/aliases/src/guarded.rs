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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use rollout::{Split, Version, Weight};

    use super::*;

    /// One alias that checks RevisionIds as Lambda does, with scripted failures.
    struct Stand {
        rec: RefCell<AliasRecord>,
        /// Answers for the next updates before the real one: transient, applied-but-lost,
        /// or someone else's write first.
        script: RefCell<Vec<&'static str>>,
        updates: RefCell<u32>,
    }

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    fn record(view: AliasView, rev: u32) -> AliasRecord {
        AliasRecord {
            name: "live".into(),
            view,
            description: "promote/v1 step=2@10 baked=no".into(),
            revision_id: format!("rev-{rev}"),
        }
    }

    fn split() -> AliasView {
        AliasView {
            version: v(1),
            split: Some(Split {
                version: v(2),
                weight: Weight::parse_percent("10").unwrap(),
            }),
        }
    }

    fn back() -> AliasWrite {
        AliasWrite {
            version: v(1),
            split: None,
            description: Some("promote/v1 rolled_back=2 why=x".into()),
        }
    }

    impl Stand {
        fn new(script: &[&'static str]) -> Stand {
            Stand {
                rec: RefCell::new(record(split(), 1)),
                script: RefCell::new(script.iter().rev().copied().collect()),
                updates: RefCell::new(0),
            }
        }
        fn apply(&self, write: &AliasWrite) -> AliasRecord {
            let mut rec = self.rec.borrow_mut();
            rec.view = AliasView {
                version: write.version,
                split: write.split,
            };
            rec.description = write.description.clone().unwrap_or_default();
            let n: u32 = rec.revision_id[4..].parse().unwrap();
            rec.revision_id = format!("rev-{}", n + 1);
            rec.clone()
        }
    }

    impl Alias for Stand {
        fn name(&self) -> &str {
            "live"
        }
        async fn read(&self) -> anyhow::Result<AliasRecord> {
            Ok(self.rec.borrow().clone())
        }
        async fn update(
            &self,
            write: &AliasWrite,
            revision_id: &str,
        ) -> Result<AliasRecord, WriteError> {
            *self.updates.borrow_mut() += 1;
            if self.rec.borrow().revision_id != revision_id {
                return Err(WriteError::Conflict("stale".into()));
            }
            let step = self.script.borrow_mut().pop();
            match step {
                Some("throttled") => Err(WriteError::Transient(anyhow::anyhow!("Rate exceeded"))),
                Some("lost") => {
                    self.apply(write);
                    Err(WriteError::Transient(anyhow::anyhow!("connection closed")))
                }
                Some("other-writer") => {
                    self.apply(&AliasWrite {
                        version: v(1),
                        split: Some(Split {
                            version: v(2),
                            weight: Weight::parse_percent("50").unwrap(),
                        }),
                        description: None,
                    });
                    Err(WriteError::Conflict("stale".into()))
                }
                Some("invalid") => Err(WriteError::Other(anyhow::anyhow!("bad weight"))),
                _ => Ok(self.apply(write)),
            }
        }
    }

    async fn run(stand: &Stand, within: Duration) -> Result<Written, GuardedError> {
        let seen = record(split(), 1);
        let mut retries = 0;
        let r = write(stand, &seen, &back(), within, |_, _| retries += 1).await;
        // Told of every attempt that did not go through (each one sent an update).
        assert!(retries >= 1 || *stand.updates.borrow() <= 1);
        assert!(retries <= *stand.updates.borrow());
        r
    }

    #[tokio::test(start_paused = true)]
    async fn written_once_through_throttling_and_a_lost_answer() {
        let s = Stand::new(&["throttled", "throttled"]);
        let w = run(&s, WRITE_DEADLINE).await.unwrap();
        assert_eq!((w.record.view.split, w.by_earlier_attempt), (None, false));

        let s = Stand::new(&["lost"]);
        let w = run(&s, WRITE_DEADLINE).await.unwrap();
        assert!(w.by_earlier_attempt, "the re-read shows the write landed");
        assert_eq!(*s.updates.borrow(), 1, "not written twice");
    }

    #[tokio::test(start_paused = true)]
    async fn another_writer_first_means_nothing_written() {
        let s = Stand::new(&["other-writer"]);
        match run(&s, WRITE_DEADLINE).await {
            Err(GuardedError::Changed { was, now, .. }) => {
                assert_eq!(was, split());
                assert_eq!(now.split.map(|s| s.weight.percent()), Some(50.0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.rec.borrow().view.split.map(|s| s.weight.percent()),
            Some(50.0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_write_is_not_retried_and_a_deadline_ends_the_retries() {
        let s = Stand::new(&["invalid"]);
        assert!(matches!(
            run(&s, WRITE_DEADLINE).await,
            Err(GuardedError::Refused(_))
        ));
        let s = Stand::new(&["throttled"; 64]);
        let started = Instant::now();
        match run(&s, WRITE_DEADLINE).await {
            Err(e @ GuardedError::TimedOut { .. }) => {
                assert!(
                    e.to_string().contains("did not go through within 1m"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        // On tokio's clock, which the waits advance.
        assert!(
            started.elapsed() <= WRITE_DEADLINE,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(s.rec.borrow().view, split(), "nothing written");
    }
}
