//! A release on a stage CodeDeploy shifts: the joint acts of `release`'s executor. Every
//! function's deployment is followed side by side, each judged on its own evidence; the
//! first failure ends the follow for all, and the deployments still running are then stopped
//! together with CodeDeploy's rollback (`rollout::machine::release` decides both).
//!
//! Each deployment keeps its own clock: CodeDeploy shifts each group on its own schedule, so
//! two functions' splits move independently and nothing here can hold them at one step
//! (docs/engines.md).

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rollout::codedeploy::{DeploymentView, Shift};
use rollout::machine::release::{ReleaseGoal, fail, failure_of, record_stop};
use rollout::machine::{Ended, Goal, Memory};

use crate::cloud::aws::Cloud;
use crate::evidence::Source;
use crate::reconcile::commands::{CdEnd, ended_by_codedeploy};
use crate::reconcile::run::{FollowEnd, Run, StopEnd};

/// One function's evidence sources.
pub type Sources<'a> = Vec<Box<dyn Source + 'a>>;

/// What the release executor keeps per moving function (in the goal's order) on a CodeDeploy
/// stage: the deployment in flight, as last known, and what only the executor knows of how
/// it ended.
#[derive(Default)]
pub(crate) struct Deployments {
    pub(crate) running: Vec<Option<DeploymentView>>,
    pub(crate) ends: Vec<CdEnd>,
}

/// The items at `picks` (distinct indices), each borrowed mutably, in `picks`' order.
pub fn pick<'r, T>(items: &'r mut [T], picks: &[usize]) -> Vec<&'r mut T> {
    let mut slots: Vec<Option<&'r mut T>> = items.iter_mut().map(Some).collect();
    picks.iter().filter_map(|&i| slots[i].take()).collect()
}

fn position(goal: &ReleaseGoal, function: &str) -> usize {
    goal.moves
        .iter()
        .position(|(f, _)| f == function)
        .expect("a moving function")
}

/// Follows every listed deployment side by side. Each function's end is applied to the
/// memories as the single-function executor applies it; the first that is not a pass fails
/// every function of the release (naming it) and ends the follow: the others' deployments
/// are still running, and the next decision stops them. A follow only reads, so the ones cut
/// short are dropped safely.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn follow_each<'a, C: Cloud>(
    runs: &mut [Run<'a, C>],
    sources: &mut [Sources<'a>],
    order: &[usize],
    goal: &ReleaseGoal,
    mems: &mut [Memory],
    cd: &mut Deployments,
    deployments: &[(String, String)],
    poll: std::time::Duration,
) -> Result<()> {
    let ks: Vec<usize> = deployments.iter().map(|(f, _)| position(goal, f)).collect();
    let run_picks: Vec<usize> = ks.iter().map(|&k| order[k]).collect();
    let runs_picked = pick(runs, &run_picks);
    let sources_picked = pick(sources, &ks);
    let mut following: FuturesUnordered<_> = runs_picked
        .into_iter()
        .zip(sources_picked)
        .zip(deployments.iter().zip(&ks))
        .map(|((run, src), ((function, id), &k))| {
            let shift = match &goal.moves[k].1 {
                Goal::Rollout(r) => Shift {
                    current: r.stable,
                    target: r.candidate,
                },
                _ => unreachable!("only a rollout follows a deployment"),
            };
            async move {
                let end = run.follow(src, id, shift, poll).await;
                (function.clone(), id.clone(), k, run, end)
            }
        })
        .collect();
    while let Some((function, id, k, run, end)) = following.next().await {
        let named = |why: &str| failure_of(goal, &function, why);
        match end? {
            FollowEnd::Passed => {
                mems[k].baked.push(rollout::Weight::FULL);
                cd.running[k] = None;
                continue;
            }
            FollowEnd::Failed { reason, running } => {
                if !running {
                    cd.running[k] = None;
                }
                fail(mems, &named(&reason));
            }
            FollowEnd::Held { reason, succeeded } => {
                return Err(run.held_deployment(&id, &reason, succeeded));
            }
            FollowEnd::Interrupted => return Err(run.interrupted_deployment(&id)),
            FollowEnd::Ended(outcome) => {
                cd.running[k] = None;
                ended_by_codedeploy(run, &id, outcome, &mut mems[k], &mut cd.ends[k]).await?;
                let why = match (&mems[k].failure, &mems[k].ended) {
                    (Some(reason), _) => Some(reason.clone()),
                    (None, Some(Ended::Failed(what))) => Some(what.clone()),
                    _ => None,
                };
                match why {
                    None => continue,
                    Some(why) => {
                        mems[k].failure = None;
                        fail(mems, &named(&why));
                    }
                }
            }
        }
        break;
    }
    Ok(())
}

/// Stops every listed deployment with CodeDeploy's rollback, all at once (each stop then
/// waits for its own rollback), with signals held: this is the release's rollback. The
/// first error is returned once every stop has been tried.
pub(crate) async fn stop_each<'a, C: Cloud>(
    runs: &mut [Run<'a, C>],
    order: &[usize],
    goal: &ReleaseGoal,
    mems: &mut [Memory],
    cd: &mut Deployments,
    stops: &[(String, String, String)],
) -> Result<()> {
    let ks: Vec<usize> = stops.iter().map(|(f, ..)| position(goal, f)).collect();
    let run_picks: Vec<usize> = ks.iter().map(|&k| order[k]).collect();
    let _held = runs
        .first()
        .map(|r| r.ctx.interrupt.hold())
        .expect("a release has a function");
    let stopping =
        pick(runs, &run_picks)
            .into_iter()
            .zip(stops)
            .map(|(run, (_, id, reason))| async move {
                let end = run.stop_deployment(id, reason).await;
                if let Ok(a) = run.ctx.cloud.get_alias(&run.target.alias).await {
                    run.alias = a;
                }
                end
            });
    let ends = futures_util::future::join_all(stopping).await;
    let mut first_error = None;
    for ((end, (function, id, _)), &k) in ends.into_iter().zip(stops).zip(&ks) {
        cd.ends[k].deployment_id = Some(id.clone());
        let ended = match end {
            Ok(StopEnd::RolledBack(still)) => {
                cd.ends[k].rollback_running = still;
                Ended::RolledBack
            }
            Ok(StopEnd::Succeeded) => Ended::Succeeded {
                deployment: id.clone(),
            },
            Ok(StopEnd::Other(what)) => Ended::Failed(what),
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        cd.running[k] = None;
        record_stop(goal, mems, function, ended);
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
#[path = "release_cd_tests.rs"]
mod tests;
