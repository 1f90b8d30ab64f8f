//! The part of CloudWatch metric math the stages' alarms use, evaluated one period at a time:
//! numbers, query ids, `+ - * /`, parentheses and `FILL(expr, value)`
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html>).
//! A period where a query has no datapoint leaves the result missing unless `FILL` supplies
//! one, and a division by zero is missing too, as CloudWatch drops such points; missing data
//! is then what the alarm's `TreatMissingData` says. Anything else is refused when the alarm
//! is read, so an alarm this cannot evaluate is left to moto's state rather than guessed at.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Id(String),
    Fill(Box<Expr>, f64),
    Binary(Box<Expr>, char, Box<Expr>),
    Negate(Box<Expr>),
}

impl Expr {
    /// The ids of the queries the expression reads.
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Expr::Number(_) => Vec::new(),
            Expr::Id(id) => vec![id.as_str()],
            Expr::Fill(e, _) | Expr::Negate(e) => e.ids(),
            Expr::Binary(a, _, b) => {
                let mut ids = a.ids();
                ids.extend(b.ids());
                ids
            }
        }
    }

    /// The value for one period, given each query's value there (`None`: no datapoint).
    pub fn eval(&self, values: &BTreeMap<String, Option<f64>>) -> Option<f64> {
        match self {
            Expr::Number(n) => Some(*n),
            Expr::Id(id) => values.get(id).copied().flatten(),
            Expr::Fill(e, with) => Some(e.eval(values).unwrap_or(*with)),
            Expr::Negate(e) => e.eval(values).map(|v| -v),
            Expr::Binary(a, op, b) => {
                let (a, b) = (a.eval(values)?, b.eval(values)?);
                let v = match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => a / b,
                };
                v.is_finite().then_some(v)
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.text[self.at..].starts_with(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.text[self.at..].chars().next()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            Ok(())
        } else {
            Err(format!("expected `{c}` at offset {}", self.at))
        }
    }

    /// sum := product (('+' | '-') product)*
    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.at += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    /// product := unary (('*' | '/') unary)*
    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.at += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some('-') {
            self.at += 1;
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn word(&mut self) -> &str {
        let start = self.at;
        while self.text[self.at..]
            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let e = self.sum()?;
                self.expect(')')?;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let w = self.word();
                w.parse()
                    .map(Expr::Number)
                    .map_err(|_| format!("`{w}` is not a number"))
            }
            Some(c) if c.is_ascii_lowercase() => Ok(Expr::Id(self.word().to_string())),
            Some(c) if c.is_ascii_uppercase() => {
                let name = self.word().to_string();
                if name != "FILL" {
                    return Err(format!("function {name} is not supported (only FILL)"));
                }
                self.expect('(')?;
                let e = self.sum()?;
                self.expect(',')?;
                let negative = self.peek() == Some('-');
                if negative {
                    self.at += 1;
                    self.skip_spaces();
                }
                let with: f64 = self
                    .word()
                    .parse()
                    .map_err(|_| "FILL's second argument must be a number".to_string())?;
                let with = if negative { -with } else { with };
                self.expect(')')?;
                Ok(Expr::Fill(Box::new(e), with))
            }
            other => Err(format!("unexpected {other:?} at offset {}", self.at)),
        }
    }
}

/// Parses an expression, or says what in it is not supported.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser { text, at: 0 };
    let e = p.sum()?;
    if p.peek().is_some() {
        return Err(format!(
            "unexpected text at offset {}: {}",
            p.at,
            &text[p.at..]
        ));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// The stages' throttle-rate expression (terraform/environments.tf, local.alarm_math).
    const RATE: &str = "FILL(throttles, 0) / (FILL(throttles, 0) + FILL(invocations, 0))";

    #[test]
    fn the_throttle_rate_is_throttles_over_every_request() {
        let e = parse(RATE).unwrap();
        assert_eq!(e.ids(), ["throttles", "throttles", "invocations"]);
        let rate = |t, i| e.eval(&at(&[("throttles", t), ("invocations", i)]));
        assert_eq!(rate(Some(5.0), Some(95.0)), Some(0.05));
        // Everything throttled: no Invocations datapoint at all, and the rate is 1.
        assert_eq!(rate(Some(8.0), None), Some(1.0));
        // Traffic and no Throttles datapoint: nothing was throttled.
        assert_eq!(rate(None, Some(40.0)), Some(0.0));
        // No traffic: 0 / 0 is no datapoint (missing data), not a rate.
        assert_eq!(rate(None, None), None);
    }

    #[test]
    fn precedence_parentheses_and_missing_values() {
        let v = at(&[("a", Some(6.0)), ("b", Some(2.0)), ("c", None)]);
        assert_eq!(parse("a + b * 2").unwrap().eval(&v), Some(10.0));
        assert_eq!(parse("(a + b) * 2").unwrap().eval(&v), Some(16.0));
        assert_eq!(parse("a - b - 1").unwrap().eval(&v), Some(3.0));
        assert_eq!(parse("-a / b").unwrap().eval(&v), Some(-3.0));
        assert_eq!(parse("a + c").unwrap().eval(&v), None);
        assert_eq!(parse("FILL(c, -1) * 100").unwrap().eval(&v), Some(-100.0));
        assert_eq!(parse("a / (b - 2)").unwrap().eval(&v), None);
    }

    #[test]
    fn what_is_not_supported_is_refused_with_why() {
        assert!(parse("METRICS()").unwrap_err().contains("only FILL"));
        assert!(parse("a +").is_err());
        assert!(parse("(a + b").unwrap_err().contains("expected `)`"));
        assert!(
            parse("FILL(a, b)")
                .unwrap_err()
                .contains("must be a number")
        );
        assert!(parse("a b").unwrap_err().contains("unexpected text"));
    }
}
