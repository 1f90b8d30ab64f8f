//! `promote probe`: open-loop synthetic traffic against a stage (or any URL), each answer
//! attributed to the version that served it and each version's share checked against the
//! alias's weights. The engine and the statistics are the `probe` crate; this is the
//! command: where to send, what split to expect, progress, the report and the plot.

use std::path::PathBuf;
use std::time::Duration;

use crate::evidence::probe_source::reachable;
use ::probe::http::{Http, target};
use ::probe::{Config, Schedule, Split, Stats, Transport};
use anyhow::{Context, Result};
use rollout::AliasView;

use crate::cli::exit::Exit;
use crate::cli::interrupt::Interrupt;
use crate::cli::ui::Ui;
use crate::cloud::aws::{AliasStore, Cloud};
use crate::ctx::Ctx;

#[derive(Debug, Clone)]
pub struct ProbeOpts {
    pub stage: Option<String>,
    pub url: Option<String>,
    pub rate: f64,
    pub duration: Duration,
    pub path: String,
    pub timeout: Duration,
    pub plot: Option<PathBuf>,
    /// Invoke the stage's alias through Lambda's Invoke API (at `url`, if given) instead of
    /// requesting its URL: every answer names the version that ran, a crash included.
    pub invoke: bool,
}

/// How often the progress line is redrawn and the alias re-read for weight changes.
const TICK: Duration = Duration::from_millis(500);

/// The shares the alias gives its versions.
pub fn split_of(view: &AliasView) -> Split {
    match view.split {
        None => Split(vec![(view.version.to_string(), 1.0)]),
        Some(s) => {
            let w = s.weight.fraction();
            Split(vec![
                (view.version.to_string(), 1.0 - w),
                (s.version.to_string(), w),
            ])
        }
    }
}

/// `--stage S` (its invoke URL unless `--url` is given, and its alias's weights).
pub async fn probe<C: Cloud>(ctx: &Ctx<'_, C>, o: ProbeOpts) -> Result<()> {
    let stage = o.stage.clone().context("probe: no --stage")?;
    let target = ctx
        .cloud
        .resolve(&stage)
        .await
        .with_context(|| format!("stage {stage}: finding its invoke URL and alias"))?;
    let alias = Some((ctx.cloud, target.alias.as_str()));
    if o.invoke {
        let function = &ctx.function;
        let label = format!("{function}:{} by Invoke", target.alias);
        let title = match &o.url {
            Some(u) => format!("stage {stage} (alias {}) by Invoke at {u}", target.alias),
            None => format!("stage {stage} (alias {}) by Invoke", target.alias),
        };
        let schedule = schedule(&o)?;
        if let Some(u) = &o.url {
            let uri = target_uri(u, "/")?;
            reachable(&uri, ToString::to_string).await?;
        }
        let invoke = crate::evidence::probe_invoke::Invoke::new(
            function,
            &target.alias,
            &stage,
            &o.path,
            o.url.as_deref(),
            o.timeout,
        )
        .await;
        return run(
            ctx.ui,
            ctx.interrupt,
            &label,
            &title,
            schedule,
            invoke,
            alias,
            &o,
        )
        .await;
    }
    let base = o.url.clone().unwrap_or(target.invoke_url.clone());
    let title = match &o.url {
        Some(u) => format!("stage {stage} (alias {}) at {u}", target.alias),
        None => format!("stage {stage} (alias {})", target.alias),
    };
    run_http(ctx.ui, ctx.interrupt, &base, &title, alias, &o).await
}

/// `--url URL` alone: no AWS, no expected split.
pub async fn probe_url(ui: &Ui, interrupt: &Interrupt, o: ProbeOpts) -> Result<()> {
    let base = o.url.clone().context("probe: no --url")?;
    run_http(
        ui,
        interrupt,
        &base,
        &base,
        None::<(&crate::cloud::aws::Aws, &str)>,
        &o,
    )
    .await
}

fn schedule(o: &ProbeOpts) -> Result<Schedule> {
    Ok(Schedule::new(o.rate, o.duration).map_err(|e| Exit::BadInput(format!("probe: {e}")))?)
}

fn target_uri(base: &str, path: &str) -> Result<::probe::http::Uri> {
    Ok(target(base, path).map_err(|e| Exit::BadInput(e.to_string()))?)
}

