//! "Today" for the birthday API is the date in UTC: the function runs in whatever time zone
//! its host has, and a stage's answers must not depend on it.
use chrono::{DateTime, NaiveDate, Utc};
use std::time::SystemTime;

/// Where the handler learns today's date; tests pass a fixed one.
pub trait Clock: Send + Sync + 'static {
    fn today(&self) -> NaiveDate;
}

/// The system clock, read in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> NaiveDate {
        utc_date(SystemTime::now())
    }
}

/// The UTC calendar date of an instant (never the host's local date).
pub fn utc_date(at: SystemTime) -> NaiveDate {
    DateTime::<Utc>::from(at).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn today_is_the_date_in_utc() {
        // 2026-02-28T23:30:00Z: already 1 March in UTC+1, still 28 February in UTC.
        let late = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_321_400);
        assert_eq!(
            utc_date(late),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        let midnight = late + Duration::from_secs(30 * 60);
        assert_eq!(
            utc_date(midnight),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }
}
