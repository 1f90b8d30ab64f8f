//! The Python tools the project's scripts install into `.venv` (moto_server, cargo-lambda,
//! the seed script's interpreter). Tests fail, never skip, when one is missing: CI runs them
//! through `make test`, which creates `.venv` and puts it first on PATH.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// `name` from PATH, else from the workspace's `.venv/bin`; panics saying how to get it.
pub fn venv_tool(name: &str) -> PathBuf {
    on_path(name)
        .or_else(|| Some(workspace_root().join(".venv/bin").join(name)).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH nor in .venv/bin. Run the tests with `make test` (which \
                 creates .venv and puts .venv/bin first on PATH), or run `tools/venv.sh` and \
                 `export PATH=\"$PWD/.venv/bin:$PATH\"` before `cargo test`."
            )
        })
}

/// The `.venv` interpreter (it has the seed script's packages), else python3 from PATH.
pub fn python() -> PathBuf {
    let venv = workspace_root().join(".venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    on_path("python3").unwrap_or_else(|| venv_tool("python"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Removes every AWS_* variable of the caller's: a service-specific AWS_ENDPOINT_URL_LAMBDA or
/// a profile could point a child away from the emulator (or break moto itself).
pub fn scrub_aws_env(cmd: &mut Command) {
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&var);
        }
    }
}
