//! Traffic weights.
//!
//! Operators speak percent (`--weight 10`), Lambda wants the share of the additional
//! version as a fraction (`0.1`). Weights are kept as an integer number of hundredths of a
//! percent so that parsing, comparing and converting are exact: `10` is 1000, `0.25` is 25,
//! and the fraction sent to Lambda is `n / 10000`, the nearest double to the decimal the
//! operator typed (so `10` goes out as `0.1`, not `0.10000000000000001`).

use std::fmt;

use thiserror::Error;

/// Hundredths of a percent in 100%.
const FULL: u32 = 10_000;

/// A share of traffic in hundredths of a percent (0.01% resolution), between 0 and 100%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WeightError {
    #[error("weight `{0}` is not a number; give a percentage such as 10 or 2.5")]
    NotANumber(String),
    #[error("weight `{0}` has more than two decimal places; the finest step is 0.01%")]
    TooPrecise(String),
    #[error("weight {0} must be greater than 0% (to take traffic back, use `promote rollback`)")]
    Zero(String),
    #[error("weight {0} is negative; give a percentage between 0 and 100, e.g. 10")]
    Negative(String),
    #[error(
        "weight {0} must be below 100% (a canary splits traffic; to send everything to the candidate, use `promote complete`)"
    )]
    Full(String),
    #[error("weight {0} is above 100%; give a percentage between 0 and 100, e.g. 10")]
    AboveFull(String),
}

impl Weight {
    /// 100%: the candidate takes all traffic (the promotion is complete).
    pub const FULL: Weight = Weight(FULL);
    /// 0%: a candidate that is routed nothing (Lambda allows it; it is still a candidate).
    pub const ZERO: Weight = Weight(0);

    /// Parses a percentage (`10`, `2.5`, `10%`) for a canary split: strictly between 0 and 100.
    pub fn parse_split(text: &str) -> Result<Weight, WeightError> {
        let w = Self::parse_percent(text)?;
        if w == Weight::FULL {
            return Err(WeightError::Full(text.trim().to_string()));
        }
        Ok(w)
    }

    /// Parses a percentage in (0, 100]: a step of a canary plan, where 100 means complete.
    pub fn parse_percent(text: &str) -> Result<Weight, WeightError> {
        let shown = text.trim().to_string();
        let body = shown.strip_suffix('%').unwrap_or(&shown).trim();
        let (negative, digits) = match body.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, body.strip_prefix('+').unwrap_or(body)),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let valid = !int_part.is_empty()
            && is_digits(int_part)
            && frac_part.is_none_or(|f| !f.is_empty() && is_digits(f));
        if !valid {
            return Err(WeightError::NotANumber(shown));
        }
        let frac = frac_part.unwrap_or("");
        let frac_trimmed = frac.trim_end_matches('0');
        if frac_trimmed.len() > 2 {
            return Err(WeightError::TooPrecise(shown));
        }
        let int_value: u64 = match int_part.trim_start_matches('0') {
            "" => 0,
            // Anything this long is far above 100 anyway.
            s if s.len() > 6 => u64::MAX / 1000,
            s => s
                .parse()
                .map_err(|_| WeightError::NotANumber(shown.clone()))?,
        };
        let mut hundredths: u64 = 0;
        for (i, b) in frac_trimmed.bytes().enumerate() {
            hundredths += u64::from(b - b'0') * if i == 0 { 10 } else { 1 };
        }
        let value = int_value * 100 + hundredths;
        if value == 0 {
            return Err(WeightError::Zero(shown));
        }
        if negative {
            return Err(WeightError::Negative(shown));
        }
        if value > u64::from(FULL) {
            return Err(WeightError::AboveFull(shown));
        }
        Ok(Weight(value as u32))
    }

    /// From a configuration number (JSON `10` or `2.5`), with the same rules as the CLI.
    pub fn from_percent_f64(value: f64) -> Result<Weight, WeightError> {
        if !value.is_finite() {
            return Err(WeightError::NotANumber(value.to_string()));
        }
        Self::parse_percent(&format_f64(value))
    }

    /// From the fraction Lambda reports in an alias's routing config, rounded to 0.01%.
    /// Lambda accepts any weight from 0.0 to 1.0, and each is what it says: a candidate at
    /// 0% or at 100% is still a candidate. `None` only for a value Lambda would not hold.
    pub fn from_fraction(fraction: f64) -> Option<Weight> {
        if !fraction.is_finite() || !(0.0..=1.0).contains(&fraction) {
            return None;
        }
        if fraction == 0.0 || fraction == 1.0 {
            return Some(Weight((fraction * f64::from(FULL)) as u32));
        }
        let n = (fraction * f64::from(FULL)).round() as u32;
        // A tiny but non-zero split still sends traffic: never round it away to 0 or 100.
        Some(Weight(n.clamp(1, FULL - 1)))
    }

    /// The fraction Lambda's `AdditionalVersionWeights` expects.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / f64::from(FULL)
    }

    /// Percent as a number, for JSON output.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// Percent for JSON: an integer when whole (`10`), else a decimal (`2.5`).
    pub fn percent_json(self) -> serde_json::Value {
        if self.0.is_multiple_of(100) {
            (self.0 / 100).into()
        } else {
            self.percent().into()
        }
    }

    pub fn is_full(self) -> bool {
        self.0 == FULL
    }

    /// Hundredths of a percent.
    pub fn hundredths(self) -> u32 {
        self.0
    }
}

