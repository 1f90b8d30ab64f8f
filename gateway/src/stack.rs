//! What the gateway serves, as the AWS endpoint holds it: REST API -> stage -> stage variable
//! -> each function's alias -> routing -> version. Read in one refresh (a few list calls) every
//! [`REFRESH_EVERY`], so a moved alias is seen within a second, and swapped in whole so a
//! request never sees half of two refreshes.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};

/// Every function of the project, in project.json's order.
pub fn functions(project: &rollout::Project) -> Vec<String> {
    project.function_names()
}

/// A moved alias is served within this plus one refresh's round trip (well under a second).
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub version: String,
    /// AdditionalVersionWeights: version -> share in [0, 1].
    pub weights: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionConfig {
    pub version: String,
    pub code_sha256: String,
    pub memory_mb: i32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
}

/// One function's aliases and published versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionStack {
    pub aliases: BTreeMap<String, Alias>,
    pub versions: BTreeMap<String, VersionConfig>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub api_id: String,
    /// stage name -> its stage variables.
    pub stages: BTreeMap<String, BTreeMap<String, String>>,
    /// function name -> its aliases and versions.
    pub functions: BTreeMap<String, FunctionStack>,
}

/// Where a request for a stage goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route<'a> {
    /// No such stage: API Gateway answers 403 `{"message":"Forbidden"}`.
    NoStage,
    /// The stage variable names no alias the function has (a misconfiguration API Gateway
    /// reports as a 500 of the integration).
    NoAlias(String),
    Alias(&'a Alias),
}

impl Snapshot {
    /// The alias of `function` that `stage` invokes: every function's alias has the stage's
    /// name (its stage variable's value), as every integration URI ends in
    /// `:${stageVariables.<stage_variable>}`.
    pub fn route(&self, stage: &str, stage_variable: &str, function: &str) -> Route<'_> {
        let Some(vars) = self.stages.get(stage) else {
            return Route::NoStage;
        };
        let Some(alias) = vars.get(stage_variable) else {
            return Route::NoAlias(format!(
                "stage {stage} has no stage variable {stage_variable}"
            ));
        };
        match self.function(function).and_then(|f| f.aliases.get(alias)) {
            Some(a) => Route::Alias(a),
            None => Route::NoAlias(format!(
                "stage {stage}: stage variable {stage_variable}={alias} names no alias of function {function}"
            )),
        }
    }

    pub fn function(&self, name: &str) -> Option<&FunctionStack> {
        self.functions.get(name)
    }
}

/// Lambda's weighted alias: `r` uniform in [0, 1) picks an additional version with its weight,
/// else the primary.
pub fn pick_version(alias: &Alias, r: f64) -> &str {
    let mut cumulative = 0.0;
    for (version, weight) in &alias.weights {
        cumulative += weight;
        if r < cumulative {
            return version;
        }
    }
    &alias.version
}

/// The current snapshot, shared by every request.
#[derive(Clone, Default)]
pub struct Shared(Arc<RwLock<Arc<Snapshot>>>);

impl Shared {
    pub fn get(&self) -> Arc<Snapshot> {
        self.0.read().expect("snapshot lock").clone()
    }
    pub fn set(&self, s: Snapshot) {
        *self.0.write().expect("snapshot lock") = Arc::new(s);
    }
}

/// Reads the stack through the SDK.
pub struct Reader {
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigateway::Client,
    /// Every function of the project, in project.json's order.
    pub functions: Vec<String>,
    pub rest_api_name: String,
}

