//! The commands that change no alias: `status` and `watch`, `probe`, `publish` (a new
//! version, never a stage's traffic) and `check` (the environments directory).

pub mod check;
pub mod probe;
pub mod publish;
pub mod status;
