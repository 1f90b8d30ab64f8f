//! `promote`: moves published Lambda versions along the path to live.
//!
//! The binary (`main.rs`) parses the command line and maps errors to exit codes; everything
//! else lives here so that integration tests can drive the in-memory stand-in ([`cloud::fake`]).

#![allow(async_fn_in_trait)] // the traits are ours, used on one runtime; Send bounds are not needed

// The layers, from the outside in (docs/promote.md, "How the code is laid out"):
// the command line and what it prints; the reconciler that observes, decides (in `rollout`)
// and applies; the evidence sources that read for a bake; the read-only commands; and the
// cloud adapters under all of them.
pub mod cli;
pub mod cloud;
pub mod ctx;
pub mod evidence;
pub mod read;
pub mod reconcile;

#[cfg(test)]
mod bake_tests;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod tests;

use crate::cli::exit;
use crate::cloud::aws;
use crate::read::{check, probe, publish, status};
use crate::reconcile::{commands, run};
use rollout::Environments;
use rollout::machine::Intent;

use crate::cli::interrupt::Interrupt;
use crate::cli::ui::Ui;
use crate::cli::{Cli, Command};
use crate::ctx::Ctx;
use crate::reconcile::commands::ExecOpts;

/// Runs one parsed command line against AWS.
pub async fn run(cli: Cli, ui: &Ui) -> anyhow::Result<()> {
    // A probe of a URL alone needs neither AWS nor the environments.
    if let Command::Probe(a) = &cli.command
        && a.stage.is_none()
    {
        return probe::probe_url(ui, &Interrupt::install(), probe_opts(a)).await;
    }
    if let Command::Check = &cli.command {
        return check::check(ui, &cli.environments);
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
        function: &env.project.main_function().name,
    };
    match cli.command {
        Command::Status(a) => {
            if let Some(s) = &a.stage {
                env.stage(s)?;
            }
            if env.project.functions.len() == 1 {
                return status::status(&ctx, a.stage.as_deref()).await;
            }
            status_of_every_function(&ctx, a.stage.as_deref()).await
        }
        Command::Publish(a) => publish_zips(&ctx, &a.zip, a.dry_run).await,
        // The parsed command is the intent; its flags are the run's overrides.
        Command::Deploy(a) => {
            env.stage(&a.stage.stage)?;
            let intent = Intent::Deploy {
                version: a.version,
                allow_downgrade: a.guards.allow_downgrade,
                retry: a.guards.retry,
            };
            let mut opts = exec_opts(&a.stage, a.bake, a.evidence);
            opts.skip_upstream = a.guards.skip_upstream();
            mutate(&ctx, &a.stage.stage, intent, opts, &a.guards.release).await
        }
        Command::Canary(a) => {
            env.stage(&a.stage.stage)?;
            let intent = Intent::Canary {
                version: a.version,
                weight: a.weight,
                allow_downgrade: a.guards.allow_downgrade,
                retry: a.guards.retry,
            };
            let mut opts = exec_opts(&a.stage, a.bake, a.evidence);
            opts.skip_upstream = a.guards.skip_upstream();
            mutate(&ctx, &a.stage.stage, intent, opts, &a.guards.release).await
        }
        Command::Advance(a) => {
            env.stage(&a.stage.stage)?;
            let intent = Intent::Advance { weight: a.weight };
            let opts = exec_opts(&a.stage, a.bake, a.evidence);
            mutate(&ctx, &a.stage.stage, intent, opts, &[]).await
        }
        Command::Complete(a) => {
            env.stage(&a.stage)?;
            let opts = exec_opts(&a, cli::BakeArgs::default(), cli::EvidenceArgs::default());
            mutate(&ctx, &a.stage, Intent::Complete, opts, &[]).await
        }
        Command::Rollback(a) => {
            env.stage(&a.stage.stage)?;
            let intent = Intent::Rollback {
                to_previous: a.to_previous,
            };
            let opts = exec_opts(
                &a.stage,
                cli::BakeArgs::default(),
                cli::EvidenceArgs::default(),
            );
            mutate(&ctx, &a.stage.stage, intent, opts, &[]).await
        }
        Command::Watch(a) => {
            env.stage(&a.stage)?;
            // Every function of the release, each over its own connection; on a project of
            // one function, its events carry no `function`.
            let several = env.project.functions.len() > 1;
            let (clouds, uis) = per_function(&cloud, ui, &env.project);
            let watched: Vec<status::Watched<'_, aws::Aws>> = env
                .project
                .functions
                .iter()
                .zip(clouds.iter().zip(&uis))
                .map(|(f, (cloud, fui))| status::Watched {
                    function: &f.name,
                    cloud,
                    ui: if several { fui } else { ui },
                })
                .collect();
            status::watch(&ctx, &watched, &a.stage, a.interval).await
        }
        Command::Probe(a) => {
            if let Some(s) = &a.stage {
                env.stage(s)?;
            }
            // Each function's alias gives its own split to expect.
            let (clouds, _) = per_function(&cloud, ui, &env.project);
            let by_name: Vec<(&str, &aws::Aws)> = env
                .project
                .functions
                .iter()
                .map(|f| f.name.as_str())
                .zip(&clouds)
                .collect();
            probe::probe(&ctx, &by_name, probe_opts(&a)).await
        }
        Command::Check => unreachable!("check returns before the environments are loaded"),
    }
}

