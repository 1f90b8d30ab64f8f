//! Thin adapters over the AWS SDK, behind traits so that the commands can be exercised
//! against an in-memory stand-in (for what moto cannot show, such as RevisionId conflicts).
//!
//! Nothing in here decides anything: it reads and writes, and translates SDK shapes to the
//! plain data of the `rollout` crate.

use aliases::sdk_error::{Endpoint, sdk_err};
use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_lambda::primitives::Blob;
use rollout::plan::{AlarmReading, AlarmValue};
use rollout::{Project, Version};
use tokio::sync::OnceCell;

use crate::cloud::codedeploy::{CodeDeployApi, Deployment, DeploymentRequest, Deployments};
pub use aliases::{AliasRecord, AliasWrite, WriteError};

#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: Version,
    pub description: String,
    /// Base64 SHA-256 of the deployment package, as Lambda reports it.
    pub code_sha256: String,
}

/// `$LATEST` after an UpdateFunctionCode.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeUpdate {
    pub code_sha256: String,
    pub revision_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStatus {
    InProgress,
    Successful,
    Failed,
}

/// A stage resolved through API Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTarget {
    pub stage: String,
    pub alias: String,
    pub invoke_url: String,
    /// The stage's variables, as API Gateway hands them to the functions.
    pub variables: std::collections::BTreeMap<String, String>,
}

pub trait AliasStore {
    async fn get_alias(&self, alias: &str) -> Result<AliasRecord>;
    async fn update_alias(
        &self,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError>;
}

pub trait Versions {
    /// Published versions, oldest first (without `$LATEST`).
    async fn list_versions(&self) -> Result<Vec<VersionInfo>>;
    async fn update_code(&self, zip: Vec<u8>) -> Result<CodeUpdate>;
    async fn update_status(&self) -> Result<(UpdateStatus, String)>;
    async fn publish_version(
        &self,
        description: &str,
        code_sha256: &str,
        revision_id: Option<&str>,
    ) -> Result<VersionInfo>;
}

pub trait Stages {
    /// REST API by name -> stage -> stage variable -> alias; checks that the integration
    /// really routes through that stage variable.
    async fn resolve(&self, stage: &str) -> Result<StageTarget>;
}

pub trait Alarms {
    async fn read(&self, names: &[String]) -> Result<Vec<AlarmReading>>;
}

/// Everything a command needs.
/// One GetMetricData read of Lambda's metrics for one alias (see [`Metrics`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    pub function: String,
    pub alias: String,
    /// The series to read, in order: a version inside the weighted alias (the
    /// `ExecutedVersion` dimension), or `None` for the alias as a whole (what Lambda
    /// publishes when the alias has no routing, where `ExecutedVersion` is absent).
    pub series: Vec<Option<Version>>,
    pub start: std::time::SystemTime,
    pub end: std::time::SystemTime,
    pub period_seconds: u32,
    /// `p99` or `Average` for `Duration`.
    pub latency: rollout::judge::LatencyStatistic,
}

/// One series' datapoints, each at the start of its period, where that period had data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub invocations: Vec<(std::time::SystemTime, f64)>,
    pub errors: Vec<(std::time::SystemTime, f64)>,
    pub duration_ms: Vec<(std::time::SystemTime, f64)>,
    /// `Throttles` (Sum): requests Lambda refused for want of concurrency, by version too,
    /// for the judge's relative view of throttles.
    pub throttles: Vec<(std::time::SystemTime, f64)>,
}

pub trait Metrics {
    /// `Invocations` (Sum), `Errors` (Sum), `Throttles` (Sum) and `Duration` (p99 or Average) of `AWS/Lambda`
    /// by `FunctionName` + `Resource` (`function:alias`) [+ `ExecutedVersion`], one
    /// GetMetricData call (and its pages) for every series; answered in the query's order.
    async fn version_metrics(&self, q: &MetricsQuery) -> Result<Vec<Series>>;
}

/// Everything a command needs.
pub trait Cloud: AliasStore + Versions + Stages + Alarms + Metrics + Deployments {}
impl<T: AliasStore + Versions + Stages + Alarms + Metrics + Deployments> Cloud for T {}

