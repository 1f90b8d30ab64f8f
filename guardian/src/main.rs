//! The guardian's bootstrap: Lambda's runtime loop around [`guardian::guard::Guardian`].
//! A bad environments directory fails the function's start (Lambda reports an init error);
//! an invocation that could not do its job returns an error, which the function's error
//! alarm watches and EventBridge retries (the write is idempotent).

use std::time::SystemTime;

use anyhow::Context;
use guardian::guard::{Guardian, Lambda};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .init();
    let dir = guardian::environments_dir();
    let env = rollout::Environments::load(&dir)
        .with_context(|| format!("reading the environments at {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let aws = promote::cloud::aws::Aws::connect(&env.project).await;
        let lambda = Lambda {
            client: aws.lambda.clone(),
            endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
            region: aws.region.clone(),
        };
        let g = Guardian {
            env: &env,
            cloud: &aws,
            aliases: &lambda,
        };
        lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| handle(&g, e.payload))).await
    })
}

async fn handle(
    g: &Guardian<'_, promote::cloud::aws::Aws, Lambda>,
    event: Value,
) -> Result<Value, lambda_runtime::Error> {
    let trigger = guardian::event::trigger(event)?;
    let outcomes = g
        .handle(&trigger, SystemTime::now())
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(json!({ "outcomes": outcomes.iter().map(|o| o.json()).collect::<Vec<_>>() }))
}
