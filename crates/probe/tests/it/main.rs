//! The probe's integration tests, one binary (one module per area).

mod over_http;
mod plot_renders;
