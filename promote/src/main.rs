//! `promote`: moves published Lambda versions along the path to live.

use std::process::ExitCode;

use clap::Parser;
use promote::cli::Cli;
use promote::cli::events::Event;
use promote::cli::exit;
use promote::cli::ui::Ui;

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "promote=info,warn",
        2 => "promote=debug,rollout=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .init();
}

/// Whether the raw command line asks for JSON, for the usage errors clap reports before
/// anything is parsed: a pipeline reading the event stream gets an `error` event then too.
fn wants_json(args: &[String]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let args: Vec<String> = std::env::args().collect();
            if code != 0 && wants_json(&args) {
                let event = promote::cli::events::Error {
                    exit_code: code,
                    message: e.kind().to_string(),
                    detail: Some(e.render().to_string().trim().to_string()),
                };
                println!("{}", promote::cli::ui::stamp(event.to_value()));
            }
            e.exit();
        }
    };
    init_tracing(cli.verbose);
    let ui = Ui::new(cli.output);
    // One thread does all of promote's waiting. With worker threads, `block_on` runs the
    // command on this thread while the workers drive the sockets, and every hand-over (each
    // probe answer, each SDK response) costs a futex wake-up between threads: measured with
    // bench/probe.sh, that was where the probe spent more CPU per request than oha.
    // Nothing here blocks a thread (no spawn_blocking, no blocking I/O in a task).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(promote::run(cli, &ui));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::code_of(&err);
            ui.end_progress();
            if code == exit::BAD_INPUT || code == exit::ERROR {
                eprintln!("error: {err:#}");
            } else {
                eprintln!("{err:#}");
            }
            ui.emit(&promote::cli::events::Error {
                exit_code: code,
                message: format!("{err:#}"),
                detail: None,
            });
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
