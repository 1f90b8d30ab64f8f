//! `promote`: moves published Lambda versions along the path to live.
//!
//! The binary (`main.rs`) parses the command line and maps errors to exit codes; everything
//! else lives here so that integration tests can drive the in-memory stand-in ([`fake`]).

#![allow(async_fn_in_trait)] // the traits are ours, used on one runtime; Send bounds are not needed

pub mod aws;
#[cfg(test)]
mod aws_tests;
#[cfg(test)]
mod bake_tests;
pub mod cd_engine;
pub mod cli;
pub mod codedeploy;
pub mod commands;
pub mod evidence;
pub mod exit;
#[doc(hidden)]
pub mod fake;
pub mod interrupt;
pub mod metrics;
pub mod probe;
pub mod probe_invoke;
pub mod probe_source;
pub mod publish;
#[cfg(test)]
mod race_tests;
pub mod run;
pub mod status;
#[cfg(test)]
mod tests;
pub mod ui;
pub mod upstream;

use rollout::Environments;

use crate::cli::{Cli, Command};
use crate::commands::{AdvanceOpts, CanaryOpts, Ctx, DeployOpts};
use crate::interrupt::Interrupt;
use crate::ui::Ui;

/// Runs one parsed command line against AWS.
pub async fn run(cli: Cli, ui: &Ui) -> anyhow::Result<()> {
    // A probe of a URL alone needs neither AWS nor the environments.
    if let Command::Probe(a) = &cli.command
        && a.stage.is_none()
    {
        return probe::probe_url(ui, &Interrupt::install(), probe_opts(a)).await;
    }
    // Everything that can be checked without AWS is checked before connecting.
    let mut env = Environments::load(&cli.environments)?;
    judge_relative_override(&mut env, &cli.command)?;
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
                    retry: a.retry,
                    skip_upstream: a.skip_upstream.then(|| a.reason.unwrap_or_default()),
                    bake: a.bake,
                    poll: a.poll,
                    dry_run: a.stage.dry_run,
                    evidence: evidence_opts(a.evidence),
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
                    retry: a.retry,
                    skip_upstream: a.skip_upstream.then(|| a.reason.unwrap_or_default()),
                    dry_run: a.stage.dry_run,
                    evidence: evidence_opts(a.evidence),
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
                evidence: evidence_opts(a.evidence),
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
        Command::Probe(a) => {
            if let Some(s) = &a.stage {
                env.stage(s)?;
            }
            probe::probe(&ctx, probe_opts(&a)).await
        }
    }
}

fn probe_opts(a: &cli::ProbeArgs) -> probe::ProbeOpts {
    probe::ProbeOpts {
        stage: a.stage.clone(),
        url: a.url.clone(),
        rate: a.rate,
        duration: a.duration,
        path: a.path.clone(),
        timeout: a.timeout,
        plot: a.plot.clone(),
        invoke: a.invoke,
    }
}

fn evidence_opts(a: cli::EvidenceArgs) -> commands::EvidenceOpts {
    commands::EvidenceOpts {
        probe: run::ProbeFlags {
            probe: a.probe,
            invoke: a.probe_invoke,
            rate: a.probe_rate,
            url: a.probe_url,
        },
    }
}

/// `--judge-relative` is the stage's `analysis.judge_relative` for this run; like it, it
/// needs the metrics source, which then judges the candidate an alarm would have refused.
fn judge_relative_override(env: &mut Environments, command: &Command) -> anyhow::Result<()> {
    let stage = match command {
        Command::Deploy(a) if a.judge_relative => a.stage.stage.clone(),
        Command::Canary(a) if a.judge_relative => a.stage.stage.clone(),
        _ => return Ok(()),
    };
    env.stage(&stage)?;
    let Some(s) = env.stages.iter_mut().find(|s| s.name == stage) else {
        return Ok(());
    };
    if !s.analysis.uses(rollout::SourceKind::Metrics) {
        return Err(exit::Exit::BadInput(format!(
            "--judge-relative needs the \"metrics\" evidence source, which stage {stage} does not use; add it to analysis.sources in {}",
            s.path.display()
        ))
        .into());
    }
    s.analysis.judge_relative = true;
    Ok(())
}
