//! The guardian racing a `promote` rollback, and a `promote` advance, over HTTP: both talk to
//! moto through testkit's fault proxy, which checks and rotates alias RevisionIds as Lambda
//! does (moto does not), and holds their UpdateAlias requests until both have sent one, on
//! the RevisionId both read. Exactly one write is applied; the other writer writes nothing.
//! (The same races against promote's in-memory stand-in are the crate's unit tests.)

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::StateValue;
use guardian::guard::{Guardian, Lambda};
use promote::cli::exit;
use promote::cli::interrupt::Interrupt;
use promote::cli::ui::{Format, Ui};
use promote::cloud::aws::Aws;
use promote::ctx::Ctx;
use promote::reconcile::commands::{ExecOpts, execute};
use rollout::Environments;
use rollout::guardian::Trigger;
use rollout::machine::Intent;
use rollout::plan::{AlarmReading, AlarmValue};
use testkit::Scratch;
use testkit::aws::Sdk;
use testkit::fault_proxy::{Config, FaultProxy, Gate};
use testkit::moto::Moto;

const ALARM: &str = "app-live-lambda-errors";

/// environments/ with live judged by its alarms only (moto has no per-version metrics);
/// `api_alarms_only`: live lists only its API alarms, so that a run reading these files does
/// not watch the Lambda errors alarm the guardian acts on.
fn environments(dir: &Path, name: &str, api_alarms_only: bool) -> Environments {
    let envs = dir.join(name);
    testkit::copy_dir(&testkit::workspace_root().join("environments"), &envs);
    testkit::edit_json(&envs.join("live.json"), |v| {
        v["analysis"] = serde_json::json!({"sources": ["alarms"]});
        if api_alarms_only {
            testkit::keep_alarms(v, "api_");
        }
    });
    Environments::load(&envs).unwrap()
}

fn through(proxy: &FaultProxy, moto: &Moto, region: &str) -> aws_config::SdkConfig {
    testkit::aws::config(moto, region)
        .into_builder()
        .endpoint_url(&proxy.endpoint)
        .build()
}

#[test]
fn racing_a_promote_rollback_over_http_one_writer_wins() {
    race(Intent::Rollback { to_previous: false }, "1", false);
}

/// promote advancing to 50% on the alarms its files name (the API's, all OK) while the
/// guardian acts on the Lambda errors alarm in ALARM: one of the two writes lands.
#[test]
fn racing_a_promote_advance_over_http_one_writer_wins() {
    race(Intent::Advance { weight: None }, "1", true);
}

