//! `gateway`: a local API Gateway in front of the Lambda versions held in an AWS endpoint.
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM; 1 the endpoint could not be read or the port not
//! bound; 2 bad arguments, environments or artifacts.

mod alarms;
mod artifacts;
mod chaos;
mod clock;
mod event;
mod guardian;
mod invoke_api;
mod math;
mod metrics;
mod resources;
mod runtime;
mod s3_events;
mod s3_watch;
mod server;
mod stack;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use tokio::sync::watch;

// See the mimalloc line of Cargo.toml for why.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "gateway",
    about = "Serves the API Gateway stages held in AWS_ENDPOINT_URL (a moto server) by running each Lambda version's real bootstrap",
    after_help = "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 endpoint or port error, 2 bad input."
)]
struct Args {
    /// Address to serve on; port 0 takes a free one. The first stdout line names it.
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: SocketAddr,
    /// The environments directory (project.json names the functions, their routes and the REST API).
    #[arg(long, env = "PROMOTE_ENVIRONMENTS", default_value = "environments")]
    environments: PathBuf,
    /// Deployment zips (or directories of them); a version runs the one whose SHA-256 is its CodeSha256.
    #[arg(long, num_args = 1..)]
    artifacts: Vec<PathBuf>,
    /// VERSION:RATE: that share of the version's invocations fail as a crashed function does.
    #[arg(long, value_name = "VERSION:RATE")]
    fault: Vec<String>,
    /// VERSION:RATE: that share of the version's invocations are throttled, as Lambda does
    /// when the function has no concurrency left (counted in Throttles, not Invocations).
    #[arg(long, value_name = "VERSION:RATE")]
    throttle: Vec<String>,
    /// VERSION:MS: delay each invocation of the version by MS milliseconds.
    #[arg(long, value_name = "VERSION:MS")]
    latency: Vec<String>,
    /// Divide every alarm period by N (a one-minute alarm evaluates every 60/N seconds).
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    time_scale: f64,
    /// The most instances one version runs at once (Lambda's concurrency, per version).
    #[arg(long, default_value_t = 64)]
    max_instances: usize,
    /// The guardian's bootstrap: run it as AWS would, on every state change of a stage's
    /// alarm and on its schedule (every minute, scaled by --time-scale).
    #[arg(long, value_name = "PATH")]
    guardian: Option<PathBuf>,
    /// Log one line per request (stage, version, status, latency) and the functions' output.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        eprintln!(
            "gateway: --time-scale {}: must be a positive number (60 makes a 60 s period 1 s)",
            args.time_scale
        );
        return ExitCode::from(2);
    }
    let chaos = match chaos::Chaos::parse(&args.fault, &args.throttle, &args.latency) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let environments = match rollout::Environments::load(&args.environments) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gateway: {e} (pass --environments DIR)");
            return ExitCode::from(2);
        }
    };
    let resources = match resources::Resources::of_project(&environments.project) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gateway: environments/project.json: {e}");
            return ExitCode::from(2);
        }
    };
    let artifacts = match artifacts::Artifacts::index(&args.artifacts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            return ExitCode::from(2);
        }
    };
    if artifacts.is_empty() {
        eprintln!(
            "gateway: no --artifacts given: every version will answer 502 until its zip is passed"
        );
    } else if args.verbose {
        eprintln!("gateway: {} zip(s) indexed by CodeSha256", artifacts.len());
    }
    // One thread: a request's hand-overs (the client's connection, an instance's Runtime API
    // connection, back) then never wake another thread. Measured with bench/gateway.sh, the
    // worker-thread scheduler added about 0.15 ms to the p50 and gained under 10% in requests
    // a second. The one blocking step, unpacking a version's zip on its first request, runs
    // once per version.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, environments, resources, artifacts, chaos)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    args: Args,
    environments: rollout::Environments,
    resources: resources::Resources,
    artifacts: artifacts::Artifacts,
    chaos: chaos::Chaos,
) -> Result<()> {
    let project = environments.project.clone();
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| project.region.clone());
    let config = aws_https::defaults()
        .region(aws_config::Region::new(region.clone()))
        .load()
        .await;
    let reader = stack::Reader {
        lambda: aws_sdk_lambda::Client::new(&config),
        apigw: aws_sdk_apigateway::Client::new(&config),
        functions: stack::functions(&project),
        rest_api_name: project.rest_api_name.clone(),
    };
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS".into());

    let api_id = reader
        .rest_api_id()
        .await
        .with_context(|| format!("reading the stack at {endpoint} in {region}"))?;
    let shared = stack::Shared::default();
    shared.set(
        reader
            .read(&api_id, &stack::Snapshot::default())
            .await
            .with_context(|| format!("reading the stack at {endpoint} in {region}"))?,
    );

    let alarm_names = alarms::stack_alarm_names(&environments);
    let longest = environments
        .stages
        .iter()
        .flat_map(|s| &s.alarms)
        .map(|a| u64::from(a.period_seconds) * u64::from(a.evaluation_periods + 1))
        .max()
        .unwrap_or(600);
    let retain = Duration::from_secs_f64(longest as f64 / args.time_scale + 5.0);
    let metrics = Arc::new(metrics::Metrics::new(retain));
    let (stop_tx, stop_rx) = watch::channel(false);
    let guardian = match &args.guardian {
        Some(path) => Some(
            guardian::Guardian::start(
                path,
                &args.environments,
                &region,
                args.time_scale,
                args.verbose,
                stop_rx.clone(),
            )
            .context("starting the guardian")?,
        ),
        None => None,
    };

    let gateway = Arc::new(server::Gateway::new(
        shared.clone(),
        &project,
        resources,
        region.clone(),
        artifacts,
        chaos,
        metrics.clone(),
        args.verbose,
        args.max_instances,
        stop_rx.clone(),
    ));

    // S3 event notifications, delivered to the aliases the buckets name.
    let mut watcher =
        s3_watch::Watcher::new(s3_watch::client(&config), gateway.clone(), args.time_scale);
    if let Err(e) = watcher.baseline(&stop_rx).await {
        eprintln!("gateway: S3 events: {e:#}; objects are watched from when S3 answers");
    }
    let events = tokio::spawn(watcher.run(stop_rx.clone()));

    // The stack, re-read so that a moved alias is served within a second.
    let refresher = {
        let shared = shared.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(stack::REFRESH_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match reader.read(&api_id, &shared.get()).await {
                    Ok(s) => {
                        failing = false;
                        shared.set(s);
                    }
                    Err(e) if !failing => {
                        failing = true;
                        eprintln!(
                            "gateway: {e:#}; serving the last stack read until it answers again"
                        );
                    }
                    Err(_) => {}
                }
            }
        })
    };

    // Metrics to CloudWatch, about once a second, and once more on the way out.
    let publisher = {
        let metrics = metrics.clone();
        let cloudwatch = cloudwatch.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = stop.wait_for(|s| *s) => true,
                };
                let batch = metrics.take_pending();
                if !batch.is_empty()
                    && let Err(e) = metrics::put(&cloudwatch, &batch, clock::now_millis()).await
                {
                    eprintln!("gateway: {e:#}");
                }
                if stopping {
                    return;
                }
            }
        })
    };

    // The stages' alarms, evaluated over what was emitted.
    let evaluator = {
        let metrics = metrics.clone();
        let mut stop = stop_rx.clone();
        let every = alarms::tick(
            environments
                .stages
                .iter()
                .flat_map(|s| &s.alarms)
                .map(|a| a.period_seconds),
            args.time_scale,
        );
        let time_scale = args.time_scale;
        let verbose = args.verbose;
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match alarms::evaluate_once(
                    &cloudwatch,
                    &alarm_names,
                    &metrics,
                    time_scale,
                    clock::now_millis(),
                )
                .await
                {
                    Ok(changes) => {
                        failing = false;
                        for (name, state) in changes {
                            if verbose {
                                eprintln!("gateway: alarm {name} -> {state:?}");
                            }
                            if let Some(g) = &guardian {
                                g.alarm_changed(&name, None, state);
                            }
                        }
                    }
                    Err(e) if !failing => {
                        failing = true;
                        eprintln!("gateway: alarm evaluation: {e:#}");
                    }
                    Err(_) => {}
                }
            }
        })
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{bound}")?;
        out.flush()?;
    }

    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{function}/invocations",
            axum::routing::post(invoke_api::invoke),
        )
        .route(
            "/2015-03-31/{*rest}",
            axum::routing::any(invoke_api::elsewhere),
        )
        .fallback(server::handle)
        .with_state(gateway.clone());
    // Small answers: Nagle could hold a response's last segment for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal());
    serve.await.context("serving")?;

    let _ = stop_tx.send(true);
    // Bounded: a stuck AWS call must not keep the process alive after a signal.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = publisher.await;
        let _ = refresher.await;
        let _ = evaluator.await;
        let _ = events.await;
    })
    .await;
    drop(gateway);
    Ok(())
}

async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