/// The real thing.
pub struct Aws {
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub function_name: String,
    pub rest_api_name: String,
    pub stage_variable: String,
    pub region: String,
    api: OnceCell<ApiInfo>,
    /// Only the CodeDeploy engine calls it ([`Aws::with_codedeploy`]).
    codedeploy: Option<CodeDeployApi>,
    /// AWS_ENDPOINT_URL (or the profile's endpoint_url), named in errors.
    endpoint_url: Option<String>,
    /// The functions no route reaches (an event source's, such as an S3 trigger's): the API
    /// has no integration of theirs to check; their trigger names the stage's alias.
    routeless: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct ApiInfo {
    id: String,
}

impl Aws {
    pub async fn connect(project: &Project) -> Aws {
        use aws_config::timeout::TimeoutConfig;
        use std::time::Duration;
        // Region from the standard AWS environment first, then project.json.
        let region = aws_https::region_or(aws_config::Region::new(project.region.clone()));
        // The SDK's own retries, explicit rather than left to defaults that move between
        // releases: standard mode (throttling, 5xx, timeouts and connection errors), 3
        // attempts per call with exponential backoff and jitter from 100 ms, at most 2 s.
        // On top of this, an alias write has promote's own re-read-and-retry loop with a
        // deadline per phase (run.rs), which also recognises its own earlier write.
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(2));
        let sdk = aws_https::defaults()
            .region(region)
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .load()
            .await;
        let region = sdk
            .region()
            .map_or(project.region.clone(), |r| r.to_string());
        let endpoint_url = sdk.endpoint_url().map(str::to_string);
        let mut aws = Aws::from_clients(
            aws_sdk_lambda::Client::new(&sdk),
            aws_sdk_apigateway::Client::new(&sdk),
            aws_sdk_cloudwatch::Client::new(&sdk),
            project,
            region,
        )
        .with_codedeploy(aws_sdk_codedeploy::Client::new(&sdk));
        aws.endpoint_url = endpoint_url;
        aws
    }

    /// The endpoint of one service (`lambda`, `apigateway`, `monitoring`), for messages.
    fn at(&self, host: &'static str) -> Endpoint<'_> {
        Endpoint::new(self.endpoint_url.as_deref(), host, &self.region)
    }

    /// The same connection working on function `name`: each function of a release is moved
    /// through its own (the SDK clients are shared handles, cheap to clone).
    pub fn for_function(&self, name: &str) -> Aws {
        Aws {
            lambda: self.lambda.clone(),
            apigateway: self.apigateway.clone(),
            cloudwatch: self.cloudwatch.clone(),
            function_name: name.to_string(),
            rest_api_name: self.rest_api_name.clone(),
            stage_variable: self.stage_variable.clone(),
            region: self.region.clone(),
            api: self.api.clone(),
            codedeploy: self.codedeploy.as_ref().map(|c| CodeDeployApi {
                client: c.client.clone(),
            }),
            endpoint_url: self.endpoint_url.clone(),
            routeless: self.routeless.clone(),
        }
    }

    pub fn with_codedeploy(mut self, client: aws_sdk_codedeploy::Client) -> Aws {
        self.codedeploy = Some(CodeDeployApi { client });
        self
    }

    pub(crate) fn codedeploy(&self) -> Result<&CodeDeployApi> {
        self.codedeploy
            .as_ref()
            .ok_or_else(|| anyhow!("no CodeDeploy client (Aws::with_codedeploy)"))
    }

    pub fn from_clients(
        lambda: aws_sdk_lambda::Client,
        apigateway: aws_sdk_apigateway::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        project: &Project,
        region: String,
    ) -> Aws {
        Aws {
            lambda,
            apigateway,
            cloudwatch,
            function_name: project.main_function().name.clone(),
            rest_api_name: project.rest_api_name.clone(),
            stage_variable: project.stage_variable.clone(),
            region,
            api: OnceCell::new(),
            codedeploy: None,
            endpoint_url: None,
            routeless: project
                .functions
                .iter()
                .filter(|f| f.routes.is_empty())
                .map(|f| f.name.clone())
                .collect(),
        }
    }

    async fn api(&self) -> Result<&ApiInfo> {
        self.api.get_or_try_init(|| self.find_api()).await
    }

    async fn find_api(&self) -> Result<ApiInfo> {
        // The SDK's paginators stop on an empty or repeated token, as moto sometimes sends.
        let apis = self
            .apigateway
            .get_rest_apis()
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err(&self.at("apigateway"), "API Gateway GetRestApis", e))
            .context("listing REST APIs")?;
        let ids: Vec<String> = apis
            .iter()
            .filter(|api| api.name() == Some(self.rest_api_name.as_str()))
            .filter_map(|api| api.id().map(str::to_string))
            .collect();
        let id = match ids.as_slice() {
            [id] => id.clone(),
            [] => bail!(
                "no REST API named `{}` in {} (rest_api_name in project.json); has the stack been created?",
                self.rest_api_name,
                self.region
            ),
            _ => bail!(
                "{} REST APIs are named `{}` ({}); the name must be unique",
                ids.len(),
                self.rest_api_name,
                ids.join(", ")
            ),
        };
        self.check_integrations(&id).await?;
        Ok(ApiInfo { id })
    }

