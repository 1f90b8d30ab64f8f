//! The birthday API's rules as pure functions over plain data: what a username is, what a
//! date of birth is, and what GET answers. No I/O; `routes` applies them to requests.
//! The decisions are argued in docs/birthday.md.
use chrono::{Datelike, NaiveDate};
use thiserror::Error;

/// The longest username accepted, in letters. DynamoDB would take 2048 bytes of key; 64 is
/// longer than any one name people write without spaces, and keeps a typo'd paste of a whole
/// sentence out of the table.
pub const MAX_USERNAME_LEN: usize = 64;

/// Why a username or a date of birth was refused; the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("username must not be empty; use letters A-Z or a-z")]
    EmptyUsername,
    #[error(
        "username {0:?} has a character that is not a letter; use only letters A-Z and a-z (no digits, spaces, accents or punctuation)"
    )]
    NotLetters(String),
    #[error("username is {0} letters long; at most {MAX_USERNAME_LEN} are allowed")]
    TooLong(usize),
    #[error("dateOfBirth {0:?} is not in the form YYYY-MM-DD (e.g. \"1990-07-15\")")]
    DateFormat(String),
    #[error("dateOfBirth {0:?} is not a real date (check the month's number of days)")]
    NotARealDate(String),
    #[error("dateOfBirth {date} is not before today ({today}, UTC); send a date in the past")]
    NotInThePast { date: NaiveDate, today: NaiveDate },
}

/// The DynamoDB key of a username: letters A-Z and a-z only (ASCII), 1 to
/// `MAX_USERNAME_LEN` of them, lower-cased, so `Nando` and `nando` are one user.
pub fn user_key(username: &str) -> Result<String, InputError> {
    if username.is_empty() {
        return Err(InputError::EmptyUsername);
    }
    if !username.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(InputError::NotLetters(username.to_owned()));
    }
    if username.len() > MAX_USERNAME_LEN {
        return Err(InputError::TooLong(username.len()));
    }
    Ok(username.to_ascii_lowercase())
}

/// `YYYY-MM-DD`, exactly: four digits, two, two, a real calendar date. chrono's `%m` and
/// `%d` would also take `1990-7-5`; the contract says two digits.
pub fn parse_date(text: &str) -> Result<NaiveDate, InputError> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(InputError::DateFormat(text.to_owned()));
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let year = number(0..4) as i32;
    NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
        .ok_or_else(|| InputError::NotARealDate(text.to_owned()))
}

/// A date of birth as PUT sends it: `YYYY-MM-DD`, a real date, strictly before `today`.
pub fn date_of_birth(text: &str, today: NaiveDate) -> Result<NaiveDate, InputError> {
    let date = parse_date(text)?;
    if date >= today {
        return Err(InputError::NotInThePast { date, today });
    }
    Ok(date)
}

/// The birthday in `year`. Someone born on 29 February celebrates on 28 February in a year
/// without one: the last day of their month, and never a day after the age changes in most
/// places that publish a rule.
pub fn birthday_in(born: NaiveDate, year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, born.month(), born.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .expect("28 February exists in every year chrono represents")
}

/// Days from `today` to the next birthday; 0 when it is today.
pub fn days_until_birthday(born: NaiveDate, today: NaiveDate) -> i64 {
    let this_year = birthday_in(born, today.year());
    let next = if this_year >= today {
        this_year
    } else {
        birthday_in(born, today.year() + 1)
    };
    (next - today).num_days()
}

