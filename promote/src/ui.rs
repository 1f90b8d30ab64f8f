//! What the operator sees.
//!
//! - stdout carries results: the table (or the version number for `publish`), or with
//!   `--output json` one JSON object per line (events, then the result last).
//! - stderr carries narration and progress: on a terminal a single line redrawn in place,
//!   otherwise plain lines, printed when something changes (and every 30 s while waiting).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub struct Ui {
    pub format: Format,
    tty: bool,
    state: RefCell<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// A progress line is on screen and must be cleared before anything else is printed.
    drawn: bool,
    last_key: String,
    last_plain: Option<Instant>,
}

const PLAIN_EVERY: Duration = Duration::from_secs(30);

impl Ui {
    pub fn new(format: Format) -> Ui {
        Ui {
            format,
            tty: std::io::stderr().is_terminal(),
            state: RefCell::default(),
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn clear_progress(&self, err: &mut impl Write) {
        let mut st = self.state.borrow_mut();
        if st.drawn {
            let _ = write!(err, "\r\x1b[2K");
            st.drawn = false;
        }
    }

    /// A line of narration for people (stderr).
    pub fn say(&self, msg: impl AsRef<str>) {
        let mut err = std::io::stderr().lock();
        self.clear_progress(&mut err);
        let _ = writeln!(err, "{}", msg.as_ref());
    }

    /// A machine event: one JSON line on stdout with `--output json`, nothing otherwise.
    pub fn event(&self, value: Value) {
        if self.json() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    /// The result of a command: `text` on stdout for tables, `value` as a JSON line otherwise.
    pub fn result(&self, text: impl AsRef<str>, value: Value) {
        if self.json() {
            self.event(value);
        } else {
            let mut err = std::io::stderr().lock();
            self.clear_progress(&mut err);
            drop(err);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", text.as_ref());
            let _ = out.flush();
        }
    }

    /// Progress of a wait. `key` is what matters (step, alarm states): a plain-line log
    /// repeats only when it changes or every 30 s; a terminal redraws every call.
    pub fn progress(&self, key: &str, line: &str) {
        let mut err = std::io::stderr().lock();
        let mut st = self.state.borrow_mut();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            st.drawn = true;
            return;
        }
        let due = st.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
        if key != st.last_key || due {
            let _ = writeln!(err, "{line}");
            st.last_key = key.to_string();
            st.last_plain = Some(Instant::now());
        }
    }

    /// Ends a progress display (the next output starts on a clean line).
    pub fn end_progress(&self) {
        let mut err = std::io::stderr().lock();
        self.clear_progress(&mut err);
        let mut st = self.state.borrow_mut();
        st.last_key.clear();
        st.last_plain = None;
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }
}
