//! promote's integration tests, one binary: each module was once a binary of its own, and each
//! linked the AWS SDK again. `cargo test -p promote --test it <module>::` runs one area.
//!
//! Every test starts its own `moto_server` (through the shared `testkit` harness) and runs the
//! built `promote` binary against it; `support` is what they share.

mod support;

mod bad_input;
mod canary;
mod codedeploy;
mod deploy;
mod faults;
mod fixture;
mod guards;
mod judge;
mod manual;
mod publish;
mod release;
mod status;