    /// Every Lambda integration of the API must reach the function through
    /// `${stageVariables.<var>}`; otherwise moving the alias would not move the stage.
    async fn check_integrations(&self, api_id: &str) -> Result<()> {
        let resources = self
            .apigateway
            .get_resources()
            .rest_api_id(api_id)
            .limit(500)
            .embed("methods")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err(&self.at("apigateway"), "API Gateway GetResources", e))
            .with_context(|| {
                format!(
                    "listing the resources of REST API {} ({api_id})",
                    self.rest_api_name
                )
            })?;
        let wanted = format!(
            "function:{}:${{stageVariables.{}}}/",
            self.function_name, self.stage_variable
        );
        let mut checked = 0;
        for res in &resources {
            let Some(methods) = res.resource_methods() else {
                continue;
            };
            for (http_method, method) in methods {
                let uri = match method.method_integration().and_then(|i| i.uri()) {
                    Some(uri) => uri.to_string(),
                    None => {
                        let integ = self
                            .apigateway
                            .get_integration()
                            .rest_api_id(api_id)
                            .resource_id(res.id().unwrap_or_default())
                            .http_method(http_method)
                            .send()
                            .await;
                        match integ {
                            Ok(i) => i.uri().unwrap_or_default().to_string(),
                            Err(_) => continue, // a method without integration routes nowhere
                        }
                    }
                };
                // Only this function's integrations: another function of the project is
                // checked by its own connection.
                let this = format!(":function:{}:", self.function_name);
                let this_bare = format!(":function:{}/", self.function_name);
                if !uri.contains(":lambda:path/")
                    || !(uri.contains(&this) || uri.contains(&this_bare))
                {
                    continue;
                }
                if !uri.contains(&wanted) {
                    bail!(
                        "REST API {} ({api_id}): the integration of {http_method} {} does not route through the stage variable \
                         (its URI is {uri}, expected one ending in function:{}:${{stageVariables.{}}}/invocations); \
                         promote moves the alias the stage variable names, so this stage would not follow",
                        self.rest_api_name,
                        res.path().unwrap_or("?"),
                        self.function_name,
                        self.stage_variable
                    );
                }
                checked += 1;
            }
        }
        if checked == 0 && !self.routeless.contains(&self.function_name) {
            bail!(
                "REST API {} ({api_id}) has no Lambda integration of function {} through ${{stageVariables.{}}}",
                self.rest_api_name,
                self.function_name,
                self.stage_variable
            );
        }
        Ok(())
    }
}

impl AliasStore for Aws {
    async fn get_alias(&self, alias: &str) -> Result<AliasRecord> {
        aliases::lambda::get_alias(&self.lambda, &self.at("lambda"), &self.function_name, alias)
            .await
    }

    async fn update_alias(
        &self,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        aliases::lambda::update_alias(
            &self.lambda,
            &self.at("lambda"),
            &self.function_name,
            alias,
            write,
            revision_id,
        )
        .await
    }
}