/// Requests `path` under `base` (a bad URL is said before a bad schedule).
async fn run_http<A: AliasStore>(
    ui: &Ui,
    interrupt: &Interrupt,
    base: &str,
    title: &str,
    alias: Option<(&A, &str)>,
    o: &ProbeOpts,
) -> Result<()> {
    let uri = target_uri(base, &o.path)?;
    let schedule = schedule(o)?;
    reachable(&uri, ToString::to_string).await?;
    let http = Http::new(uri.clone(), ::probe::engine::DEFAULT_MAX_IN_FLIGHT);
    run(
        ui,
        interrupt,
        &uri.to_string(),
        title,
        schedule,
        http,
        alias,
        o,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run<A: AliasStore, T: Transport>(
    ui: &Ui,
    interrupt: &Interrupt,
    target: &str,
    title: &str,
    schedule: Schedule,
    transport: T,
    alias: Option<(&A, &str)>,
    o: &ProbeOpts,
) -> Result<()> {
    let mut stats = Stats::new(o.rate);
    if let Some((store, name)) = alias {
        let view = store
            .get_alias(name)
            .await
            .with_context(|| format!("reading alias {name} for the split to expect"))?
            .view;
        ui.say(format!("alias {name}: {view}"));
        stats.split_from(Duration::ZERO, split_of(&view));
    }
    ui.say(format!(
        "probing {target} at {}/s for {} ({} requests, open loop)",
        o.rate,
        rollout::format_duration(o.duration),
        schedule.count()
    ));

    let config = Config {
        schedule,
        timeout: o.timeout,
        max_in_flight: ::probe::engine::DEFAULT_MAX_IN_FLIGHT,
    };
    let mut running = ::probe::start(config, transport);
    let mut tick = tokio::time::interval(TICK);
    let mut interrupted = false;
    let mut alias_errors = 0u32;
    let sending_ends = config.schedule.span();
    loop {
        // While requests are still being sent, answers are taken in a batch at each tick:
        // waking this task for every answer cost CPU per request (bench/probe.sh). Then
        // the last ones are taken as they come, so the report follows the last answer.
        let tail = interrupted || running.elapsed() > sending_ends;
        tokio::select! {
            outcome = running.outcomes.recv(), if tail => match outcome {
                Some(o) => stats.record(&o),
                None => break,
            },
            _ = tick.tick() => {
                while let Ok(o) = running.outcomes.try_recv() {
                    stats.record(&o);
                }
                if interrupt.is_set() && !interrupted {
                    interrupted = true;
                    running.stop();
                }
                if let Some((store, name)) = alias {
                    // A failed read only loses a weight change's exact time; say it once.
                    match store.get_alias(name).await {
                        Ok(a) => stats.split_from(running.elapsed(), split_of(&a.view)),
                        Err(e) => {
                            alias_errors += 1;
                            if alias_errors == 1 {
                                ui.say(format!("warning: reading alias {name}: {e:#}"));
                            }
                        }
                    }
                }
                let (key, line) = progress(&stats, running.elapsed(), o.duration, config.schedule.count());
                ui.progress(&key, &line);
            }
        }
    }
    ui.end_progress();

    let report = stats.report();
    if let Some(path) = &o.plot {
        let page = ::probe::plot::html(title, &stats, &report);
        std::fs::write(path, page)
            .with_context(|| format!("writing the plot to {}", path.display()))?;
        ui.say(format!("plot written to {}", path.display()));
    }
    ui.emit_result(
        format!("{title}\n{}", report.text()),
        &crate::cli::events::ProbeReport {
            target: target.to_string(),
            title: title.to_string(),
            report: &report,
        },
    );
    if interrupted {
        return Err(Exit::Interrupted(format!(
            "probe stopped after {} of {} requests; the report above covers them",
            report.requests,
            config.schedule.count()
        ))
        .into());
    }
    Ok(())
}

/// The progress line, and its key: a log gets a plain line every 5 s of the run.
fn progress(stats: &Stats, elapsed: Duration, duration: Duration, total: u64) -> (String, String) {
    let r = stats.report();
    let shares: Vec<String> = r
        .versions
        .iter()
        .filter(|(_, v)| v.requests > 0)
        .map(|(name, v)| format!("v{name} {:.1}%", v.share * 100.0))
        .collect();
    let p99 = r
        .latency_ms
        .map_or("-".to_string(), |l| format!("{:.1}ms", l.p99));
    let line = format!(
        "probe {:>5.1}s/{}  {}/{} answered  success {:.2}%  p99 {p99}  {}",
        elapsed.as_secs_f64().min(duration.as_secs_f64()),
        rollout::format_duration(duration),
        r.requests,
        total,
        r.success * 100.0,
        shares.join(" ")
    );
    ((elapsed.as_secs() / 5).to_string(), line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ui::Format;
    use crate::cloud::fake::{Fake, view};
    use ::probe::testing::{serve, split_rule};

    fn opts(url: &str) -> ProbeOpts {
        ProbeOpts {
            stage: None,
            url: Some(url.to_string()),
            rate: 200.0,
            duration: Duration::from_secs(1),
            path: "/".into(),
            timeout: Duration::from_secs(5),
            plot: None,
            invoke: false,
        }
    }

    #[test]
    fn the_split_is_read_from_the_alias() {
        assert_eq!(split_of(&view(3, None)), Split(vec![("3".into(), 1.0)]));
        let s = split_of(&view(3, Some((4, "10"))));
        assert_eq!(s.share_of("4"), 0.1);
        assert!((s.share_of("3") - 0.9).abs() < 1e-12);
    }

    #[tokio::test]
    async fn json_report_attributes_every_answer_and_checks_the_split() {
        let server = serve(split_rule("3", "4", 10), None).await;
        let fake = Fake::seeded(&crate::cloud::fake::env());
        fake.set_alias("live", view(3, Some((4, "10"))));
        let ui = Ui::capture(Format::Json);
        let interrupt = Interrupt::default();
        run_http(
            &ui,
            &interrupt,
            &server.url(),
            "test",
            Some((&fake, "live")),
            &opts(&server.url()),
        )
        .await
        .unwrap();
        let (stdout, stderr) = ui.output();
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "one JSON object: {stdout}");
        let r = &lines[0];
        assert_eq!(
            (r["v"].as_u64(), r["event"].as_str()),
            (Some(1), Some("probe_report"))
        );
        assert_eq!(r["requests"], 200);
        assert_eq!(r["target"], format!("{}/", server.url()));
        assert_eq!(r["success"], 1.0);
        for k in ["p50", "p90", "p99", "max"] {
            assert!(
                r["latency_ms"][k].as_f64().is_some_and(|x| x > 0.0),
                "{k}: {r}"
            );
        }
        let candidate = &r["versions"]["4"];
        assert_eq!(candidate["requests"], 20);
        assert_eq!(candidate["share"], 0.1);
        assert_eq!(candidate["expected_share"], 0.1);
        let ci = candidate["share_ci"].as_array().unwrap();
        assert!(
            ci[0].as_f64().unwrap() < 0.1 && ci[1].as_f64().unwrap() > 0.1,
            "{ci:?}"
        );
        assert_eq!(r["versions"]["3"]["requests"], 180);
        assert!(
            stderr.contains("alias live: version 3 with version 4 at 10%"),
            "{stderr}"
        );
        assert!(stderr.contains("probe "), "a progress line: {stderr}");
    }

    #[tokio::test]
    async fn the_table_report_calls_out_a_split_the_alias_does_not_give() {
        // The alias says 10%; the server gives version 4 half the traffic.
        let server = serve(split_rule("3", "4", 2), None).await;
        let fake = Fake::seeded(&crate::cloud::fake::env());
        fake.set_alias("live", view(3, Some((4, "10"))));
        let ui = Ui::capture(Format::Table);
        let o = opts(&server.url());
        run_http(
            &ui,
            &Interrupt::default(),
            &server.url(),
            "live",
            Some((&fake, "live")),
            &o,
        )
        .await
        .unwrap();
        let (stdout, _) = ui.output();
        assert!(
            stdout.contains("Requests      [total, rate, throughput]"),
            "{stdout}"
        );
        assert!(
            stdout.contains("warning: version 4 served 50.00%")
                && stdout.contains("traffic is not going where the alias says"),
            "{stdout}"
        );
    }

    #[tokio::test]
    async fn bad_targets_and_schedules_are_bad_input_an_unreachable_url_an_error() {
        let ui = Ui::capture(Format::Table);
        let i = Interrupt::default();
        let code = |e: anyhow::Error| (crate::cli::exit::code_of(&e), format!("{e:#}"));
        let (c, m) = code(
            probe_url(&ui, &i, opts("localhost:3000"))
                .await
                .unwrap_err(),
        );
        assert_eq!(c, 2, "{m}");
        assert!(m.contains("http:// or https://"), "{m}");
        let mut short = opts("http://127.0.0.1:1");
        short.rate = 0.5;
        let (c, m) = code(probe_url(&ui, &i, short).await.unwrap_err());
        assert_eq!(c, 2, "{m}");
        assert!(m.contains("less than one request"), "{m}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (c, m) = code(
            probe_url(&ui, &i, opts(&format!("http://127.0.0.1:{port}")))
                .await
                .unwrap_err(),
        );
        assert_eq!(c, 1, "{m}");
        assert!(
            m.contains("cannot reach") && m.contains("is the server running"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn the_plot_is_written_with_the_report() {
        let server = serve(split_rule("3", "4", 10), None).await;
        let dir = std::env::temp_dir().join(format!("probe-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.html");
        let mut o = opts(&server.url());
        o.plot = Some(file.clone());
        let ui = Ui::capture(Format::Table);
        probe_url(&ui, &Interrupt::default(), o).await.unwrap();
        let page = std::fs::read_to_string(&file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            page.contains("<svg") && page.contains("version 4"),
            "{page}"
        );
    }
}