fn format_f64(value: f64) -> String {
    // `{}` of f64 prints the shortest representation that round-trips, which is what the
    // author of the JSON file typed for any value with a few decimals.
    format!("{value}")
}

impl fmt::Display for Weight {
    /// `10%`, `2.5%`, `0.25%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / 100;
        let frac = self.0 % 100;
        if frac == 0 {
            write!(f, "{int}%")
        } else if frac.is_multiple_of(10) {
            write!(f, "{int}.{}%", frac / 10)
        } else {
            write!(f, "{int}.{frac:02}%")
        }
    }
}

impl std::str::FromStr for Weight {
    type Err = WeightError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Weight::parse_split(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_decimal_percentages() {
        assert_eq!(Weight::parse_split("10").unwrap().hundredths(), 1000);
        assert_eq!(Weight::parse_split("2.5").unwrap().hundredths(), 250);
        assert_eq!(Weight::parse_split("0.25").unwrap().hundredths(), 25);
        assert_eq!(Weight::parse_split("0.01").unwrap().hundredths(), 1);
        assert_eq!(Weight::parse_split("99.99").unwrap().hundredths(), 9999);
        assert_eq!(Weight::parse_split(" 10% ").unwrap().hundredths(), 1000);
        assert_eq!(Weight::parse_split("010").unwrap().hundredths(), 1000);
        assert_eq!(Weight::parse_split("12.50").unwrap().hundredths(), 1250);
        assert_eq!(Weight::parse_split("+5").unwrap().hundredths(), 500);
    }

    #[test]
    fn rejects_the_bad_inputs_of_the_issue_with_a_reason() {
        assert_eq!(Weight::parse_split("0"), Err(WeightError::Zero("0".into())));
        assert_eq!(
            Weight::parse_split("0.00"),
            Err(WeightError::Zero("0.00".into()))
        );
        assert_eq!(
            Weight::parse_split("100"),
            Err(WeightError::Full("100".into()))
        );
        assert_eq!(
            Weight::parse_split("100.5"),
            Err(WeightError::AboveFull("100.5".into()))
        );
        assert_eq!(
            Weight::parse_split("-3"),
            Err(WeightError::Negative("-3".into()))
        );
        assert_eq!(
            Weight::parse_split("abc"),
            Err(WeightError::NotANumber("abc".into()))
        );
        assert_eq!(
            Weight::parse_split("NaN"),
            Err(WeightError::NotANumber("NaN".into()))
        );
        assert_eq!(
            Weight::parse_split("inf"),
            Err(WeightError::NotANumber("inf".into()))
        );
        assert_eq!(
            Weight::parse_split(""),
            Err(WeightError::NotANumber("".into()))
        );
        assert_eq!(
            Weight::parse_split("1e1"),
            Err(WeightError::NotANumber("1e1".into()))
        );
        assert_eq!(
            Weight::parse_split("10."),
            Err(WeightError::NotANumber("10.".into()))
        );
        assert_eq!(
            Weight::parse_split(".5"),
            Err(WeightError::NotANumber(".5".into()))
        );
        assert_eq!(
            Weight::parse_split("1.2.3"),
            Err(WeightError::NotANumber("1.2.3".into()))
        );
        assert_eq!(
            Weight::parse_split("10.125"),
            Err(WeightError::TooPrecise("10.125".into()))
        );
        assert_eq!(
            Weight::parse_split("99999999999"),
            Err(WeightError::AboveFull("99999999999".into()))
        );
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let msg = Weight::parse_split("100").unwrap_err().to_string();
        assert!(msg.contains("promote complete"), "{msg}");
        let msg = Weight::parse_split("0").unwrap_err().to_string();
        assert!(msg.contains("promote rollback"), "{msg}");
        let msg = Weight::parse_split("abc").unwrap_err().to_string();
        assert!(msg.contains("`abc`") && msg.contains("percentage"), "{msg}");
    }

    #[test]
    fn percent_allows_full_for_plan_steps() {
        assert!(Weight::parse_percent("100").unwrap().is_full());
        assert!(Weight::from_percent_f64(100.0).unwrap().is_full());
        assert_eq!(Weight::from_percent_f64(12.5).unwrap().hundredths(), 1250);
        assert!(matches!(
            Weight::from_percent_f64(f64::NAN),
            Err(WeightError::NotANumber(_))
        ));
        assert!(matches!(
            Weight::from_percent_f64(0.001),
            Err(WeightError::TooPrecise(_))
        ));
        assert!(matches!(
            Weight::from_percent_f64(150.0),
            Err(WeightError::AboveFull(_))
        ));
    }

    #[test]
    fn fractions_are_the_exact_decimal_lambda_expects() {
        assert_eq!(Weight::parse_split("10").unwrap().fraction(), 0.1);
        assert_eq!(Weight::parse_split("50").unwrap().fraction(), 0.5);
        assert_eq!(Weight::parse_split("2.5").unwrap().fraction(), 0.025);
        assert_eq!(Weight::parse_split("0.01").unwrap().fraction(), 0.0001);
        assert_eq!(
            Weight::parse_split("10").unwrap().fraction().to_string(),
            "0.1"
        );
        assert_eq!(
            Weight::parse_split("33.33").unwrap().fraction().to_string(),
            "0.3333"
        );
    }

    #[test]
    fn fractions_read_back_round_to_the_nearest_hundredth_of_a_percent() {
        assert_eq!(Weight::from_fraction(0.1), Some(Weight(1000)));
        assert_eq!(Weight::from_fraction(0.10000001), Some(Weight(1000)));
        assert_eq!(Weight::from_fraction(0.333333), Some(Weight(3333)));
        assert_eq!(Weight::from_fraction(0.000001), Some(Weight(1)));
        assert_eq!(Weight::from_fraction(0.999999), Some(Weight(9999)));
        assert_eq!(Weight::from_fraction(0.0), Some(Weight::ZERO));
        assert_eq!(Weight::from_fraction(1.0), Some(Weight::FULL));
        assert_eq!(Weight::from_fraction(1.5), None);
        assert_eq!(Weight::from_fraction(f64::NAN), None);
        assert_eq!(Weight::from_fraction(-0.5), None);
    }

    #[test]
    fn displays_as_percent() {
        assert_eq!(Weight(1000).to_string(), "10%");
        assert_eq!(Weight(250).to_string(), "2.5%");
        assert_eq!(Weight(25).to_string(), "0.25%");
        assert_eq!(Weight(1).to_string(), "0.01%");
        assert_eq!(Weight::FULL.to_string(), "100%");
        assert_eq!(Weight(1250).percent(), 12.5);
        assert_eq!(Weight(1000).percent_json().to_string(), "10");
        assert_eq!(Weight(250).percent_json().to_string(), "2.5");
    }
}
