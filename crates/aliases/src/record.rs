//! The alias as read and the write a decision asks for, in `rollout`'s plain data.

use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use rollout::{AliasView, Split, Version, Weight};

/// An alias as read: what it routes, its description, and the RevisionId to write against.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRecord {
    pub name: String,
    pub view: AliasView,
    pub description: String,
    pub revision_id: String,
}

/// What to make the alias route. The split is always sent (an empty one clears routing):
/// leaving RoutingConfig out of an UpdateAlias keeps the old split.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasWrite {
    pub version: Version,
    pub split: Option<Split>,
    /// `None` keeps the current description.
    pub description: Option<String>,
}

impl AliasWrite {
    /// The routing and note a decision asked for.
    pub fn of(w: &rollout::machine::Write) -> AliasWrite {
        AliasWrite {
            version: w.to.version,
            split: w.to.split,
            description: Some(w.note.format()),
        }
    }

    /// Whether `alias` already is what this write makes it: after a write whose answer was
    /// lost, that means the write was applied.
    pub fn is_applied_on(&self, alias: &AliasRecord) -> bool {
        alias.view.version == self.version
            && alias.view.split == self.split
            && self
                .description
                .as_ref()
                .is_none_or(|d| d.trim() == alias.description.trim())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The RevisionId no longer matches: someone wrote the alias since we read it. That
    /// may be this run's own earlier attempt whose answer was lost: re-read to tell.
    #[error("{0}")]
    Conflict(String),
    /// The write may or may not have been applied (timeout, dropped connection, 5xx), or
    /// Lambda asked to come back later (throttling, `ResourceConflictException`: an update
    /// in progress): re-read, then retry with backoff.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Translates an alias as Lambda returns it.
pub fn alias_record(
    name: &str,
    function_version: Option<&str>,
    weights: Option<&HashMap<String, f64>>,
    description: Option<&str>,
    revision_id: Option<&str>,
) -> Result<AliasRecord> {
    let fv = function_version.unwrap_or_default();
    let version = Version::parse(fv).map_err(|_| {
        anyhow!("alias {name} points at `{fv}`, not a published version; deploy one with `promote deploy --stage {name} --version N`")
    })?;
    let split = match weights
        .map(|w| w.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .as_slice()
    {
        [] => None,
        [(v, w)] => {
            let sv = Version::parse(v)
                .map_err(|_| anyhow!("alias {name} routes to `{v}`, not a published version"))?;
            Weight::from_fraction(**w).map(|weight| Split {
                version: sv,
                weight,
            })
        }
        more => bail!(
            "alias {name} routes to {} additional versions; Lambda allows one",
            more.len()
        ),
    };
    Ok(AliasRecord {
        name: name.to_string(),
        view: AliasView { version, split },
        description: description.unwrap_or_default().to_string(),
        revision_id: revision_id.unwrap_or_default().to_string(),
    })
}

/// The routing config for a write: `{}` weights clear the split.
pub fn routing_config(split: Option<Split>) -> AliasRoutingConfiguration {
    let mut weights = HashMap::new();
    if let Some(s) = split {
        weights.insert(s.version.to_string(), s.weight.fraction());
    }
    AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(weights))
        .build()
}
