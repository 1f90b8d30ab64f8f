use serde::Deserialize;

/// How a stage's alias is shifted: by `promote` itself, or by AWS CodeDeploy
/// (`strategy.engine` in a stage file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Alias,
    CodeDeploy,
}

/// Lambda functions CodeDeploy invokes around the traffic shift (AppSpec `Hooks`;
/// `strategy.hooks` in a stage file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    pub before_allow_traffic: Option<String>,
    pub after_allow_traffic: Option<String>,
}