/// GET's message, in the contract's words. `username` is written as the request wrote it.
pub fn greeting(username: &str, born: NaiveDate, today: NaiveDate) -> String {
    match days_until_birthday(born, today) {
        0 => format!("Hello, {username}! Happy birthday!"),
        // "day(s)" is the contract's text, verbatim: one pattern matches every answer.
        n => format!("Hello, {username}! Your birthday is in {n} day(s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn letters_are_ascii_letters_only() {
        assert_eq!(user_key("Nando").unwrap(), "nando");
        assert_eq!(user_key("abcXYZ").unwrap(), "abcxyz");
        for bad in [
            "nando1",
            "na ndo",
            "na-ndo",
            "Nandé",
            "Ναντο",
            "nando\n",
            "o'neil",
        ] {
            assert_eq!(
                user_key(bad),
                Err(InputError::NotLetters(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(user_key(""), Err(InputError::EmptyUsername));
    }

    #[test]
    fn the_longest_name_is_64_letters() {
        let longest = "a".repeat(MAX_USERNAME_LEN);
        assert_eq!(user_key(&longest).unwrap(), longest);
        let too_long = "a".repeat(MAX_USERNAME_LEN + 1);
        assert_eq!(user_key(&too_long), Err(InputError::TooLong(65)));
        assert!(InputError::TooLong(65).to_string().contains("at most 64"));
    }

    #[test]
    fn nando_and_nando_are_one_user() {
        assert_eq!(user_key("Nando"), user_key("nando"));
        assert_eq!(user_key("NANDO"), user_key("nando"));
    }

    #[test]
    fn dates_are_yyyy_mm_dd_and_real() {
        assert_eq!(
            d("1990-07-15"),
            NaiveDate::from_ymd_opt(1990, 7, 15).unwrap()
        );
        for bad in [
            "1990-7-15",
            "90-07-15",
            "1990/07/15",
            "1990-07-15T00:00:00Z",
            "",
            "abcd-ef-gh",
            "+990-07-15",
        ] {
            assert_eq!(
                parse_date(bad),
                Err(InputError::DateFormat(bad.to_owned())),
                "{bad:?}"
            );
        }
        for unreal in [
            "2023-02-30",
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
        ] {
            assert_eq!(
                parse_date(unreal),
                Err(InputError::NotARealDate(unreal.to_owned()))
            );
        }
        assert!(parse_date("2024-02-29").is_ok(), "2024 is a leap year");
    }

    #[test]
    fn a_date_of_birth_is_strictly_before_today() {
        let today = d("2026-12-06");
        assert_eq!(date_of_birth("2026-12-05", today), Ok(d("2026-12-05")));
        for not_past in ["2026-12-06", "2026-12-07", "2999-01-01"] {
            assert!(
                matches!(
                    date_of_birth(not_past, today),
                    Err(InputError::NotInThePast { .. })
                ),
                "{not_past}"
            );
        }
    }

    #[test]
    fn days_count_to_this_years_birthday_or_next_years() {
        let born = d("1990-12-25");
        assert_eq!(days_until_birthday(born, d("2026-12-24")), 1);
        assert_eq!(days_until_birthday(born, d("2026-12-25")), 0);
        assert_eq!(days_until_birthday(born, d("2026-12-26")), 364);
        // Across a leap day: 2027-12-26 -> 2028-12-25 is 365 days.
        assert_eq!(days_until_birthday(born, d("2027-12-26")), 365);
        assert_eq!(days_until_birthday(d("1990-01-01"), d("2026-12-31")), 1);
    }

    #[test]
    fn the_29th_of_february_is_celebrated_on_the_28th_in_other_years() {
        let born = d("2000-02-29");
        assert_eq!(birthday_in(born, 2027), d("2027-02-28"));
        assert_eq!(birthday_in(born, 2028), d("2028-02-29"));
        assert_eq!(days_until_birthday(born, d("2027-02-28")), 0);
        assert_eq!(days_until_birthday(born, d("2027-02-27")), 1);
        // The day after, the next one is 29 February 2028.
        assert_eq!(days_until_birthday(born, d("2027-03-01")), 365);
        assert_eq!(days_until_birthday(born, d("2028-02-28")), 1);
        assert_eq!(days_until_birthday(born, d("2028-02-29")), 0);
    }

    #[test]
    fn the_greeting_is_the_contracts_text() {
        let born = d("1990-12-25");
        assert_eq!(
            greeting("Nando", born, d("2026-12-25")),
            "Hello, Nando! Happy birthday!"
        );
        assert_eq!(
            greeting("Nando", born, d("2026-12-20")),
            "Hello, Nando! Your birthday is in 5 day(s)"
        );
        assert_eq!(
            greeting("nando", born, d("2026-12-24")),
            "Hello, nando! Your birthday is in 1 day(s)"
        );
    }
}
