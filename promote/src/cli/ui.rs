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

use crate::cli::events::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub struct Ui {
    pub format: Format,
    tty: bool,
    /// In a release of several functions, the function this Ui speaks for: every event it
    /// prints carries `"function"`.
    function: Option<String>,
    state: RefCell<ProgressState>,
    /// Tests read what would have been printed: (stdout, stderr).
    #[cfg(any(test, feature = "testing"))]
    captured: Option<RefCell<(String, String)>>,
}

#[derive(Default)]
struct ProgressState {
    /// A progress line is on screen and must be cleared before anything else is printed.
    drawn: bool,
    last_key: String,
    last_plain: Option<Instant>,
}

const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// The version of the `--output json` event schema. Raise it when a field changes meaning
/// or goes away; adding fields or events does not.
pub const EVENT_SCHEMA_VERSION: u64 = 1;

/// The event with its schema version; an event without an `"event"` field is a bug, said
/// loudly in tests and named `unknown` otherwise.
pub fn stamp(value: Value) -> Value {
    let mut obj = match value {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), other);
            m
        }
    };
    debug_assert!(obj.contains_key("event"), "event without a name: {obj:?}");
    obj.entry("event").or_insert_with(|| "unknown".into());
    obj.insert("v".into(), EVENT_SCHEMA_VERSION.into());
    Value::Object(obj)
}

impl Ui {
    pub fn new(format: Format) -> Ui {
        Ui {
            format,
            tty: std::io::stderr().is_terminal(),
            function: None,
            state: RefCell::default(),
            #[cfg(any(test, feature = "testing"))]
            captured: None,
        }
    }

    /// Output kept in memory, as printed without a terminal.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn capture(format: Format) -> Ui {
        Ui {
            format,
            tty: false,
            function: None,
            state: RefCell::default(),
            captured: Some(RefCell::default()),
        }
    }

    /// What a captured Ui printed: (stdout, stderr).
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn output(&self) -> (String, String) {
        self.captured
            .as_ref()
            .map(|c| c.borrow().clone())
            .unwrap_or_default()
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    fn out(&self, text: &str) {
        #[cfg(any(test, feature = "testing"))]
        if let Some(c) = &self.captured {
            c.borrow_mut().0.push_str(text);
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn err(&self, text: &str) {
        #[cfg(any(test, feature = "testing"))]
        if let Some(c) = &self.captured {
            c.borrow_mut().1.push_str(text);
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    fn clear_progress(&self) {
        let drawn = std::mem::take(&mut self.state.borrow_mut().drawn);
        if drawn {
            self.err("\r\x1b[2K");
        }
    }

    /// A line of narration for people (stderr).
    pub fn say(&self, msg: impl AsRef<str>) {
        self.clear_progress();
        self.err(&format!("{}\n", msg.as_ref()));
    }

    /// A machine event: one JSON line on stdout with `--output json`, nothing otherwise.
    /// Every line carries the schema version (`"v"`) beside its `"event"` (CONTRACTS.md,
    /// "JSON event stream").
    pub fn event(&self, value: Value) {
        if self.json() {
            let mut value = stamp(value);
            if let (Some(f), Value::Object(m)) = (&self.function, &mut value) {
                m.insert("function".into(), f.clone().into());
            }
            self.out(&format!("{value}\n"));
        }
    }

    /// The same output, its events naming `function` (a release of several functions: one
    /// Ui per function). Progress is drawn per function.
    pub fn for_function(&self, function: &str) -> Ui {
        Ui {
            format: self.format,
            tty: self.tty,
            function: Some(function.to_string()),
            state: RefCell::default(),
            #[cfg(any(test, feature = "testing"))]
            captured: None,
        }
    }

    /// A typed event (events.rs): one JSON line on stdout with `--output json`.
    pub fn emit<E: Event>(&self, event: &E) {
        if self.json() {
            self.event(event.to_value());
        }
    }

    /// The result of a command: `text` on stdout for tables, `event` as a JSON line otherwise.
    pub fn emit_result<E: Event>(&self, text: impl AsRef<str>, event: &E) {
        if self.json() {
            self.emit(event);
        } else {
            self.clear_progress();
            self.out(&format!("{}\n", text.as_ref()));
        }
    }

    /// Text only: a table or a line on stdout, nothing with `--output json`.
    pub fn text(&self, text: impl AsRef<str>) {
        if !self.json() {
            self.clear_progress();
            self.out(&format!("{}\n", text.as_ref()));
        }
    }

    /// The result of a command: `text` on stdout for tables, `value` as a JSON line otherwise.
    pub fn result(&self, text: impl AsRef<str>, value: Value) {
        if self.json() {
            self.event(value);
        } else {
            self.clear_progress();
            self.out(&format!("{}\n", text.as_ref()));
        }
    }

    /// Raw text on stdout (screen control for `watch`).
    pub fn raw(&self, text: &str) {
        self.out(text);
    }

    /// Progress of a wait. `key` is what matters (step, alarm states): a plain-line log
    /// repeats only when it changes or every 30 s; a terminal redraws every call.
    pub fn progress(&self, key: &str, line: &str) {
        if self.tty {
            self.err(&format!("\r\x1b[2K{line}"));
            self.state.borrow_mut().drawn = true;
            return;
        }
        let print = {
            let mut st = self.state.borrow_mut();
            let due = st.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
            if key != st.last_key || due {
                st.last_key = key.to_string();
                st.last_plain = Some(Instant::now());
                true
            } else {
                false
            }
        };
        if print {
            self.err(&format!("{line}\n"));
        }
    }

    /// Ends a progress display (the next output starts on a clean line).
    pub fn end_progress(&self) {
        self.clear_progress();
        let mut st = self.state.borrow_mut();
        st.last_key.clear();
        st.last_plain = None;
    }
}