/// `status` of a project of several functions: every function's view of the stages in turn,
/// each under its name (with `--output json`, its rows carry `function`).
async fn status_of_every_function(
    ctx: &Ctx<'_, aws::Aws>,
    only: Option<&str>,
) -> anyhow::Result<()> {
    let project = &ctx.env.project;
    for f in &project.functions {
        let cloud = ctx.cloud.for_function(&f.name);
        let ui = ctx.ui.for_function(&f.name);
        let one = Ctx {
            cloud: &cloud,
            env: ctx.env,
            ui: &ui,
            interrupt: ctx.interrupt,
            function: &f.name,
        };
        ctx.ui.text(format!("function {}:", f.name));
        // The first error ends it: the next function's read would meet the same endpoint,
        // credentials and stack, and say it again.
        status::status(&one, only)
            .await
            .map_err(|e| e.context(format!("function {}", f.name)))?;
    }
    Ok(())
}

/// `publish`: one bare `--zip PATH` is the first function's (as on a project of one
/// function); `--zip FUNCTION=PATH` names each function of a release.
async fn publish_zips(
    ctx: &Ctx<'_, aws::Aws>,
    zips: &[std::path::PathBuf],
    dry_run: bool,
) -> anyhow::Result<()> {
    let project = &ctx.env.project;
    let named: Vec<(String, std::path::PathBuf)> = zips
        .iter()
        .map(|z| {
            let text = z.to_string_lossy();
            match text.split_once('=') {
                Some((f, path)) if project.function(f).is_some() => {
                    Ok((f.to_string(), std::path::PathBuf::from(path)))
                }
                Some((f, _)) => Err(exit::Exit::BadInput(format!(
                    "--zip {text}: no function `{f}` in project.json (its functions: {})",
                    project.function_names().join(", ")
                ))),
                None if zips.len() == 1 => Ok((project.main_function().name.clone(), z.clone())),
                None => Err(exit::Exit::BadInput(format!(
                    "--zip {text}: with several zips, name each one's function as FUNCTION=PATH"
                ))),
            }
        })
        .collect::<Result<_, _>>()?;
    // One bare path: the first function's version number alone, as scripts read it.
    if let [bare] = zips
        && !bare.to_string_lossy().contains('=')
    {
        return publish::publish(ctx, bare, dry_run).await;
    }
    let clouds: Vec<aws::Aws> = named
        .iter()
        .map(|(f, _)| ctx.cloud.for_function(f))
        .collect();
    let uis: Vec<Ui> = named.iter().map(|(f, _)| ctx.ui.for_function(f)).collect();
    let ctxs: Vec<Ctx<'_, aws::Aws>> = named
        .iter()
        .zip(clouds.iter().zip(&uis))
        .map(|((f, _), (cloud, ui))| Ctx {
            cloud,
            env: ctx.env,
            ui,
            interrupt: ctx.interrupt,
            function: f,
        })
        .collect();
    let paths: Vec<&std::path::Path> = named.iter().map(|(_, p)| p.as_path()).collect();
    publish::publish_release(&ctxs, &paths, dry_run, ctx.ui).await
}

