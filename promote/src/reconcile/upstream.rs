//! What `promote` says and records when `--skip-upstream` let a candidate past the
//! path-to-live guard (`rollout::plan::upstream_guard`, checked in `machine::resolve`).

use rollout::machine::Rollout;
use serde_json::{Value, json};

use crate::cloud::aws::Cloud;
use crate::reconcile::run::Run;

/// Warns on stderr that the guard was overridden and returns the `upstream_skip` field of
/// the `plan` event (`null` when the candidate came the ordinary way).
pub fn announce<C: Cloud>(run: &Run<'_, C>, r: &Rollout) -> Value {
    let Some(skip) = &r.upstream_skip else {
        return Value::Null;
    };
    let upstream = run
        .ctx
        .env
        .upstream_of(run.stage)
        .map(|u| u.name.clone())
        .unwrap_or_default();
    run.ui().say(format!(
        "{}: warning: version {} has not served 100% of {upstream}; rolling it out anyway (--skip-upstream: {}), recorded on alias {}",
        run.name(),
        skip.version,
        skip.reason,
        run.target.alias
    ));
    json!({"version": skip.version.to_string(), "upstream": upstream, "reason": skip.reason})
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
