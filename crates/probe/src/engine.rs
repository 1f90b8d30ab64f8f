//! Sends requests on the schedule, whatever the server does: each request starts at its
//! time, never waiting for an earlier answer. A cap on requests in flight bounds the
//! sockets; a request over the cap is counted as an `overflow` failure instead of delaying
//! the ones after it. Each request is bounded by a timeout, so a run ends at most one
//! timeout after its last scheduled request. Latency runs from the scheduled time (see
//! [`measured_from`] for the timer's slack).
//!
//! The requests in flight are futures of one task (the dispatcher's), not a task each: a
//! spawn, a semaphore permit, a channel sender and a timer per request were a third of the
//! client's CPU in the runtime (`perf`, bench/probe.sh at 200/s), against oha's long-lived
//! workers.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::schedule::Schedule;
use crate::stats::{Answer, Failure, Outcome};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub schedule: Schedule,
    /// The longest a request may take; then it counts as a `timeout` failure.
    pub timeout: Duration,
    pub max_in_flight: usize,
}

/// The default request timeout: API Gateway gives up on an integration at 29 s, but a
/// probe that waits that long learns nothing more than "timeout".
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default cap on requests in flight, under the usual 1024 open files per process.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 900;

/// How late Tokio's timer may wake the dispatcher on an idle client: it fires on whole
/// milliseconds, rounded up, and the poll that waits for it has a millisecond timeout too.
/// Measured with bench/probe.sh: counted as latency, this put a 0.4 ms server at a 1.9 ms
/// p50. The client's own lateness is not the server's.
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Where a request's latency is measured from: its scheduled time, moved on by as much of
/// the dispatcher's lateness as the timer explains (at most [`TIMER_SLACK`]). A request
/// the client sent later than that (a client starved of CPU) is charged the rest, as
/// coordinated omission requires; a server's stall never delays a send, so it shows in full.
pub fn measured_from(scheduled: Duration, released: Duration) -> Duration {
    scheduled + released.saturating_sub(scheduled).min(TIMER_SLACK)
}

/// How one request is made. The engine owns the timing; a transport only answers.
pub trait Transport: Clone + Send + Sync + 'static {
    fn call(&self, seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static;
}

/// A run in progress. Outcomes arrive in completion order; the channel closes when every
/// scheduled request has its outcome (or the run was stopped and the requests in flight
/// have finished).
pub struct Running {
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    /// Offsets in every outcome count from here.
    pub started: Instant,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Sends nothing more; requests in flight still report (within their timeout).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Records every outcome until the run ends.
    pub async fn finish(mut self, stats: &mut crate::Stats) {
        while let Some(o) = self.outcomes.recv().await {
            stats.record(&o);
        }
    }

    /// Time since the start, on the same clock as the outcomes.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Starts sending now. Must be called inside a Tokio runtime.
pub fn start<T: Transport>(config: Config, transport: T) -> Running {
    let (tx, outcomes) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    tokio::spawn(dispatch(config, transport, started, tx, stopped));
    Running {
        outcomes,
        started,
        stop,
    }
}

/// A request in flight, until it answers or its time is up.
struct Pending {
    scheduled: Duration,
    /// Where its latency counts from (see [`measured_from`]).
    from: Duration,
    sent: Duration,
    abort: AbortHandle,
}

/// The requests in flight in send order, for their timeouts. Every request has the same
/// timeout and they leave in order, so the oldest in flight is the first due: no timer per
/// request (registering and removing one was a tenth of the client's CPU at 200/s).
struct Deadlines {
    timeout: Duration,
    /// By seq from `first`; `None` once answered, or for a request never sent (overflow).
    pending: VecDeque<Option<Pending>>,
    first: u64,
}

impl Deadlines {
    fn push(&mut self, request: Option<Pending>) {
        self.pending.push_back(request);
    }

    /// Takes out request `seq` as answered; `None` if it was reported as timed out already.
    fn answered(&mut self, seq: u64) -> Option<Pending> {
        let i = seq.checked_sub(self.first)?;
        self.pending.get_mut(i as usize)?.take()
    }

    /// Aborts and reports every request whose time is up at `now`.
    fn expire(&mut self, now: Duration, mut report: impl FnMut(Outcome)) {
        while let Some(front) = self.pending.front() {
            match front {
                Some(p) if p.sent + self.timeout > now => break,
                Some(p) => {
                    p.abort.abort();
                    report(self.timed_out(self.first, p));
                }
                None => {}
            }
            self.pending.pop_front();
            self.first += 1;
        }
    }

