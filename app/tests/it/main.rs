//! The app's integration tests, one binary: each module was once a binary of its own.
//! `cargo test -p app --test it <module>::` runs one area.

mod common;

mod events;
mod git_build_info;
mod lambda_emulator;
mod local_server;
mod no_git_build;