/// A mutating command: on a project of one function its executor; on several, the release
/// executor with one connection per function.
async fn mutate(
    ctx: &Ctx<'_, aws::Aws>,
    stage: &str,
    intent: Intent,
    opts: ExecOpts,
    release: &[(String, rollout::Version)],
) -> anyhow::Result<()> {
    let project = &ctx.env.project;
    for (f, _) in release {
        if project.function(f).is_none() {
            return Err(exit::Exit::BadInput(format!(
                "--release {f}=...: no function `{f}` in project.json (its functions: {})",
                project.function_names().join(", ")
            ))
            .into());
        }
    }
    if project.functions.len() == 1 {
        let intent = match release.first() {
            Some((_, v)) => intent.with_version(Some(*v)),
            None => intent,
        };
        return commands::execute(ctx, stage, intent, opts).await;
    }
    let (clouds, uis) = per_function(ctx.cloud, ctx.ui, project);
    let ctxs: Vec<Ctx<'_, aws::Aws>> = project
        .functions
        .iter()
        .zip(clouds.iter().zip(&uis))
        .map(|(f, (cloud, ui))| Ctx {
            cloud,
            env: ctx.env,
            ui,
            interrupt: ctx.interrupt,
            function: &f.name,
        })
        .collect();
    // `--version N` is the first function's candidate (the project's main one), unless
    // `--release` names it.
    let mut versions: std::collections::BTreeMap<String, rollout::Version> =
        release.iter().cloned().collect();
    if let Some(v) = intent.version() {
        versions
            .entry(project.main_function().name.clone())
            .or_insert(v);
    }
    let intent = intent.with_version(None);
    crate::reconcile::release::execute_release(&ctxs, stage, intent, &versions, opts).await
}

/// Each function's own connection, and output whose events name it, in project.json's order.
fn per_function(cloud: &aws::Aws, ui: &Ui, project: &rollout::Project) -> (Vec<aws::Aws>, Vec<Ui>) {
    project
        .functions
        .iter()
        .map(|f| (cloud.for_function(&f.name), ui.for_function(&f.name)))
        .unzip()
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

/// A rollout's overrides of its stage's file, as given on the command line.
fn exec_opts(stage: &cli::StageArgs, bake: cli::BakeArgs, e: cli::EvidenceArgs) -> ExecOpts {
    ExecOpts {
        bake: bake.bake,
        poll: bake.poll,
        dry_run: stage.dry_run,
        evidence: commands::EvidenceOpts {
            probe: run::ProbeFlags {
                probe: e.probe,
                invoke: e.probe_invoke,
                rate: e.probe_rate,
                url: e.probe_url,
            },
        },
        skip_upstream: None,
    }
}

/// `--judge-relative` is the stage's `analysis.judge_relative` for this run; like it, it
/// needs the metrics source, which then judges the candidate an alarm would have refused.
fn judge_relative_override(env: &mut Environments, command: &Command) -> anyhow::Result<()> {
    let stage = match command {
        Command::Deploy(a) if a.guards.judge_relative => a.stage.stage.clone(),
        Command::Canary(a) if a.guards.judge_relative => a.stage.stage.clone(),
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
