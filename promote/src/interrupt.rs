//! Ctrl-C and SIGTERM. A rollout must not die between two writes, so signals only raise a
//! flag; the command looks at it where stopping is safe (before a write, while waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
pub struct Interrupt {
    flag: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    /// Listens for Ctrl-C (and SIGTERM, which CI runners send on cancel).
    pub fn install() -> Arc<Interrupt> {
        let me = Arc::new(Interrupt::default());
        let on_int = me.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_int.trigger();
            }
        });
        #[cfg(unix)]
        {
            let on_term = me.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate())
                    && term.recv().await.is_some()
                {
                    on_term.trigger();
                }
            });
        }
        me
    }

    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // notify_one keeps a permit if nobody waits yet, so a signal between two checks
        // still ends the next sleep at once.
        self.notify.notify_one();
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