/// live at 10% of version 2, left by a promote run that died, its errors alarm in ALARM;
/// the guardian and a `promote` run of `intent` race through the fault proxy. Whoever wins,
/// exactly one write lands and the loser writes nothing. `promote_sees_api_alarms_only`:
/// promote reads a copy of the files whose live lists only its API alarms.
fn race(intent: Intent, stable: &str, promote_sees_api_alarms_only: bool) {
    let dir = Scratch::new("guardian-race");
    let env = environments(dir.path(), "environments", false);
    let promote_env = if promote_sees_api_alarms_only {
        environments(dir.path(), "promote-environments", true)
    } else {
        env.clone()
    };
    let advancing = matches!(intent, Intent::Advance { .. });
    let moto = Moto::lease(dir.path());
    moto.seed(&env.dir, &["--versions", "2"]);
    let region = env.project.region.clone();
    let direct = Sdk::new(&moto, &region);
    // live at 10% of version 2, left there by a promote run that died; its alarm fires.
    direct
        .rt
        .block_on(
            direct
                .lambda
                .update_alias()
                .function_name(&env.project.main_function().name)
                .name("live")
                .function_version("1")
                .description("promote/v1 step=2@10 baked=no")
                .routing_config(
                    aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                        .additional_version_weights("2", 0.1)
                        .build(),
                )
                .send(),
        )
        .unwrap();
    direct
        .rt
        .block_on(
            direct
                .cloudwatch
                .set_alarm_state()
                .alarm_name(ALARM)
                .state_value(StateValue::Alarm)
                .state_reason("Threshold Crossed: 1 out of the last 1 datapoints [4.0]")
                .send(),
        )
        .unwrap();

    let proxy = FaultProxy::start(
        moto.port,
        Config {
            enforce_revisions: true,
            ..Config::clean()
        },
    );
    proxy.written_outside("live");
    proxy.hold(Gate {
        alias: "live".into(),
        matches: Box::new(|_| true),
    });

    let sdk = through(&proxy, &moto, &region);
    let aws = Aws::from_clients(
        aws_sdk_lambda::Client::new(&sdk),
        aws_sdk_apigateway::Client::new(&sdk),
        aws_sdk_cloudwatch::Client::new(&sdk),
        &env.project,
        region.clone(),
    );
    let lambda = Lambda {
        client: aws_sdk_lambda::Client::new(&sdk),
        endpoint_url: Some(proxy.endpoint.clone()),
        region: region.clone(),
    };
    let guardian = Guardian {
        env: &env,
        cloud: &aws,
        aliases: &lambda,
    };
    let ui = Ui::capture(Format::Table);
    let interrupt = Interrupt::default();
    let ctx = Ctx {
        cloud: &aws,
        env: &promote_env,
        ui: &ui,
        interrupt: &interrupt,
        function: &env.project.main_function().name,
    };
    let fired = Trigger::Alarm(AlarmReading {
        name: ALARM.into(),
        value: AlarmValue::Alarm,
        reason: String::new(),
    });

    // Both writes wait at the proxy until both are there, then go in arrival order.
    let releaser = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let both = proxy.wait_held(2, Duration::from_secs(60));
            proxy.release();
            both
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (g, p) = rt.block_on(async {
            tokio::join!(
                guardian.handle(&fired, SystemTime::now()),
                execute(
                    &ctx,
                    "live",
                    intent,
                    ExecOpts {
                        bake: Some(Duration::ZERO),
                        poll: Some(Duration::from_millis(200)),
                        ..ExecOpts::default()
                    }
                )
            )
        });
        (waiter.join().unwrap(), g, p)
    });
    let (both_held, g, p) = releaser;
    assert!(
        both_held,
        "both writers sent an UpdateAlias on the same reading"
    );
    let outcome = g.expect("the guardian ran").into_iter().next().unwrap();
    let p_code = p.as_ref().map_or_else(exit::code_of, |()| 0);

    let applied = proxy.applied();
    assert_eq!(applied.len(), 1, "one write applied: {applied:?}");
    let by_guardian = applied[0]
        .description
        .as_deref()
        .is_some_and(|d| d.contains("by=guardian"));
    eprintln!(
        "race: the {} won; stale writes refused: {}",
        if by_guardian {
            "guardian"
        } else if advancing {
            "promote advance"
        } else {
            "promote rollback"
        },
        proxy.tally().stale_revisions
    );
    if by_guardian {
        assert_eq!(outcome.written, ["app"]);
        assert_eq!(p_code, 5, "promote lost and wrote nothing: {p:?}");
    } else {
        assert_eq!(outcome.lost, ["app"], "{outcome:?}");
        assert_eq!(p_code, 0, "{p:?}");
    }
    assert!(
        proxy.tally().stale_revisions >= 1,
        "the loser's write was refused as stale"
    );
    // The guardian's rollback, or promote's write: version 1 alone, or 50% of version 2.
    let live = direct
        .rt
        .block_on(
            direct
                .lambda
                .get_alias()
                .function_name(&env.project.main_function().name)
                .name("live")
                .send(),
        )
        .unwrap();
    assert_eq!(live.function_version(), Some(stable));
    let weights = live
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .cloned()
        .unwrap_or_default();
    if advancing && !by_guardian {
        assert_eq!(weights.get("2"), Some(&0.5), "{weights:?}");
    } else {
        assert!(weights.is_empty(), "{weights:?}");
    }
}
