//! Calendar spellings AWS uses, derived from the HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`)
//! that `httpdate` already formats, instead of pulling in a date-time crate for three formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Parts<'a> {
    day: &'a str,
    month: usize,
    year: &'a str,
    time: &'a str,
}

fn parts(http_date: &str) -> Option<Parts<'_>> {
    let p: Vec<&str> = http_date.split_whitespace().collect();
    let [_, day, month, year, time, _] = p.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    Some(Parts {
        day,
        month,
        year,
        time,
    })
}

/// `2026/11/30`, the date in a Lambda log stream name.
pub fn ymd_slashes(http_date: &str) -> String {
    parts(http_date)
        .map(|p| format!("{}/{:02}/{}", p.year, p.month, p.day))
        .unwrap_or_default()
}

/// `30/11/26 16:05:00`, how CloudWatch writes a datapoint's time in an alarm's state reason.
pub fn cloudwatch_reason_time(at: SystemTime) -> String {
    let d = httpdate::fmt_http_date(at);
    parts(&d)
        .map(|p| {
            let yy = &p.year[p.year.len().saturating_sub(2)..];
            format!("{}/{:02}/{yy} {}", p.day, p.month, p.time)
        })
        .unwrap_or(d)
}

/// `2019-10-02T17:04:40.989+0000` (CloudWatch's spelling of an alarm state's time) or, with
/// `millis` false, `2019-10-02T17:04:40Z` (an EventBridge event's).
pub fn iso8601(at: SystemTime, millis: bool) -> String {
    let d = httpdate::fmt_http_date(at);
    let Some(p) = parts(&d) else { return d };
    let date = format!("{}-{:02}-{}T{}", p.year, p.month, p.day, p.time);
    if millis {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_millis();
        format!("{date}.{ms:03}+0000")
    } else {
        format!("{date}Z")
    }
}

pub fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        // 2026-11-30T16:05:00Z
        let t = from_millis(1_796_054_700_000);
        assert_eq!(httpdate::fmt_http_date(t), "Mon, 30 Nov 2026 16:05:00 GMT");
        assert_eq!(cloudwatch_reason_time(t), "30/11/26 16:05:00");
        assert_eq!(ymd_slashes("Mon, 30 Nov 2026 16:05:00 GMT"), "2026/11/30");
        assert_eq!(iso8601(t, false), "2026-11-30T16:05:00Z");
        assert_eq!(
            iso8601(t + Duration::from_millis(7), true),
            "2026-11-30T16:05:00.007+0000"
        );
    }
}
