//! The Lambda bootstrap: S3 from the standard AWS environment, the summaries bucket's template
//! from `SUMMARIES_BUCKET`, and the runtime loop over S3 events (lib: `handle`).
//!
//! Exit codes: 1 the runtime failed or `AWS_LAMBDA_RUNTIME_API` is not set (S3 events reach
//! this function only through Lambda or the local gateway); 2 `SUMMARIES_BUCKET` is not set.
use std::process::ExitCode;

use aws_lambda_events::s3::S3Event;
use file_metadata::build_info;
use file_metadata::handler::{Config, Handled, handle};
use file_metadata::store::S3;
use file_metadata::summary::{MadeBy, SUMMARIES_BUCKET_VAR};
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> ExitCode {
    let name = build_info::NAME;
    lambda_kit::logging::init(name);
    // Referencing the stamp keeps it in the binary for `promote publish` (lambda_kit::build_info).
    let stamp = build_info::stamp();
    if std::env::var_os(lambda_kit::serve::RUNTIME_API_VAR).is_none() {
        eprintln!(
            "{name}: {} is not set: this function takes S3 events from Lambda (or the local gateway), it serves nothing on its own",
            lambda_kit::serve::RUNTIME_API_VAR
        );
        return ExitCode::FAILURE;
    }
    let Some(summaries_template) = std::env::var(SUMMARIES_BUCKET_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        eprintln!(
            "{name}: {SUMMARIES_BUCKET_VAR} is not set: set it to the summaries bucket, `{{stage}}` standing for the invoking alias (e.g. app-{{stage}}-summaries-123456789012)"
        );
        return ExitCode::from(2);
    };
    let env = |var: &str, default: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let config = Config {
        summaries_template,
        made_by: MadeBy {
            function: env("AWS_LAMBDA_FUNCTION_NAME", name),
            version: env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            commit: build_info::GIT_SHA.to_owned(),
        },
    };
    // One thread: Lambda hands the process one event at a time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::debug!(stamp, "starting under the Lambda runtime");
    let served = runtime.block_on(async {
        let sdk = aws_https::defaults().load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk);
        // An emulator on 127.0.0.1 has no per-bucket host names.
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
            s3 = s3.force_path_style(true);
        }
        let store = S3::new(aws_sdk_s3::Client::from_conf(s3.build()));
        let (store, config) = (&store, &config);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
            let done = handle(
                store,
                config,
                &event.context.invoked_function_arn,
                &event.payload,
            )
            .await?;
            let count = |f: fn(&Handled) -> bool| done.iter().filter(|h| f(h)).count();
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "written": count(|h| matches!(h, Handled::Written { .. })),
                "gone": count(|h| matches!(h, Handled::Gone(_))),
                "refused": count(|h| matches!(h, Handled::Refused { .. })),
                "unusable": count(|h| matches!(h, Handled::Unusable(_))),
            }))
        }))
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: Lambda runtime error: {e}");
            ExitCode::FAILURE
        }
    }
}