    /// When the oldest request in flight times out. (Right after [`Deadlines::expire`], the
    /// front entry: no answered or unsent one is left before it.)
    fn next_due(&self) -> Option<Duration> {
        let p = self.pending.iter().flatten().next()?;
        Some(p.sent + self.timeout)
    }

    /// The outcome of a request that had no complete answer within the timeout: its latency
    /// is the timeout (plus any lateness of the send), whenever it was found.
    fn timed_out(&self, seq: u64, p: &Pending) -> Outcome {
        Outcome {
            seq,
            scheduled: p.scheduled,
            sent: Some(p.sent),
            latency: (p.sent + self.timeout).saturating_sub(p.from),
            result: Err(Failure::Timeout),
        }
    }
}

async fn dispatch<T: Transport>(
    config: Config,
    transport: T,
    started: Instant,
    tx: mpsc::UnboundedSender<Outcome>,
    mut stopped: watch::Receiver<bool>,
) {
    let schedule = config.schedule;
    let count = schedule.count();
    let due = |seq: u64| started + schedule.offset(seq);
    // Two timers, each armed one request ahead: when one fires, the timer driver already
    // holds the next deadline, so re-arming never has to wake it to say there is a sooner
    // one (with one timer, that was a write to the runtime's eventfd and one more
    // epoll_wait per request; bench/probe.sh).
    let mut timers = [
        Box::pin(tokio::time::sleep_until(due(0))),
        Box::pin(tokio::time::sleep_until(due(1))),
    ];
    timers[1].as_mut().reset(due(1));
    let mut deadlines = Deadlines {
        timeout: config.timeout,
        pending: VecDeque::new(),
        first: 0,
    };
    // Timeouts are found at every wake; this timer is armed only when no send comes
    // before the oldest one is due (a low rate, the tail of the run).
    let mut expiry = Box::pin(tokio::time::sleep_until(started));
    let mut expiry_at = None;
    let mut in_flight = FuturesUnordered::new();
    let mut seq = 0;
    let mut sending = true;
    loop {
        deadlines.expire(started.elapsed(), |o| {
            let _ = tx.send(o);
        });
        let wake_for_expiry = deadlines
            .next_due()
            .map(|d| started + d)
            .filter(|d| !sending || *d < due(seq));
        if let Some(d) = wake_for_expiry
            && expiry_at != Some(d)
        {
            expiry.as_mut().reset(d);
            expiry_at = Some(d);
        }
        let timer = &mut timers[(seq % 2) as usize];
        tokio::select! {
            // Answers first: one that came at the same instant as a send frees its slot for it.
            biased;
            Some((done, result)) = in_flight.next(), if !in_flight.is_empty() => {
                // Aborted: timed out, and reported then. (Abortable checks for an abort before
                // its future, so an answer that came after the timeout was reported is dropped.)
                let Ok(result) = result else { continue };
                let Some(p) = deadlines.answered(done) else { continue };
                let now = started.elapsed();
                let outcome = if now.saturating_sub(p.sent) > config.timeout {
                    deadlines.timed_out(done, &p)
                } else {
                    // From when it was due (less the timer's slack): a send late for any
                    // other reason is latency the caller would have seen all the same.
                    Outcome {
                        seq: done,
                        scheduled: p.scheduled,
                        sent: Some(p.sent),
                        latency: now.saturating_sub(p.from),
                        result,
                    }
                };
                let _ = tx.send(outcome);
            }
            _ = stopped.changed(), if sending => sending = false,
            () = timer.as_mut(), if sending => {
                if seq + 2 < count {
                    timer.as_mut().reset(due(seq + 2));
                }
                let scheduled = schedule.offset(seq);
                let released = started.elapsed();
                if in_flight.len() >= config.max_in_flight {
                    deadlines.push(None);
                    let _ = tx.send(Outcome {
                        seq,
                        scheduled,
                        sent: None,
                        latency: Duration::ZERO,
                        result: Err(Failure::Overflow),
                    });
                } else {
                    let (abort, registration) = AbortHandle::new_pair();
                    deadlines.push(Some(Pending {
                        scheduled,
                        from: measured_from(scheduled, released),
                        sent: released,
                        abort,
                    }));
                    let this = seq;
                    in_flight.push(
                        Abortable::new(transport.call(seq), registration).map(move |r| (this, r)),
                    );
                }
                seq += 1;
                sending = seq < count;
            }
            () = expiry.as_mut(), if wake_for_expiry.is_some() => {}
            else => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;
    use std::sync::{Arc, Mutex};

    /// Answers after whatever `delay(seq, now)` says, on virtual time.
    #[derive(Clone)]
    struct Fake<F>(F);

    impl<F> Transport for Fake<F>
    where
        F: Fn(u64, Instant) -> Duration + Clone + Send + Sync + 'static,
    {
        fn call(&self, seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static {
            let delay = (self.0)(seq, Instant::now());
            async move {
                tokio::time::sleep(delay).await;
                Ok(Answer {
                    status: 200,
                    version: Some(if seq.is_multiple_of(10) { "4" } else { "3" }.into()),
                })
            }
        }
    }

    fn config(rate: f64, secs: u64) -> Config {
        Config {
            schedule: Schedule::new(rate, Duration::from_secs(secs)).unwrap(),
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    async fn collect(mut run: Running) -> Vec<Outcome> {
        let mut all = Vec::new();
        while let Some(o) = run.outcomes.recv().await {
            all.push(o);
        }
        all.sort_by_key(|o| o.seq);
        all
    }

    #[tokio::test(start_paused = true)]
    async fn requests_leave_exactly_on_schedule_even_when_answers_are_slow() {
        // Every answer takes 300 ms: a closed-loop client with one connection would send
        // 3 a second; the schedule asks for 50.
        let cfg = config(50.0, 2);
        let outcomes = collect(start(cfg, Fake(|_, _| Duration::from_millis(300)))).await;
        assert_eq!(outcomes.len(), 100);
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(o.seq, i as u64);
            assert_eq!(o.scheduled, Duration::from_millis(20 * i as u64));
            assert_eq!(o.sent, Some(o.scheduled), "request {i} left late");
            assert_eq!(o.latency, Duration::from_millis(300));
        }
        let mut stats = Stats::new(50.0);
        outcomes.iter().for_each(|o| stats.record(o));
        let r = stats.report();
        assert_eq!(r.rate, 50.0);
        assert_eq!(r.versions["4"].requests, 10);
    }

    #[test]
    fn only_the_timers_own_lateness_is_forgiven() {
        let ms = Duration::from_millis;
        // On time, or late by the timer's tick: measured from the send.
        assert_eq!(measured_from(ms(100), ms(100)), ms(100));
        assert_eq!(measured_from(ms(100), ms(101)), ms(101));
        assert_eq!(measured_from(ms(100), ms(102)), ms(102));
        // Later than the timer explains (a client starved of CPU): from the slack's end, so
        // the rest of the delay is charged as latency.
        assert_eq!(measured_from(ms(100), ms(150)), ms(102));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_shows_in_the_latency_of_every_request_due_during_it() {
        // The server answers in 1 ms, but holds every answer between 1.0 s and 1.5 s
        // until 1.5 s: 50 of 500 requests are due in the stall.
        let t0 = Instant::now();
        let stall = move |_, now: Instant| {
            let at = now - t0;
            let (from, to) = (Duration::from_millis(1000), Duration::from_millis(1500));
            if at >= from && at < to {
                to - at + Duration::from_millis(1)
            } else {
                Duration::from_millis(1)
            }
        };
        let outcomes = collect(start(config(100.0, 5), Fake(stall))).await;
        let mut stats = Stats::new(100.0);
        outcomes.iter().for_each(|o| stats.record(o));
        let l = stats.report().latency_ms.unwrap();
        assert!((501.0..501.6).contains(&l.max), "max {}", l.max);
        assert!(l.p99 >= 450.0, "p99 {} should show the stall", l.p99);
        assert!(l.p90 <= 1.0, "p90 {} should not", l.p90);
        // The request due at 1.25 s waited 250 ms for the server.
        let o = &outcomes[125];
        assert_eq!(o.latency, Duration::from_millis(251));
        assert_eq!(o.sent, Some(Duration::from_millis(1250)));
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_in_flight_cap_requests_are_counted_not_delayed() {
        let mut cfg = config(10.0, 2);
        cfg.max_in_flight = 2;
        // Each answer takes 1 s: at 10/s only 2 can be in flight.
        let outcomes = collect(start(cfg, Fake(|_, _| Duration::from_secs(1)))).await;
        assert_eq!(outcomes.len(), 20);
        let overflow = outcomes
            .iter()
            .filter(|o| o.result == Err(Failure::Overflow))
            .count();
        // Sent: 0.0 0.1 | 1.0 1.1 (slots free again at 1.0 and 1.1 s) -> 4 sent, 16 counted.
        assert_eq!(overflow, 16);
        for o in outcomes.iter().filter(|o| o.sent.is_some()) {
            assert_eq!(o.sent, Some(o.scheduled));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_with_no_answer_times_out_at_the_timeout() {
        let mut cfg = config(1.0, 3);
        cfg.timeout = Duration::from_millis(800);
        let outcomes = collect(start(cfg, Fake(|_, _| Duration::from_secs(3600)))).await;
        assert_eq!(outcomes.len(), 3);
        for o in &outcomes {
            assert_eq!(o.result, Err(Failure::Timeout));
            assert_eq!(o.latency, Duration::from_millis(800));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn at_a_high_rate_timeouts_are_exact_too_and_a_late_answer_is_still_a_timeout() {
        // Sends every 10 ms come before any deadline, so timeouts are found at those wakes
        // (no timer of their own) until the last send. Answers at 70 ms, past the 50 ms
        // timeout, and one in ten at 20 ms, inside it.
        let mut cfg = config(100.0, 1);
        cfg.timeout = Duration::from_millis(50);
        let outcomes = collect(start(
            cfg,
            Fake(|seq, _| Duration::from_millis(if seq % 10 == 3 { 20 } else { 70 })),
        ))
        .await;
        assert_eq!(outcomes.len(), 100);
        for o in &outcomes {
            if o.seq % 10 == 3 {
                assert!(o.result.is_ok(), "{o:?}");
                assert_eq!(o.latency, Duration::from_millis(20));
            } else {
                assert_eq!(o.result, Err(Failure::Timeout), "{o:?}");
                assert_eq!(o.latency, Duration::from_millis(50), "{o:?}");
            }
        }
    }

    #[test]
    fn deadlines_report_the_unanswered_in_send_order_and_forget_the_rest() {
        let ms = Duration::from_millis;
        let pending = |sent: u64| {
            Some(Pending {
                scheduled: ms(sent),
                from: ms(sent),
                sent: ms(sent),
                abort: AbortHandle::new_pair().0,
            })
        };
        let mut d = Deadlines {
            timeout: ms(100),
            pending: VecDeque::new(),
            first: 0,
        };
        // 0 answered, 1 never sent (overflow), 2 and 3 unanswered.
        d.push(pending(0));
        d.push(None);
        d.push(pending(20));
        d.push(pending(30));
        assert!(d.answered(0).is_some());
        assert_eq!(
            d.next_due(),
            Some(ms(120)),
            "answered and unsent ones are not due"
        );
        let mut seen = Vec::new();
        d.expire(ms(119), |o| seen.push(o.seq));
        assert!(seen.is_empty());
        assert_eq!(d.next_due(), Some(ms(120)));
        d.expire(ms(120), |o| {
            assert_eq!(o.result, Err(Failure::Timeout));
            assert_eq!(o.latency, ms(100));
            seen.push(o.seq);
        });
        assert_eq!(seen, vec![2]);
        assert!(d.answered(2).is_none(), "already reported as timed out");
        assert!(d.answered(0).is_none(), "long gone");
        assert!(d.answered(3).is_some());
        d.expire(ms(1000), |o| seen.push(o.seq));
        assert_eq!(seen, vec![2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_run_sends_nothing_more_and_ends() {
        let seen = Arc::new(Mutex::new(0u64));
        let counter = seen.clone();
        let mut run = start(
            config(10.0, 100),
            Fake(move |_, _| {
                *counter.lock().unwrap() += 1;
                Duration::from_millis(5)
            }),
        );
        let mut got = 0;
        while let Some(_o) = run.outcomes.recv().await {
            got += 1;
            if got == 5 {
                run.stop();
            }
        }
        assert_eq!(got, 5);
        assert_eq!(*seen.lock().unwrap(), 5);
    }
}
