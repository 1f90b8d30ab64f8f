//! The CodeDeploy adapter on recorded responses (aws-smithy-mocks, no network).
//!
//! moto never progresses a deployment (each stays `Created`), reports no rollback
//! information and has no StopDeployment or deployment targets, so how the adapter reads a
//! deployment in each of its states, the traffic share of its Lambda target, and what it
//! sends to stop one can only be shown here.

use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentInfo, DeploymentStatus, DeploymentTarget, DeploymentTargetType,
    ErrorCode, ErrorInformation, LambdaFunctionInfo, LambdaTarget, RevisionLocation,
    RevisionLocationType, RollbackInfo, StopStatus,
};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use rollout::codedeploy::{Followed, Outcome, Phase, Progress, interpret};
use rollout::{Version, Weight};

use super::{CodeDeployApi, DeploymentRequest, IN_FLIGHT, Shift};

/// An AppSpec as promote writes it, shifting alias live of function app.
pub(crate) fn appspec(current: &str, target: &str) -> String {
    rollout::codedeploy::AppSpec {
        function: "app".into(),
        alias: "live".into(),
        current: Version::parse(current).unwrap(),
        target: Version::parse(target).unwrap(),
        hooks: Default::default(),
    }
    .content()
}

fn api(rules: &[&Rule]) -> CodeDeployApi {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    use aws_sdk_codedeploy::config;
    CodeDeployApi {
        client: aws_sdk_codedeploy::Client::from_conf(
            config::Config::builder()
                .behavior_version(config::BehaviorVersion::latest())
                .region(config::Region::new("eu-west-2"))
                .credentials_provider(config::Credentials::new(
                    "akid", "secret", None, None, "test",
                ))
                .retry_config(config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        ),
    }
}

fn info(status: DeploymentStatus) -> aws_sdk_codedeploy::types::builders::DeploymentInfoBuilder {
    DeploymentInfo::builder()
        .deployment_id("d-1")
        .application_name("app")
        .deployment_group_name("live")
        .deployment_config_name("app-live-canary-10pct-1min")
        .status(status)
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(AppSpecContent::builder().content(appspec("1", "2")).build())
                .build(),
        )
}

fn weight(p: &str) -> Option<Weight> {
    Some(Weight::parse_percent(p).unwrap())
}

