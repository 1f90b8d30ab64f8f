use app::serve::{RUNTIME_API_VAR, local_addr, run_lambda, serve_local};
use std::process::ExitCode;

fn main() -> ExitCode {
    app::logging::init();
    // One thread: Lambda hands the process one event at a time, and the local server is for
    // development. It starts faster and keeps RSS lower than the multi-thread scheduler.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("app: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Referencing the stamp keeps it in the binary for `promote publish` (see build_info).
    let stamp = app::build_info::stamp();

    if std::env::var_os(RUNTIME_API_VAR).is_some() {
        tracing::debug!(stamp, "starting under the Lambda runtime");
        return match runtime.block_on(run_lambda()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("app: Lambda runtime error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let addr = match local_addr(std::env::var("PORT").ok().as_deref()) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("app: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::debug!(
        stamp,
        "starting the local HTTP server ({RUNTIME_API_VAR} is not set)"
    );
    match runtime.block_on(serve_local(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("app: cannot serve on http://{addr}: {e} (set PORT to use another port)");
            ExitCode::FAILURE
        }
    }
}
