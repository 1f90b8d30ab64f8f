//! `promote`: moves published Lambda versions along the path to live.

mod aws;
#[cfg(test)]
mod aws_tests;
mod cli;
mod commands;
mod exit;
#[cfg(test)]
mod fake;
mod interrupt;
mod publish;
mod run;
mod status;
#[cfg(test)]
mod tests;
mod ui;

use std::process::ExitCode;

use clap::Parser;
use rollout::Environments;

use crate::cli::{Cli, Command};
use crate::commands::{AdvanceOpts, CanaryOpts, Ctx, DeployOpts};
use crate::interrupt::Interrupt;
use crate::ui::Ui;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let ui = Ui::new(cli.output);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli, &ui));
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
            ui.event(serde_json::json!({"event": "error", "exit_code": code, "message": format!("{err:#}")}));
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli, ui: &Ui) -> anyhow::Result<()> {
    // Everything that can be checked without AWS is checked before connecting.
    let env = Environments::load(&cli.environments)?;
    let interrupt = Interrupt::install();
    let cloud = aws::Aws::connect(&env.project).await;
    let ctx = Ctx {
        cloud: &cloud,
        env: &env,
        ui,
        interrupt: &interrupt,
    };
    match cli.command {
        Command::Status(a) => {
            if let Some(s) = &a.stage {
                env.stage(s)?;
            }
            status::status(&ctx, a.stage.as_deref()).await
        }
        Command::Publish(a) => publish::publish(&ctx, &a.zip, a.dry_run).await,
        Command::Deploy(a) => {
            env.stage(&a.stage.stage)?;
            commands::deploy(
                &ctx,
                DeployOpts {
                    stage: a.stage.stage,
                    version: a.version,
                    allow_downgrade: a.allow_downgrade,
                    bake: a.bake,
                    poll: a.poll,
                    dry_run: a.stage.dry_run,
                },
            )
            .await
        }
        Command::Canary(a) => {
            env.stage(&a.stage.stage)?;
            commands::canary(
                &ctx,
                CanaryOpts {
                    stage: a.stage.stage,
                    version: a.version,
                    weight: a.weight,
                    bake: a.bake,
                    poll: a.poll,
                    allow_downgrade: a.allow_downgrade,
                    dry_run: a.stage.dry_run,
                },
            )
            .await
        }
        Command::Advance(a) => {
            env.stage(&a.stage.stage)?;
            let opts = AdvanceOpts {
                stage: a.stage.stage,
                weight: a.weight,
                bake: a.bake,
                poll: a.poll,
                dry_run: a.stage.dry_run,
            };
            commands::advance(&ctx, opts).await
        }
        Command::Complete(a) => {
            env.stage(&a.stage)?;
            commands::complete(&ctx, &a.stage, a.dry_run).await
        }
        Command::Rollback(a) => {
            env.stage(&a.stage.stage)?;
            commands::rollback(&ctx, &a.stage.stage, a.to_previous, a.stage.dry_run).await
        }
        Command::Watch(a) => {
            env.stage(&a.stage)?;
            status::watch(&ctx, &a.stage, a.interval).await
        }
    }
}
