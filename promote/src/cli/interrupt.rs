//! Ctrl-C and SIGTERM. A rollout must not die between two writes, so signals only raise a
//! flag; the command looks at it where stopping is safe (before a write, while waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
pub struct Interrupt {
    flag: AtomicBool,
    /// Inside a critical section (the rollback write): a second signal does not exit.
    holding: AtomicBool,
    notify: Notify,
}

/// While alive, signals are only recorded; see [`Interrupt::hold`].
pub struct Held<'a>(&'a Interrupt);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.holding.store(false, Ordering::SeqCst);
    }
}

impl Interrupt {
    /// Listens for Ctrl-C (and SIGTERM, which CI runners send on cancel).
    pub fn install() -> Arc<Interrupt> {
        let me = Arc::new(Interrupt::default());
        let on_int = me.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                on_int.signal();
            }
        });
        #[cfg(unix)]
        {
            let on_term = me.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    while term.recv().await.is_some() {
                        on_term.signal();
                    }
                }
            });
        }
        me
    }

    /// Tests stand in for a signal.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// A signal from the outside: the first one asks for a clean stop, a second one (an
    /// impatient operator) ends the process at once. Writes are single API calls, so even
    /// then no alias is left half-written: it has either been updated or not.
    fn signal(&self) {
        if self.flag.swap(true, Ordering::SeqCst) && !self.holding.load(Ordering::SeqCst) {
            eprintln!(
                "\ninterrupted again: exiting now; check `promote status` for where things stand"
            );
            std::process::exit(crate::cli::exit::INTERRUPTED);
        }
        // notify_one keeps a permit if nobody waits yet, so a signal between two checks
        // still ends the next sleep at once.
        self.notify.notify_one();
    }

    /// A critical section: until the guard drops, no signal ends the process; the run
    /// sees the flag afterwards and exits with the section's outcome. GitHub cancels a job
    /// with SIGINT then SIGTERM, which must not cut a rollback write in half.
    pub fn hold(&self) -> Held<'_> {
        self.holding.store(true, Ordering::SeqCst);
        Held(self)
    }

    /// Whether a second signal would exit now (tests).
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn is_holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst)
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`; true if interrupted (now or before).
    pub async fn sleep(&self, d: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.notify.notified() => {}
        }
        self.is_set()
    }
}
