//! Pure rollout decisions and the `environments/` model. No I/O beyond reading config files.