impl Reader {
    pub async fn rest_api_id(&self) -> Result<String> {
        let mut position = None;
        loop {
            let page = self
                .apigw
                .get_rest_apis()
                .set_position(position)
                .limit(500)
                .send()
                .await
                .context("GetRestApis")?;
            if let Some(api) = page
                .items()
                .iter()
                .find(|a| a.name() == Some(self.rest_api_name.as_str()))
            {
                return api
                    .id()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("REST API {} has no id", self.rest_api_name));
            }
            position = page.position().map(str::to_string);
            if position.is_none() {
                return Err(anyhow!(
                    "no REST API named {} at the endpoint (is the stack seeded? tools/seed.py)",
                    self.rest_api_name
                ));
            }
        }
    }

    /// One refresh; versions already known are kept (a published version never changes).
    pub async fn read(&self, api_id: &str, previous: &Snapshot) -> Result<Snapshot> {
        let stages = self
            .apigw
            .get_stages()
            .rest_api_id(api_id)
            .send()
            .await
            .with_context(|| format!("GetStages of REST API {api_id}"))?;
        let stages = stages
            .item()
            .iter()
            .filter_map(|s| {
                let vars = s
                    .variables()
                    .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                s.stage_name().map(|n| (n.to_string(), vars))
            })
            .collect();

        let mut functions = BTreeMap::new();
        for name in &self.functions {
            let known = previous.function(name).cloned().unwrap_or_default();
            functions.insert(name.clone(), self.function(name, known).await?);
        }
        Ok(Snapshot {
            api_id: api_id.to_string(),
            stages,
            functions,
        })
    }

    /// One function's aliases, and its versions when an alias names one not yet known.
    async fn function(&self, name: &str, previous: FunctionStack) -> Result<FunctionStack> {
        let mut aliases = BTreeMap::new();
        let mut marker = None;
        loop {
            let page = self
                .lambda
                .list_aliases()
                .function_name(name)
                .set_marker(marker)
                .send()
                .await
                .with_context(|| format!("ListAliases of function {name}"))?;
            for a in page.aliases() {
                let weights = a
                    .routing_config()
                    .and_then(|r| r.additional_version_weights())
                    .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default();
                let alias = a.name().unwrap_or_default().to_string();
                aliases.insert(
                    alias.clone(),
                    Alias {
                        name: alias,
                        arn: a.alias_arn().unwrap_or_default().to_string(),
                        version: a.function_version().unwrap_or_default().to_string(),
                        weights,
                    },
                );
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }

        let mut versions = previous.versions;
        let mut unknown = false;
        for a in aliases.values() {
            unknown |= !versions.contains_key(&a.version);
            unknown |= a.weights.keys().any(|v| !versions.contains_key(v));
        }
        if unknown {
            versions = self.versions(name).await?;
        }
        Ok(FunctionStack { aliases, versions })
    }

    async fn versions(&self, name: &str) -> Result<BTreeMap<String, VersionConfig>> {
        let mut out = BTreeMap::new();
        let mut marker = None;
        loop {
            let page = self
                .lambda
                .list_versions_by_function()
                .function_name(name)
                .set_marker(marker)
                .send()
                .await
                .with_context(|| format!("ListVersionsByFunction of function {name}"))?;
            for v in page.versions() {
                let Some(version) = v.version().filter(|v| *v != "$LATEST") else {
                    continue;
                };
                let environment = v
                    .environment()
                    .and_then(|e| e.variables())
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                out.insert(
                    version.to_string(),
                    VersionConfig {
                        version: version.to_string(),
                        code_sha256: v.code_sha256().unwrap_or_default().to_string(),
                        memory_mb: v.memory_size().unwrap_or(128),
                        timeout: Duration::from_secs(v.timeout().unwrap_or(3).max(1) as u64),
                        environment,
                    },
                );
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(version: &str, weights: &[(&str, f64)]) -> Alias {
        Alias {
            name: "live".into(),
            arn: "arn:aws:lambda:eu-west-2:123456789012:function:app:live".into(),
            version: version.into(),
            weights: weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
        }
    }

    #[test]
    fn the_candidate_gets_its_weight_and_the_primary_the_rest() {
        let a = alias("1", &[("2", 0.1)]);
        assert_eq!(pick_version(&a, 0.0), "2");
        assert_eq!(pick_version(&a, 0.0999), "2");
        assert_eq!(pick_version(&a, 0.1), "1");
        assert_eq!(pick_version(&a, 0.999), "1");
        let plain = alias("3", &[]);
        assert_eq!(pick_version(&plain, 0.0), "3");
        let shares = (0..1000)
            .filter(|i| pick_version(&a, *i as f64 / 1000.0) == "2")
            .count();
        assert_eq!(shares, 100);
    }

    #[test]
    fn routes_follow_stage_variable_then_alias() {
        let mut s = Snapshot::default();
        s.stages.insert(
            "dev".into(),
            BTreeMap::from([("lambdaAlias".into(), "dev".into())]),
        );
        s.stages.insert(
            "odd".into(),
            BTreeMap::from([("lambdaAlias".into(), "nope".into())]),
        );
        s.stages.insert("bare".into(), BTreeMap::new());
        let mut app = FunctionStack::default();
        app.aliases.insert("dev".into(), alias("4", &[]));
        let mut birthday = FunctionStack::default();
        birthday.aliases.insert("dev".into(), alias("9", &[]));
        s.functions.insert("app".into(), app);
        s.functions.insert("birthday".into(), birthday);
        assert!(
            matches!(s.route("dev", "lambdaAlias", "app"), Route::Alias(a) if a.version == "4")
        );
        // The same stage reaches each function's own alias of that name.
        assert!(
            matches!(s.route("dev", "lambdaAlias", "birthday"), Route::Alias(a) if a.version == "9")
        );
        assert!(
            matches!(s.route("dev", "lambdaAlias", "other"), Route::NoAlias(m) if m.contains("function other"))
        );
        assert_eq!(s.route("prod", "lambdaAlias", "app"), Route::NoStage);
        assert!(
            matches!(s.route("odd", "lambdaAlias", "app"), Route::NoAlias(m) if m.contains("nope"))
        );
        assert!(
            matches!(s.route("bare", "lambdaAlias", "app"), Route::NoAlias(m) if m.contains("no stage variable"))
        );
    }
}
