//! The CodeDeploy engine's helpers: `canary`, `deploy` and `rollback` on a stage whose
//! strategy says `"engine": "codedeploy"` (README, "The two engines").
//!
//! Such a stage goes through the one executor (`commands::execute`) like any other: the
//! deployment in flight for its group is read with the alias ([`observe`]), and
//! `rollout::machine::decide` returns the CodeDeploy actions (create a deployment, follow it
//! while the bake judges the candidate, stop it with rollback, write the alias note once it
//! has ended). This module builds what those actions send ([`request`]) and what `status`
//! shows; CodeDeploy shifts the traffic and rolls back on the group's alarms even if this
//! process dies, and a rerun after `kill -9` finds the deployment in flight and follows it.

use anyhow::{Context, Result};
use rollout::Version;
use rollout::codedeploy::{
    AppSpec, DeploymentConfig, DeploymentView, Engine, Group, Shift, Status,
};

use crate::cli::events;
use crate::cloud::aws::Cloud;
use crate::cloud::codedeploy::DeploymentRequest;
use crate::reconcile::run::{Run, nothing_written, v};

/// The deployment in flight for the stage's group (CodeDeploy allows one), on a stage
/// CodeDeploy shifts; `None` on the alias engine's stages.
pub async fn observe<C: Cloud>(run: &Run<'_, C>) -> Result<Option<DeploymentView>> {
    if run.stage.engine != Engine::CodeDeploy {
        return Ok(None);
    }
    let g = Group::of(run.ctx.function, run.name());
    let unchanged = || nothing_written(run.name());
    for id in run
        .ctx
        .cloud
        .in_flight(&g.application, &g.group)
        .await
        .with_context(unchanged)?
    {
        let d = run
            .ctx
            .cloud
            .get_deployment(&id)
            .await
            .with_context(unchanged)?;
        if let Some(view) = d.view(run.ctx.function, &run.target.alias)
            && view.status.in_flight()
        {
            return Ok(Some(view));
        }
    }
    Ok(None)
}

/// The AppSpec and the `CreateDeployment` request that shift the stage's alias from
/// `stable` to `candidate` with `config`.
pub fn request<C: Cloud>(
    run: &Run<'_, C>,
    command: &str,
    candidate: Version,
    stable: Version,
    config: DeploymentConfig,
) -> (AppSpec, DeploymentRequest) {
    let function = run.ctx.function.to_string();
    let name = run.name();
    let appspec = AppSpec {
        function: function.clone(),
        alias: run.target.alias.clone(),
        current: stable,
        target: candidate,
        hooks: run.stage.hooks.clone(),
    };
    let g = Group::of(&function, name);
    let request = DeploymentRequest {
        application: g.application,
        group: g.group,
        config: config.name(&function, name),
        appspec: appspec.content(),
        description: format!(
            "promote {command} --stage {name}: version {} -> {}",
            run.label(stable),
            run.label(candidate)
        ),
    };
    (appspec, request)
}

/// `CreateDeployment` shifting the stage's alias from `stable` to `candidate`, said and
/// emitted: the deployment as it now runs.
pub async fn create<C: Cloud>(
    run: &Run<'_, C>,
    command: &str,
    candidate: Version,
    stable: Version,
    config: DeploymentConfig,
) -> Result<DeploymentView> {
    let name = run.name();
    let (_, req) = request(run, command, candidate, stable, config);
    let id = run
        .ctx
        .cloud
        .create_deployment(&req)
        .await
        .with_context(|| nothing_written(name))?;
    run.ui().emit(&events::DeploymentCreated {
        stage: name.to_string(),
        deployment_id: id.clone(),
        application: req.application.clone(),
        group: req.group.clone(),
        deployment_config: req.config.clone(),
        candidate: v(candidate),
        stable: v(stable),
    });
    run.ui().say(format!(
        "{name}: CodeDeploy deployment {id} created ({}): version {} -> {}",
        req.config,
        run.label(stable),
        run.label(candidate)
    ));
    Ok(DeploymentView {
        id,
        application: req.application,
        config: req.config,
        shift: Some(Shift {
            current: stable,
            target: candidate,
        }),
        status: Status::Created,
        rollback_of: None,
    })
}

#[cfg(test)]
#[path = "cd_engine_tests.rs"]
pub(crate) mod tests;
