//! When each request leaves: request `i` at `i / rate` seconds after the start, whatever
//! the server does. The schedule never looks at answers, which is what makes the load
//! open-loop.

use std::time::Duration;

/// At most this many requests in one run: the samples are kept for the plot, and a probe is
/// a short look at a stage, not a load test.
pub const MAX_REQUESTS: u64 = 2_000_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the rate must be a positive number of requests per second (got {0})")]
    Rate(f64),
    #[error("the duration must be longer than zero")]
    Duration,
    #[error(
        "{rate}/s for {secs}s is less than one request; raise --rate or --duration",
        secs = duration.as_secs_f64()
    )]
    Empty { rate: f64, duration: Duration },
    #[error(
        "{count} requests is more than the {MAX_REQUESTS} one run may send; lower --rate or --duration"
    )]
    TooMany { count: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    count: u64,
}

impl Schedule {
    /// `rate` requests a second for `duration`: `floor(rate * duration)` requests, the first
    /// at 0 and the last before `duration`.
    pub fn new(rate: f64, duration: Duration) -> Result<Schedule, ScheduleError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ScheduleError::Rate(rate));
        }
        if duration.is_zero() {
            return Err(ScheduleError::Duration);
        }
        // The epsilon keeps 0.1/s for 10 s at one request despite 0.1 * 10 = 0.999...
        let exact = rate * duration.as_secs_f64();
        let count = (exact + 1e-9).floor();
        if count < 1.0 {
            return Err(ScheduleError::Empty { rate, duration });
        }
        if count > MAX_REQUESTS as f64 {
            return Err(ScheduleError::TooMany {
                count: count as u64,
            });
        }
        Ok(Schedule {
            rate,
            count: count as u64,
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// When request `i` is due, from the start of the run, to the nanosecond.
    pub fn offset(&self, i: u64) -> Duration {
        // i / rate in f64 is exact to well under a microsecond for any i <= MAX_REQUESTS.
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// How long the sending lasts: from the first request to the last one.
    pub fn span(&self) -> Duration {
        self.offset(self.count - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_evenly_spaced_from_zero() {
        let s = Schedule::new(3.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.count(), 6);
        let offsets: Vec<u64> = (0..s.count())
            .map(|i| s.offset(i).as_nanos() as u64)
            .collect();
        assert_eq!(
            offsets,
            [
                0,
                333_333_333,
                666_666_667,
                1_000_000_000,
                1_333_333_333,
                1_666_666_667
            ]
        );
        assert_eq!(s.span(), Duration::from_nanos(1_666_666_667));
    }

    #[test]
    fn count_is_rate_times_duration() {
        let n = |rate: f64, ms: u64| {
            Schedule::new(rate, Duration::from_millis(ms))
                .unwrap()
                .count()
        };
        assert_eq!(n(100.0, 20_000), 2000);
        assert_eq!(n(1000.0, 1), 1);
        assert_eq!(n(0.1, 10_000), 1);
        assert_eq!(n(2.5, 1_000), 2);
        // The 1000th request of a 1000/s schedule leaves at 999 ms, not at 1 s.
        let s = Schedule::new(1000.0, Duration::from_secs(1)).unwrap();
        assert_eq!(s.offset(999), Duration::from_millis(999));
    }

    #[test]
    fn bad_rates_and_durations_are_refused_with_the_reason() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = Schedule::new(rate, Duration::from_secs(1)).unwrap_err();
            assert!(matches!(e, ScheduleError::Rate(_)), "{rate}: {e}");
        }
        assert_eq!(
            Schedule::new(10.0, Duration::ZERO).unwrap_err(),
            ScheduleError::Duration
        );
        let e = Schedule::new(0.5, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("less than one request"), "{e}");
        let e = Schedule::new(1e6, Duration::from_secs(3600)).unwrap_err();
        assert!(matches!(e, ScheduleError::TooMany { .. }), "{e}");
    }
}