#[tokio::test]
async fn each_recorded_state_of_a_deployment_reads_as_progress_or_an_outcome() {
    let alarm = || {
        ErrorInformation::builder()
            .code(ErrorCode::AlarmActive)
            .message("One or more alarms have been activated")
            .build()
    };
    let cases: Vec<(&str, DeploymentInfo, Option<f64>, Followed)> = vec![
        (
            "created",
            info(DeploymentStatus::Created).build(),
            None,
            Followed::Running(Progress {
                phase: Phase::Waiting,
                candidate_weight: None,
            }),
        ),
        (
            "in progress with a traffic share",
            info(DeploymentStatus::InProgress).build(),
            Some(0.1),
            Followed::Running(Progress {
                phase: Phase::Shifting,
                candidate_weight: weight("10"),
            }),
        ),
        (
            "baking",
            info(DeploymentStatus::Baking).build(),
            Some(1.0),
            Followed::Running(Progress {
                phase: Phase::Baking,
                candidate_weight: weight("100"),
            }),
        ),
        (
            "succeeded",
            info(DeploymentStatus::Succeeded).build(),
            None,
            Followed::Finished(Outcome::Succeeded),
        ),
        (
            "failed on an alarm, rolled back",
            info(DeploymentStatus::Failed)
                .error_information(alarm())
                .rollback_info(
                    RollbackInfo::builder()
                        .rollback_deployment_id("d-2")
                        .rollback_message("Deployment d-2 was created to roll back")
                        .build(),
                )
                .build(),
            None,
            Followed::Finished(Outcome::RolledBack {
                reason: "ALARM_ACTIVE: One or more alarms have been activated (Deployment d-2 was created to roll back)".into(),
                rollback_deployment_id: "d-2".into(),
            }),
        ),
        (
            "failed without a rollback",
            info(DeploymentStatus::Failed)
                .error_information(
                    ErrorInformation::builder()
                        .code(ErrorCode::HookExecutionFailure)
                        .message("BeforeAllowTraffic failed")
                        .build(),
                )
                .build(),
            None,
            Followed::Finished(Outcome::Failed {
                reason: "HOOK_EXECUTION_FAILURE: BeforeAllowTraffic failed".into(),
            }),
        ),
        (
            "stopped by hand, no rollback",
            info(DeploymentStatus::Stopped)
                .error_information(
                    ErrorInformation::builder()
                        .code(ErrorCode::ManualStop)
                        .message("stopped by the user")
                        .build(),
                )
                .build(),
            None,
            Followed::Finished(Outcome::Stopped {
                reason: "MANUAL_STOP: stopped by the user".into(),
            }),
        ),
        (
            "the rollback deployment succeeded",
            info(DeploymentStatus::Succeeded)
                .deployment_id("d-2")
                .rollback_info(
                    RollbackInfo::builder()
                        .rollback_triggering_deployment_id("d-1")
                        .build(),
                )
                .build(),
            None,
            Followed::Finished(Outcome::RolledBack {
                reason: "deployment d-1 was rolled back".into(),
                rollback_deployment_id: "d-2".into(),
            }),
        ),
    ];
    for (what, deployment, share, want) in cases {
        let id = deployment.deployment_id().unwrap().to_string();
        let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
            .match_requests(move |r| r.deployment_id() == Some(id.as_str()))
            .then_output(move || {
                GetDeploymentOutput::builder()
                    .deployment_info(deployment.clone())
                    .build()
            });
        let targets =
            mock!(aws_sdk_codedeploy::Client::list_deployment_targets).then_output(|| {
                ListDeploymentTargetsOutput::builder()
                    .target_ids("app:live")
                    .build()
            });
        let target = mock!(aws_sdk_codedeploy::Client::get_deployment_target)
            .match_requests(|r| r.target_id() == Some("app:live"))
            .then_output(move || {
                let mut f = LambdaFunctionInfo::builder()
                    .function_name("app")
                    .function_alias("live");
                if let Some(w) = share {
                    f = f.target_version_weight(w);
                }
                GetDeploymentTargetOutput::builder()
                    .deployment_target(
                        DeploymentTarget::builder()
                            .deployment_target_type(DeploymentTargetType::LambdaTarget)
                            .lambda_target(
                                LambdaTarget::builder()
                                    .lambda_function_info(f.build())
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let api = api(&[&get, &targets, &target]);
        let id = if what.starts_with("the rollback") {
            "d-2"
        } else {
            "d-1"
        };
        let mut d = api.get_deployment(id).await.unwrap();
        if share.is_some() {
            d.read.target_weight = api.target_weight(id).await.unwrap();
        }
        assert_eq!(interpret(&d.read).unwrap(), want, "{what}");
        assert_eq!(
            d.shift_of("app", "live"),
            Some(Shift {
                current: Version::parse("1").unwrap(),
                target: Version::parse("2").unwrap(),
            }),
            "{what}: the AppSpec is read back"
        );
        assert_eq!(d.shift_of("app", "test"), None, "another alias is not ours");
    }
}

#[tokio::test]
async fn create_sends_the_appspec_as_a_string_revision_with_the_stages_config() {
    let content = appspec("1", "2");
    let expected = content.clone();
    let create = mock!(aws_sdk_codedeploy::Client::create_deployment)
        .match_requests(move |r| {
            let rev = r.revision();
            r.application_name() == Some("app")
                && r.deployment_group_name() == Some("live")
                && r.deployment_config_name() == Some("app-live-canary-10pct-1min")
                && rev.and_then(|x| x.revision_type())
                    == Some(&RevisionLocationType::AppSpecContent)
                && rev
                    .and_then(|x| x.app_spec_content())
                    .and_then(|c| c.content())
                    == Some(expected.as_str())
        })
        .then_output(|| {
            CreateDeploymentOutput::builder()
                .deployment_id("d-9")
                .build()
        });
    let api = api(&[&create]);
    let id = api
        .create_deployment(&DeploymentRequest {
            application: "app".into(),
            group: "live".into(),
            config: "app-live-canary-10pct-1min".into(),
            appspec: content,
            description: "promote canary".into(),
        })
        .await
        .unwrap();
    assert_eq!(id, "d-9");
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn in_flight_asks_only_for_unfinished_statuses_and_follows_pages() {
    let first = mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            let statuses: Vec<&str> = r
                .include_only_statuses()
                .iter()
                .map(|s| s.as_str())
                .collect();
            r.application_name() == Some("app")
                && r.deployment_group_name() == Some("live")
                && statuses == IN_FLIGHT
                && r.next_token().is_none()
        })
        .then_output(|| {
            ListDeploymentsOutput::builder()
                .deployments("d-1")
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| ListDeploymentsOutput::builder().deployments("d-2").build());
    let api = api(&[&first, &second]);
    assert_eq!(api.in_flight("app", "live").await.unwrap(), ["d-1", "d-2"]);
}

#[tokio::test]
async fn stop_asks_codedeploy_to_roll_back() {
    let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some("d-1") && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Pending)
                .status_message("Stopping deployment")
                .build()
        });
    let api = api(&[&stop]);
    assert_eq!(
        api.stop_deployment("d-1").await.unwrap(),
        "Pending: Stopping deployment"
    );
    assert_eq!(stop.num_calls(), 1);
}