impl Versions for Aws {
    async fn list_versions(&self) -> Result<Vec<VersionInfo>> {
        tracing::debug!(function = %self.function_name, "ListVersionsByFunction");
        let versions = self
            .lambda
            .list_versions_by_function()
            .function_name(&self.function_name)
            .max_items(10_000)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err(&self.at("lambda"), "Lambda ListVersionsByFunction", e))
            .with_context(|| format!("listing the versions of function {}", self.function_name))?;
        // `$LATEST` is not a published version: it does not parse and is left out.
        let mut out_versions: Vec<VersionInfo> = versions
            .iter()
            .filter_map(|v| {
                let version = v.version().and_then(|s| Version::parse(s).ok())?;
                Some(VersionInfo {
                    version,
                    description: v.description().unwrap_or_default().to_string(),
                    code_sha256: v.code_sha256().unwrap_or_default().to_string(),
                })
            })
            .collect();
        out_versions.sort_by_key(|v| v.version);
        Ok(out_versions)
    }

    async fn update_code(&self, zip: Vec<u8>) -> Result<CodeUpdate> {
        tracing::info!(function = %self.function_name, bytes = zip.len(), "UpdateFunctionCode");
        let out = self
            .lambda
            .update_function_code()
            .function_name(&self.function_name)
            .zip_file(Blob::new(zip))
            .send()
            .await
            .map_err(|e| sdk_err(&self.at("lambda"), "Lambda UpdateFunctionCode", e))
            .with_context(|| format!("uploading code to function {}", self.function_name))?;
        Ok(CodeUpdate {
            code_sha256: out.code_sha256().unwrap_or_default().to_string(),
            revision_id: out.revision_id().map(str::to_string),
        })
    }

    async fn update_status(&self) -> Result<(UpdateStatus, String)> {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(&self.function_name)
            .send()
            .await
            .map_err(|e| sdk_err(&self.at("lambda"), "Lambda GetFunctionConfiguration", e))
            .with_context(|| {
                format!(
                    "reading the configuration of function {}",
                    self.function_name
                )
            })?;
        use aws_sdk_lambda::types::LastUpdateStatus as S;
        let status = match out.last_update_status() {
            // An emulator that does not track updates has finished them.
            None | Some(S::Successful) => UpdateStatus::Successful,
            Some(S::Failed) => UpdateStatus::Failed,
            Some(_) => UpdateStatus::InProgress,
        };
        Ok((
            status,
            out.last_update_status_reason()
                .unwrap_or_default()
                .to_string(),
        ))
    }

    async fn publish_version(
        &self,
        description: &str,
        code_sha256: &str,
        revision_id: Option<&str>,
    ) -> Result<VersionInfo> {
        let out = self
            .lambda
            .publish_version()
            .function_name(&self.function_name)
            .description(description)
            .code_sha256(code_sha256)
            .set_revision_id(revision_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_err(&self.at("lambda"), "Lambda PublishVersion", e))
            .with_context(|| format!("publishing a version of function {}", self.function_name))?;
        let v = out.version().unwrap_or_default();
        Ok(VersionInfo {
            version: Version::parse(v)
                .map_err(|_| anyhow!("PublishVersion returned version `{v}`"))?,
            description: out.description().unwrap_or_default().to_string(),
            code_sha256: out.code_sha256().unwrap_or_default().to_string(),
        })
    }
}

impl Stages for Aws {
    async fn resolve(&self, stage: &str) -> Result<StageTarget> {
        tracing::debug!(rest_api = %self.rest_api_name, stage, "GetStage");
        let api = self.api().await?;
        let out = self
            .apigateway
            .get_stage()
            .rest_api_id(&api.id)
            .stage_name(stage)
            .send()
            .await
            .map_err(|e| sdk_err(&self.at("apigateway"), "API Gateway GetStage", e))
            .with_context(|| {
                format!(
                    "reading stage {stage} of REST API {} ({})",
                    self.rest_api_name, api.id
                )
            })?;
        let alias = out
            .variables()
            .and_then(|v| v.get(&self.stage_variable))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "stage {stage} of REST API {} has no stage variable `{}`, so it names no Lambda alias",
                    self.rest_api_name,
                    self.stage_variable
                )
            })?;
        Ok(StageTarget {
            stage: stage.to_string(),
            alias: alias.clone(),
            invoke_url: format!(
                "https://{}.execute-api.{}.amazonaws.com/{stage}",
                api.id, self.region
            ),
            variables: out
                .variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }
}

