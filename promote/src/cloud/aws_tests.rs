//! Request shapes of the SDK adapters, checked with aws-smithy-mocks (no network).
//!
//! moto accepts any RevisionId and any weight, and never answers PreconditionFailed, so
//! what we send and how we read Lambda's refusals can only be shown here.

use aws_sdk_apigateway::operation::get_resources::GetResourcesOutput;
use aws_sdk_apigateway::operation::get_rest_apis::GetRestApisOutput;
use aws_sdk_apigateway::operation::get_stage::GetStageOutput;
use aws_sdk_apigateway::types::{Integration, Method, Resource, RestApi};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_lambda::operation::get_alias::GetAliasOutput;
use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
use aws_sdk_lambda::operation::update_alias::{UpdateAliasError, UpdateAliasOutput};
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use aws_sdk_lambda::types::error::{PreconditionFailedException, ResourceConflictException};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use rollout::plan::AlarmValue;
use rollout::{Project, Split};

use crate::cloud::aws::{Alarms, AliasStore, AliasWrite, Aws, Stages, Versions, WriteError};
use crate::cloud::fake::{pct, ver, view};

macro_rules! client {
    ($krate:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version($krate::config::BehaviorVersion::latest())
                .region($krate::config::Region::new("eu-west-2"))
                .credentials_provider($krate::config::Credentials::new(
                    "akid", "secret", None, None, "test",
                ))
                .retry_config($krate::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

fn project() -> Project {
    Project {
        functions: vec![rollout::FunctionSpec {
            name: "app".into(),
            package: "app".into(),
            routes: vec!["/".into()],
            buckets: vec![],
            trigger: None,
            probe: rollout::Probe::Http(rollout::ProbeRequest {
                method: "GET".into(),
                path: "/".into(),
                body: None,
                content_type: None,
                expect_status: 200,
            }),
        }],
        rest_api_name: "app".into(),
        stage_variable: "lambdaAlias".into(),
        region: "eu-west-2".into(),
        binary_media_types: vec![],
    }
}

fn aws(lambda: &[&Rule], apigw: &[&Rule], cw: &[&Rule]) -> Aws {
    Aws::from_clients(
        client!(aws_sdk_lambda, lambda),
        client!(aws_sdk_apigateway, apigw),
        client!(aws_sdk_cloudwatch, cw),
        &project(),
        "eu-west-2".into(),
    )
}

fn update_ok() -> UpdateAliasOutput {
    UpdateAliasOutput::builder()
        .name("live")
        .function_version("1")
        .revision_id("rev-2")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.1)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn update_alias_sends_the_revision_id_and_the_weight_as_a_fraction() {
    let rule = mock!(aws_sdk_lambda::Client::update_alias)
        .match_requests(|r| {
            let weights = r
                .routing_config()
                .and_then(|c| c.additional_version_weights());
            r.function_name() == Some("app")
                && r.name() == Some("live")
                && r.function_version() == Some("1")
                && r.revision_id() == Some("rev-1")
                && r.description().is_none()
                && weights.is_some_and(|w| w.len() == 1 && w.get("2") == Some(&0.1))
        })
        .then_output(update_ok);
    let aws = aws(&[&rule], &[], &[]);
    let write = AliasWrite {
        version: ver(1),
        split: Some(Split {
            version: ver(2),
            weight: pct("10"),
        }),
        description: None,
    };
    let rec = aws.update_alias("live", &write, "rev-1").await.unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(rec.view, view(1, Some((2, "10"))));
    assert_eq!(rec.revision_id, "rev-2");
}

#[tokio::test]
async fn clearing_the_routing_sends_an_empty_weight_map_and_the_description() {
    // Leaving RoutingConfig out would keep the old split; an empty map clears it.
    let rule = mock!(aws_sdk_lambda::Client::update_alias)
        .match_requests(|r| {
            r.revision_id() == Some("rev-7")
                && r.function_version() == Some("2")
                && r.description() == Some("promote: previous=1")
                && r.routing_config()
                    .and_then(|c| c.additional_version_weights())
                    .is_some_and(|w| w.is_empty())
        })
        .then_output(|| {
            UpdateAliasOutput::builder()
                .name("live")
                .function_version("2")
                .revision_id("rev-8")
                .build()
        });
    let aws = aws(&[&rule], &[], &[]);
    let write = AliasWrite {
        version: ver(2),
        split: None,
        description: Some("promote: previous=1".into()),
    };
    let rec = aws.update_alias("live", &write, "rev-7").await.unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(rec.view, view(2, None));
}

#[tokio::test]
async fn a_stale_revision_id_is_a_conflict_and_in_progress_or_5xx_are_transient() {
    let precondition = mock!(aws_sdk_lambda::Client::update_alias).then_error(|| {
        UpdateAliasError::PreconditionFailedException(
            PreconditionFailedException::builder()
                .message("The Revision Id provided does not match the latest")
                .build(),
        )
    });
    let aws1 = aws(&[&precondition], &[], &[]);
    let write = AliasWrite {
        version: ver(1),
        split: None,
        description: None,
    };
    match aws1.update_alias("live", &write, "stale").await {
        Err(WriteError::Conflict(m)) => assert!(m.contains("stale"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let conflict = mock!(aws_sdk_lambda::Client::update_alias).then_error(|| {
        UpdateAliasError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("in progress")
                .build(),
        )
    });
    // ResourceConflictException is "an update is in progress": transient, not a foreign
    // change; so are Lambda's own 500 and throttling.
    let aws2 = aws(&[&conflict], &[], &[]);
    assert!(matches!(
        aws2.update_alias("live", &write, "r").await,
        Err(WriteError::Transient(_))
    ));
    let service = mock!(aws_sdk_lambda::Client::update_alias).then_error(|| {
        UpdateAliasError::ServiceException(
            aws_sdk_lambda::types::error::ServiceException::builder()
                .message("boom")
                .build(),
        )
    });
    let aws3 = aws(&[&service], &[], &[]);
    assert!(matches!(
        aws3.update_alias("live", &write, "r").await,
        Err(WriteError::Transient(_))
    ));

    // A request Lambda refuses as invalid is an ordinary error (exit 1), never retried.
    let other = mock!(aws_sdk_lambda::Client::update_alias).then_error(|| {
        UpdateAliasError::InvalidParameterValueException(
            aws_sdk_lambda::types::error::InvalidParameterValueException::builder()
                .message("bad weight")
                .build(),
        )
    });
    let aws4 = aws(&[&other], &[], &[]);
    assert!(matches!(
        aws4.update_alias("live", &write, "r").await,
        Err(WriteError::Other(_))
    ));
}

#[tokio::test]
async fn get_alias_reads_fractions_back_as_percent_and_refuses_latest() {
    let rule = mock!(aws_sdk_lambda::Client::get_alias)
        .match_requests(|r| r.name() == Some("live"))
        .then_output(|| {
            GetAliasOutput::builder()
                .function_version("1")
                .revision_id("rev-3")
                .description("promote: previous=4")
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .additional_version_weights("2", 0.125)
                        .build(),
                )
                .build()
        });
    let latest = mock!(aws_sdk_lambda::Client::get_alias)
        .match_requests(|r| r.name() == Some("dev"))
        .then_output(|| {
            GetAliasOutput::builder()
                .function_version("$LATEST")
                .revision_id("r")
                .build()
        });
    let aws = aws(&[&rule, &latest], &[], &[]);
    let rec = aws.get_alias("live").await.unwrap();
    assert_eq!(rec.view, view(1, Some((2, "12.5"))));
    assert_eq!(rec.revision_id, "rev-3");
    let err = aws.get_alias("dev").await.unwrap_err().to_string();
    assert!(
        err.contains("$LATEST") && err.contains("promote deploy --stage dev"),
        "{err}"
    );
}

#[tokio::test]
async fn publish_version_pins_the_code_sha_and_records_the_stamp() {
    let rule = mock!(aws_sdk_lambda::Client::publish_version)
        .match_requests(|r| {
            r.code_sha256() == Some("c2hh")
                && r.description() == Some("app 0.2.0 unknown")
                && r.revision_id() == Some("rev-9")
        })
        .then_output(|| {
            PublishVersionOutput::builder()
                .version("4")
                .description("app 0.2.0 unknown")
                .code_sha256("c2hh")
                .build()
        });
    let aws = aws(&[&rule], &[], &[]);
    let v = aws
        .publish_version("app 0.2.0 unknown", "c2hh", Some("rev-9"))
        .await
        .unwrap();
    assert_eq!(v.version, ver(4));
    assert_eq!(rule.num_calls(), 1);
}

fn apis() -> Rule {
    mock!(aws_sdk_apigateway::Client::get_rest_apis).then_output(|| {
        GetRestApisOutput::builder()
            .items(RestApi::builder().id("other").name("not-app").build())
            .items(RestApi::builder().id("abc123").name("app").build())
            .build()
    })
}

fn resources(uri: &'static str) -> Rule {
    mock!(aws_sdk_apigateway::Client::get_resources)
        .match_requests(|r| {
            r.rest_api_id() == Some("abc123") && r.embed().iter().any(|x| x == "methods")
        })
        .then_output(move || {
            let method = Method::builder()
                .http_method("ANY")
                .method_integration(Integration::builder().uri(uri).build())
                .build();
            GetResourcesOutput::builder()
                .items(
                    Resource::builder()
                        .id("root")
                        .path("/")
                        .resource_methods("ANY", method.clone())
                        .build(),
                )
                .items(
                    Resource::builder()
                        .id("proxy")
                        .path("/{proxy+}")
                        .resource_methods("ANY", method)
                        .build(),
                )
                .build()
        })
}

const GOOD_URI: &str = "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-2:123456789012:function:app:${stageVariables.lambdaAlias}/invocations";
const FIXED_URI: &str = "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-2:123456789012:function:app:live/invocations";

#[tokio::test]
async fn a_stage_resolves_through_its_stage_variable() {
    let (apis, res) = (apis(), resources(GOOD_URI));
    let stage = mock!(aws_sdk_apigateway::Client::get_stage)
        .match_requests(|r| r.rest_api_id() == Some("abc123") && r.stage_name() == Some("live"))
        .then_output(|| {
            GetStageOutput::builder()
                .stage_name("live")
                .variables("lambdaAlias", "live-alias")
                .build()
        });
    let aws = aws(&[], &[&apis, &res, &stage], &[]);
    let t = aws.resolve("live").await.unwrap();
    assert_eq!(t.alias, "live-alias");
    assert_eq!(
        t.invoke_url,
        "https://abc123.execute-api.eu-west-2.amazonaws.com/live"
    );
    // The API and its integrations are looked up once per run.
    aws.resolve("live").await.unwrap();
    assert_eq!(
        (apis.num_calls(), res.num_calls(), stage.num_calls()),
        (1, 1, 2)
    );
}

#[tokio::test]
async fn an_integration_that_bypasses_the_stage_variable_is_an_error_that_says_so() {
    let (apis, res) = (apis(), resources(FIXED_URI));
    let aws = aws(&[], &[&apis, &res], &[]);
    let err = format!("{:#}", aws.resolve("live").await.unwrap_err());
    assert!(
        err.contains("does not route through the stage variable")
            && err.contains("${stageVariables.lambdaAlias}"),
        "{err}"
    );
}

/// Terraform's tree (and the seed's): app on `/` and `/build-info`, birthday on
/// `/hello/{username}` through `birthday_uri`.
fn release_tree(birthday_uri: &'static str) -> Rule {
    mock!(aws_sdk_apigateway::Client::get_resources).then_output(move || {
        let any = |uri: &str| {
            Method::builder()
                .http_method("ANY")
                .method_integration(Integration::builder().uri(uri).build())
                .build()
        };
        let resource = |id: &str, path: &str, method: Option<Method>| {
            let r = Resource::builder().id(id).path(path);
            match method {
                Some(m) => r.resource_methods("ANY", m).build(),
                None => r.build(),
            }
        };
        GetResourcesOutput::builder()
            .items(resource("root", "/", Some(any(GOOD_URI))))
            .items(resource("bi", "/build-info", Some(any(GOOD_URI))))
            .items(resource("hello", "/hello", None))
            .items(resource(
                "user",
                "/hello/{username}",
                Some(any(birthday_uri)),
            ))
            .build()
    })
}

const BIRTHDAY_URI: &str = "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-2:123456789012:function:birthday:${stageVariables.lambdaAlias}/invocations";
const BIRTHDAY_FIXED_URI: &str = "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-2:123456789012:function:birthday:7/invocations";

#[tokio::test]
async fn each_function_of_a_release_checks_its_own_integrations() {
    let stage = || {
        mock!(aws_sdk_apigateway::Client::get_stage).then_output(|| {
            GetStageOutput::builder()
                .stage_name("live")
                .variables("lambdaAlias", "live")
                .build()
        })
    };
    // Both functions' routes go through the stage variable: each connection accepts the API.
    let (api, res, st) = (apis(), release_tree(BIRTHDAY_URI), stage());
    let app = aws(&[], &[&api, &res, &st], &[]);
    let birthday = app.for_function("birthday");
    assert_eq!(birthday.resolve("live").await.unwrap().alias, "live");
    assert_eq!(app.resolve("live").await.unwrap().alias, "live");
    // birthday's route pinned to a version: birthday's connection refuses, naming its route
    // and the URI it expects; app's, which the pin does not move, accepts.
    let (api, res, st) = (apis(), release_tree(BIRTHDAY_FIXED_URI), stage());
    let app = aws(&[], &[&api, &res, &st], &[]);
    let birthday = app.for_function("birthday");
    let err = format!("{:#}", birthday.resolve("live").await.unwrap_err());
    assert!(
        err.contains("ANY /hello/{username} does not route through the stage variable")
            && err.contains("function:birthday:${stageVariables.lambdaAlias}/invocations"),
        "{err}"
    );
    assert_eq!(app.resolve("live").await.unwrap().alias, "live");
}

#[tokio::test]
async fn a_stage_without_the_stage_variable_is_an_error() {
    let (apis, res) = (apis(), resources(GOOD_URI));
    let stage = mock!(aws_sdk_apigateway::Client::get_stage)
        .then_output(|| GetStageOutput::builder().stage_name("live").build());
    let aws = aws(&[], &[&apis, &res, &stage], &[]);
    let err = format!("{:#}", aws.resolve("live").await.unwrap_err());
    assert!(err.contains("no stage variable `lambdaAlias`"), "{err}");
}

#[tokio::test]
async fn alarms_are_read_by_name_with_state_and_reason() {
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.alarm_names() == ["a", "b"])
        .then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("a")
                        .state_value(StateValue::Alarm)
                        .state_reason("Threshold Crossed")
                        .build(),
                )
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("b")
                        .state_value(StateValue::InsufficientData)
                        .build(),
                )
                .build()
        });
    let aws = aws(&[], &[], &[&rule]);
    let r = aws.read(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(r[0].value, AlarmValue::Alarm);
    assert_eq!(r[0].reason, "Threshold Crossed");
    assert_eq!(r[1].value, AlarmValue::InsufficientData);
}

#[tokio::test]
async fn an_endpoint_answering_500_is_named_with_the_call_whatever_its_body() {
    // moto answers GetMetricData for p99 with a 500 and an HTML body the SDK cannot parse as
    // XML; the reader is told what answered, not "error parsing XML".
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_http_response(|| {
        aws_sdk_cloudwatch::config::http::HttpResponse::new(
            500.try_into().unwrap(),
            aws_sdk_lambda::primitives::SdkBody::from("<html>Internal Server Error</html>"),
        )
    });
    let aws = aws(&[], &[], &[&rule]);
    let e = aws.read(&["a".into()]).await.unwrap_err();
    let m = format!("{e:#}");
    assert!(
        m.contains(
            "CloudWatch DescribeAlarms: the endpoint https://monitoring.eu-west-2.amazonaws.com answered HTTP 500"
        ),
        "{m}"
    );
}
