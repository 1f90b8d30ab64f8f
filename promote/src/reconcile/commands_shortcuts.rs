//! One call per command, over [`execute`], for the in-memory tests: each takes the options
//! a command line would give. The binary builds the intent and [`ExecOpts`] itself (lib.rs).

use std::time::Duration;

use anyhow::Result;
use rollout::machine::Intent;
use rollout::{Version, Weight};

use super::{EvidenceOpts, ExecOpts, execute};
use crate::cloud::aws::Cloud;
use crate::ctx::Ctx;

pub struct DeployOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub allow_downgrade: bool,
    pub retry: bool,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
    pub evidence: EvidenceOpts,
    pub skip_upstream: Option<String>,
}

pub async fn deploy<C: Cloud>(ctx: &Ctx<'_, C>, o: DeployOpts) -> Result<()> {
    let intent = Intent::Deploy {
        version: o.version,
        allow_downgrade: o.allow_downgrade,
        retry: o.retry,
    };
    let opts = ExecOpts {
        bake: o.bake,
        poll: o.poll,
        dry_run: o.dry_run,
        evidence: o.evidence,
        skip_upstream: o.skip_upstream,
    };
    execute(ctx, &o.stage, intent, opts).await
}

pub struct CanaryOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub allow_downgrade: bool,
    pub retry: bool,
    pub dry_run: bool,
    pub evidence: EvidenceOpts,
    pub skip_upstream: Option<String>,
}

pub async fn canary<C: Cloud>(ctx: &Ctx<'_, C>, o: CanaryOpts) -> Result<()> {
    let intent = Intent::Canary {
        version: o.version,
        weight: o.weight,
        allow_downgrade: o.allow_downgrade,
        retry: o.retry,
    };
    let opts = ExecOpts {
        bake: o.bake,
        poll: o.poll,
        dry_run: o.dry_run,
        evidence: o.evidence,
        skip_upstream: o.skip_upstream,
    };
    execute(ctx, &o.stage, intent, opts).await
}

pub struct AdvanceOpts {
    pub stage: String,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
    pub evidence: EvidenceOpts,
}

pub async fn advance<C: Cloud>(ctx: &Ctx<'_, C>, o: AdvanceOpts) -> Result<()> {
    let opts = ExecOpts {
        bake: o.bake,
        poll: o.poll,
        dry_run: o.dry_run,
        evidence: o.evidence,
        skip_upstream: None,
    };
    execute(ctx, &o.stage, Intent::Advance { weight: o.weight }, opts).await
}

pub async fn complete<C: Cloud>(ctx: &Ctx<'_, C>, stage: &str, dry_run: bool) -> Result<()> {
    let opts = ExecOpts {
        dry_run,
        ..ExecOpts::default()
    };
    execute(ctx, stage, Intent::Complete, opts).await
}

pub async fn rollback<C: Cloud>(
    ctx: &Ctx<'_, C>,
    stage: &str,
    to_previous: bool,
    dry_run: bool,
) -> Result<()> {
    let opts = ExecOpts {
        dry_run,
        ..ExecOpts::default()
    };
    execute(ctx, stage, Intent::Rollback { to_previous }, opts).await
}
