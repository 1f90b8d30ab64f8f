//! The `environments/` model as plain data: what a stage file says once it is loaded and
//! checked (`load` reads the files, `validate` holds the rules). Nothing here reads a file
//! or refuses a value.

mod alarm;
mod analysis;
mod engine;
mod stage;
mod strategy;

use std::path::PathBuf;

use crate::error::ConfigError;

pub use alarm::{Alarm, AlarmKind};
pub use analysis::{
    ANALYSIS_PERIODS, Analysis, DEFAULT_MAX_EXTENSION_SECONDS, DEFAULT_MAX_READ_FAILURES,
    DEFAULT_PERIOD_SECONDS, DEFAULT_PROBE_RATE, MAX_PROBE_RATE, OnNoEvidence, OnUnreadable,
    SourceKind,
};
pub use engine::{Engine, Hooks};
pub use stage::{Stage, slowest_alarm};
pub use strategy::{Step, Strategy};

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The functions released together, in `project.json`'s order; never empty, names unique.
    pub functions: Vec<FunctionSpec>,
    pub rest_api_name: String,
    pub stage_variable: String,
    pub region: String,
    /// The REST API's binary media types: a request of one of these content types reaches
    /// its function base64-encoded (API Gateway's `binaryMediaTypes`).
    pub binary_media_types: Vec<String>,
}

impl Project {
    /// The first function listed: the one single-function readers (and the names Terraform
    /// derives for the project) use.
    pub fn main_function(&self) -> &FunctionSpec {
        &self.functions[0]
    }

    /// The functions' names, in order.
    pub fn function_names(&self) -> Vec<String> {
        self.functions.iter().map(|f| f.name.clone()).collect()
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The function whose routes serve `path` (`/hello/nando` is `/hello/{username}`'s), as
    /// API Gateway picks a resource: the match with the most literal segments wins.
    pub fn function_serving(&self, path: &str) -> Option<&FunctionSpec> {
        self.functions
            .iter()
            .flat_map(|f| f.routes.iter().map(move |r| (f, r)))
            .filter_map(|(f, r)| route_match(r, path).map(|literal| (literal, f)))
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, f)| f)
    }
}

/// Whether API Gateway resource path `route` serves request path `path`, and if so with how
/// many literal segments: `{name}` takes one segment, `{name+}` the rest (at least one).
fn route_match(route: &str, path: &str) -> Option<usize> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (route, path) = (segments(route), segments(path));
    let mut literal = 0;
    for (i, r) in route.iter().enumerate() {
        if r.starts_with('{') && r.ends_with("+}") {
            return (path.len() > i).then_some(literal);
        }
        let p = path.get(i)?;
        if r.starts_with('{') && r.ends_with('}') {
            continue;
        }
        if r != p {
            return None;
        }
        literal += 1;
    }
    (route.len() == path.len()).then_some(literal)
}

/// One Lambda function of the project: every stage's alias of it bears the stage's name.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The Lambda function name.
    pub name: String,
    /// The cargo package whose binary is the bootstrap.
    pub package: String,
    /// API Gateway resource paths it serves, any method; none only for a function that an
    /// event source triggers.
    pub routes: Vec<String>,
    /// The purposes of the per-stage buckets the function reads or writes (`notes`,
    /// `uploads`): its role reaches these and no other.
    pub buckets: Vec<String>,
    /// What invokes the function besides its routes.
    pub trigger: Option<Trigger>,
    pub probe: Probe,
}

impl FunctionSpec {
    /// The HTTP request that probes it, unless it is probed another way.
    pub fn probe_request(&self) -> Option<&ProbeRequest> {
        match &self.probe {
            Probe::Http(r) => Some(r),
            Probe::Upload(_) => None,
        }
    }
}

/// An event source that invokes a function's stage alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Objects created in the stage's bucket of this purpose (its notification
    /// configuration names the stage's alias of the function).
    S3 { bucket: String },
}

/// How the probe exercises a function on a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An HTTP request through the stage's API.
    Http(ProbeRequest),
    /// Objects uploaded to the stage's trigger bucket, each answered by a summary.
    Upload(UploadProbe),
}

/// The request the probe sends a function, and the status a healthy version answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub method: String,
    pub path: String,
    /// Sent as is: project.json's `body`, or its `body_base64` decoded.
    pub body: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub expect_status: u16,
}

