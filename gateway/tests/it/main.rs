//! The gateway's integration tests, one binary (each module was once a binary of its own,
//! each linking the AWS SDK again). `cargo test -p gateway --test it <module>::` runs one area.
//!
//! Every test starts its own `moto_server` (the shared `testkit` harness), publishes real
//! `app` zips with the real `promote`, and runs the `gateway` binary in front of it all.

mod support;

mod birthday;
mod canary;
mod faults;
mod guardian;
mod judge;
mod objects;
mod probe;
mod rollback_time;
mod s3_events;
mod serve;
mod throttles;
mod zero_downtime;