impl Alarms for Aws {
    async fn read(&self, names: &[String]) -> Result<Vec<AlarmReading>> {
        tracing::debug!(count = names.len(), "DescribeAlarms");
        let mut readings = Vec::with_capacity(names.len());
        // DescribeAlarms takes at most 100 names per call.
        for chunk in names.chunks(100) {
            // No `items()` here: a page holds metric and composite alarms, two lists.
            let pages = self
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| sdk_err(&self.at("monitoring"), "CloudWatch DescribeAlarms", e))
                .context("reading CloudWatch alarm states")?;
            for out in &pages {
                for a in out.metric_alarms() {
                    use aws_sdk_cloudwatch::types::StateValue as S;
                    let value = match a.state_value() {
                        Some(S::Ok) => AlarmValue::Ok,
                        Some(S::Alarm) => AlarmValue::Alarm,
                        _ => AlarmValue::InsufficientData,
                    };
                    readings.push(AlarmReading {
                        name: a.alarm_name().unwrap_or_default().to_string(),
                        value,
                        reason: a.state_reason().unwrap_or_default().to_string(),
                    });
                }
            }
        }
        Ok(readings)
    }
}

impl Metrics for Aws {
    async fn version_metrics(&self, q: &MetricsQuery) -> Result<Vec<Series>> {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let stat = match q.latency {
            rollout::judge::LatencyStatistic::P99 => "p99",
            rollout::judge::LatencyStatistic::Mean => "Average",
        };
        let dim = |name: &str, value: String| Dimension::builder().name(name).value(value).build();
        let mut queries = Vec::new();
        for (i, v) in q.series.iter().enumerate() {
            let mut dims = vec![
                dim("FunctionName", q.function.clone()),
                dim("Resource", format!("{}:{}", q.function, q.alias)),
            ];
            if let Some(v) = v {
                dims.push(dim("ExecutedVersion", v.to_string()));
            }
            for (key, name, stat) in [
                ("inv", "Invocations", "Sum"),
                ("err", "Errors", "Sum"),
                ("dur", "Duration", stat),
                ("thr", "Throttles", "Sum"),
            ] {
                let metric = Metric::builder()
                    .namespace("AWS/Lambda")
                    .metric_name(name)
                    .set_dimensions(Some(dims.clone()))
                    .build();
                queries.push(
                    MetricDataQuery::builder()
                        .id(format!("{key}{i}"))
                        .metric_stat(
                            MetricStat::builder()
                                .metric(metric)
                                .period(q.period_seconds as i32)
                                .stat(stat)
                                .build(),
                        )
                        .return_data(true)
                        .build(),
                );
            }
        }
        tracing::debug!(function = %q.function, alias = %q.alias, series = q.series.len(), "GetMetricData");
        let pages = self
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from(q.start))
            .end_time(DateTime::from(q.end))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err(&self.at("monitoring"), "CloudWatch GetMetricData", e))
            .with_context(|| {
                format!(
                    "reading the per-version metrics of alias {} of function {}",
                    q.alias, q.function
                )
            })?;
        let mut out = vec![Series::default(); q.series.len()];
        for page in &pages {
            for r in page.metric_data_results() {
                let id = r.id().unwrap_or_default();
                let (key, index) = id.split_at(id.len().min(3));
                let Some(series) = index.parse::<usize>().ok().and_then(|i| out.get_mut(i)) else {
                    continue;
                };
                let points = r
                    .timestamps()
                    .iter()
                    .zip(r.values())
                    .filter_map(|(t, v)| Some((std::time::SystemTime::try_from(*t).ok()?, *v)));
                match key {
                    "inv" => series.invocations.extend(points),
                    "err" => series.errors.extend(points),
                    "dur" => series.duration_ms.extend(points),
                    "thr" => series.throttles.extend(points),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

impl Deployments for Aws {
    async fn create_deployment(&self, req: &DeploymentRequest) -> Result<String> {
        self.codedeploy()?.create_deployment(req).await
    }
    async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        self.codedeploy()?.get_deployment(id).await
    }
    async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>> {
        self.codedeploy()?.in_flight(application, group).await
    }
    async fn target_weight(&self, id: &str) -> Result<Option<f64>> {
        self.codedeploy()?.target_weight(id).await
    }
    async fn stop_deployment(&self, id: &str) -> Result<String> {
        self.codedeploy()?.stop_deployment(id).await
    }
}