/// The probe of an S3-triggered function: small objects put under `prefix` of the stage's
/// `bucket`, each judged by its summary appearing in the stage's `summaries` bucket (at the
/// object's key followed by `.json`), naming the version that wrote it, within
/// `deadline_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProbe {
    pub bucket: String,
    pub prefix: String,
    pub summaries: String,
    pub deadline_seconds: u64,
}

/// The stage variable that holds the name of a stage's bucket of `purpose` (`notes` ->
/// `notesBucket`). Functions and `promote` read the name there and never derive it: a
/// published version serves every stage, and bucket names are the account's to choose.
pub fn bucket_stage_variable(purpose: &str) -> String {
    format!("{purpose}Bucket")
}

/// The name Terraform (and, with the emulator's account, the demo and the tests) gives a
/// stage's bucket of `purpose`: S3 bucket names are global, so the account id ends it, and
/// lowercase.
pub fn bucket_name(rest_api_name: &str, stage: &str, purpose: &str, account: &str) -> String {
    format!("{rest_api_name}-{stage}-{purpose}-{account}").to_lowercase()
}

/// The whole directory, validated, with stages in path order (first stage first).
#[derive(Debug, Clone)]
pub struct Environments {
    pub dir: PathBuf,
    pub project: Project,
    pub stages: Vec<Stage>,
}

impl Environments {
    pub fn stage(&self, name: &str) -> Result<&Stage, ConfigError> {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ConfigError::UnknownStage {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.stage_names(),
            })
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.clone()).collect()
    }

    pub fn upstream_of(&self, stage: &Stage) -> Option<&Stage> {
        let up = stage.upstream.as_deref()?;
        self.stages.iter().find(|s| s.name == up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, routes: &[&str]) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            package: name.into(),
            routes: routes.iter().map(|r| r.to_string()).collect(),
            buckets: vec![],
            trigger: None,
            probe: Probe::Http(ProbeRequest {
                method: "GET".into(),
                path: "/".into(),
                body: None,
                content_type: None,
                expect_status: 200,
            }),
        }
    }

    #[test]
    fn a_path_is_served_by_the_function_whose_route_matches_it_most_literally() {
        let project = Project {
            functions: vec![
                function("app", &["/", "/build-info", "/files/{proxy+}"]),
                function("birthday", &["/hello/{username}", "/hello/admin"]),
                function("admin", &["/hello/admin/{proxy+}"]),
            ],
            rest_api_name: "app".into(),
            stage_variable: "lambdaAlias".into(),
            region: "eu-west-2".into(),
            binary_media_types: vec![],
        };
        let serving = |p: &str| project.function_serving(p).map(|f| f.name.as_str());
        assert_eq!(serving("/"), Some("app"));
        assert_eq!(serving("/build-info"), Some("app"));
        assert_eq!(serving("/build-info?x=1"), Some("app"));
        assert_eq!(serving("/hello/nando"), Some("birthday"));
        assert_eq!(serving("/hello/nando/"), Some("birthday"));
        assert_eq!(serving("/hello/admin/x/y"), Some("admin"));
        assert_eq!(serving("/files/a/b"), Some("app"));
        // `{name}` takes exactly one segment; `{proxy+}` at least one.
        assert_eq!(serving("/hello"), None);
        assert_eq!(serving("/hello/a/b"), None);
        assert_eq!(serving("/files"), None);
        assert_eq!(serving("/nowhere"), None);
    }

    #[test]
    fn each_function_is_judged_by_its_own_lambda_alarms_and_the_stages_api_alarms() {
        let env =
            Environments::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../environments")).unwrap();
        let live = env.stage("live").unwrap();
        let app = live.alarm_names_for(&env.project, "app");
        assert_eq!(
            app,
            live.alarm_names(),
            "the first function's are the file's names"
        );
        let birthday = live.alarm_names_for(&env.project, "birthday");
        assert_eq!(
            birthday,
            [
                "app-live-lambda-errors-birthday",
                "app-live-lambda-throttle-rate-birthday",
                "app-live-api-5xx-rate",
                "app-live-api-p99-latency",
            ]
        );
        assert_eq!(
            live.capacity_alarm_names_for(&env.project, "birthday"),
            ["app-live-lambda-throttle-rate-birthday"]
        );
        assert_eq!(
            live.capacity_alarm_names_for(&env.project, "app"),
            live.capacity_alarm_names()
        );
    }
}
