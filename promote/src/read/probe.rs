//! `promote probe`: open-loop synthetic traffic against a stage (or any URL), each answer
//! attributed to the version that served it and each version's share checked against the
//! alias's weights. On a stage of several functions each function gets its own probe
//! request (project.json `functions[].probe`) on its own schedule, its answers attributed to
//! its versions and checked against its alias; `--path` probes one path, for the function
//! whose routes serve it. The engine and the statistics are the `probe` crate; this is the
//! command: where to send, what split to expect, progress, the reports and the plots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::evidence::probe_call::{InvokeAt, ProbeCall};
use crate::evidence::probe_source::{reachable, start_call};
use crate::evidence::probe_upload::{Upload, UploadAt, run_id};
use ::probe::http::target;
use ::probe::{Config, Running, Schedule, Split, Stats};
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
    /// Requests a second, to each function probed.
    pub rate: f64,
    pub duration: Duration,
    /// `--path`: a `GET` of this path, for the one function that serves it. `None`: each
    /// function's own probe request (with `--url` alone, `GET /`).
    pub path: Option<String>,
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

/// One function's probe of a run: what it sends, where its answers are counted, and whose
/// alias gives the split to expect.
struct Lane<'a, A> {
    /// `None` for a URL alone.
    function: Option<String>,
    target: String,
    title: String,
    alias: Option<(&'a A, &'a str)>,
    running: Running,
    stats: Stats,
    count: u64,
    /// Every outcome is in.
    done: bool,
    alias_errors: u32,
}

/// The functions a stage's probe sends to: `--path`'s one (whose routes serve the path, else
/// the project's first), or every function with its own probe request.
pub fn calls(project: &rollout::Project, path: Option<&str>) -> Vec<(String, ProbeCall)> {
    match path {
        Some(p) => {
            let f = project
                .function_serving(p)
                .unwrap_or_else(|| project.main_function());
            vec![(f.name.clone(), ProbeCall::get(p))]
        }
        None => project
            .functions
            .iter()
            .filter_map(|f| Some((f.name.clone(), ProbeCall::of(f.probe_request()?))))
            .collect(),
    }
}

/// `--stage S` (its invoke URL unless `--url` is given, and each function's alias weights).
/// `clouds` is each function's connection, by name.
pub async fn probe<C: Cloud>(ctx: &Ctx<'_, C>, clouds: &[(&str, &C)], o: ProbeOpts) -> Result<()> {
    let stage = o.stage.clone().context("probe: no --stage")?;
    let target = ctx
        .cloud
        .resolve(&stage)
        .await
        .with_context(|| format!("stage {stage}: finding its invoke URL and alias"))?;
    let calls = calls(&ctx.env.project, o.path.as_deref());
    let schedule = schedule(&o)?;
    let config = config(schedule, &o);
    let mut lanes = Vec::new();
    for (function, call) in &calls {
        let cloud = clouds
            .iter()
            .find(|(f, _)| f == function)
            .map_or(ctx.cloud, |(_, c)| *c);
        let alias = Some((cloud, target.alias.as_str()));
        let (label, title, running) = if o.invoke {
            let at = InvokeAt {
                function: function.clone(),
                alias: target.alias.clone(),
                stage: stage.clone(),
                variables: target.variables.clone(),
            };
            let label = format!(
                "{} {} by Invoke of {function}:{}",
                call.method, call.path, target.alias
            );
            let title = match &o.url {
                Some(u) => format!("stage {stage} (alias {}) by Invoke at {u}", target.alias),
                None => format!("stage {stage} (alias {}) by Invoke", target.alias),
            };
            let url = o.url.clone().unwrap_or_default();
            let running = start_call(config, call, &url, Some(&at), ToString::to_string).await?;
            (label, title, running)
        } else {
            let base = o.url.clone().unwrap_or(target.invoke_url.clone());
            let uri = target_uri(&base, &call.path)?;
            let title = match &o.url {
                Some(u) => format!("stage {stage} (alias {}) at {u}", target.alias),
                None => format!("stage {stage} (alias {})", target.alias),
            };
            let running = start_call(config, call, &base, None, ToString::to_string).await?;
            (format!("{} {uri}", call.method), title, running)
        };
        let title = if ctx.env.project.functions.len() > 1 {
            format!("function {function}: {title}")
        } else {
            title
        };
        lanes.push(Lane {
            // Named on a project of several functions (CONTRACTS.md, "JSON event stream").
            function: (ctx.env.project.functions.len() > 1).then(|| function.clone()),
            target: label,
            title,
            alias,
            running,
            stats: call.stats(o.rate),
            count: schedule.count(),
            done: false,
            alias_errors: 0,
        });
    }
    // The functions S3 events trigger, probed by uploads to the stage's trigger bucket (with
    // or without --invoke: no request reaches them); not with --path, which names a route.
    let uploads = ctx
        .env
        .project
        .functions
        .iter()
        .filter_map(|f| match &f.probe {
            rollout::Probe::Upload(u) if o.path.is_none() => Some((f.name.as_str(), u)),
            _ => None,
        });
    for (function, u) in uploads {
        let cloud = clouds
            .iter()
            .find(|(f, _)| *f == function)
            .map_or(ctx.cloud, |(_, c)| *c);
        let at = UploadAt::resolve(u, &stage, &target.variables, &run_id())
            .map_err(|e| Exit::BadInput(format!("probe: function {function}: {e}")))?;
        let label = format!(
            "PUT s3://{}/{}N, then its summary s3://{}/{}N.json",
            at.bucket, at.prefix, at.summaries, at.prefix
        );
        // Each upload waits for its summary up to the deadline.
        let config = Config {
            timeout: o.timeout.max(at.deadline + Duration::from_secs(1)),
            ..config
        };
        let running = ::probe::start(config, Upload::new(at).await);
        lanes.push(Lane {
            function: Some(function.to_string()),
            target: label,
            title: format!(
                "function {function}: stage {stage} (alias {}) by uploads",
                target.alias
            ),
            alias: Some((cloud, target.alias.as_str())),
            running,
            stats: Stats::new(o.rate).expecting(200),
            count: schedule.count(),
            done: false,
            alias_errors: 0,
        });
    }
    run(ctx.ui, ctx.interrupt, lanes, &o).await
}

/// `--url URL` alone: no AWS, no expected split; `GET` of `--path` (or `/`).
pub async fn probe_url(ui: &Ui, interrupt: &Interrupt, o: ProbeOpts) -> Result<()> {
    let base = o.url.clone().context("probe: no --url")?;
    let call = ProbeCall::get(o.path.as_deref().unwrap_or("/"));
    let uri = target_uri(&base, &call.path)?;
    let schedule = schedule(&o)?;
    reachable(&uri, ToString::to_string).await?;
    let running = start_call(
        config(schedule, &o),
        &call,
        &base,
        None,
        ToString::to_string,
    )
    .await?;
    let lane: Lane<'_, crate::cloud::aws::Aws> = Lane {
        function: None,
        target: uri.to_string(),
        title: base.clone(),
        alias: None,
        running,
        stats: call.stats(o.rate),
        count: schedule.count(),
        done: false,
        alias_errors: 0,
    };
    run(ui, interrupt, vec![lane], &o).await
}

fn schedule(o: &ProbeOpts) -> Result<Schedule> {
    Ok(Schedule::new(o.rate, o.duration).map_err(|e| Exit::BadInput(format!("probe: {e}")))?)
}

fn config(schedule: Schedule, o: &ProbeOpts) -> Config {
    Config {
        schedule,
        timeout: o.timeout,
        max_in_flight: ::probe::engine::DEFAULT_MAX_IN_FLIGHT,
    }
}

fn target_uri(base: &str, path: &str) -> Result<::probe::http::Uri> {
    Ok(target(base, path).map_err(|e| Exit::BadInput(e.to_string()))?)
}

/// `--plot FILE.html` of one function among several: `FILE-FUNCTION.html`.
fn plot_path(plot: &Path, function: Option<&str>, several: bool) -> PathBuf {
    match function {
        Some(f) if several => {
            let stem = plot
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let ext = plot
                .extension()
                .map_or_else(|| "html".to_string(), |e| e.to_string_lossy().into_owned());
            plot.with_file_name(format!("{stem}-{f}.{ext}"))
        }
        _ => plot.to_path_buf(),
    }
}

async fn run<A: AliasStore>(
    ui: &Ui,
    interrupt: &Interrupt,
    mut lanes: Vec<Lane<'_, A>>,
    o: &ProbeOpts,
) -> Result<()> {
    let several = lanes.len() > 1;
    for lane in &mut lanes {
        if let Some((store, name)) = lane.alias {
            let view = store
                .get_alias(name)
                .await
                .with_context(|| format!("reading alias {name} for the split to expect"))?
                .view;
            match &lane.function {
                Some(f) => ui.say(format!("alias {name} of {f}: {view}")),
                None => ui.say(format!("alias {name}: {view}")),
            }
            lane.stats.split_from(Duration::ZERO, split_of(&view));
        }
        ui.say(format!(
            "probing {} at {}/s for {} ({} requests, open loop)",
            lane.target,
            o.rate,
            rollout::format_duration(o.duration),
            lane.count
        ));
    }
    let mut tick = tokio::time::interval(TICK);
    let mut interrupted = false;
    let sending_ends = Schedule::new(o.rate, o.duration)
        .map(|s| s.span())
        .unwrap_or_default();
    // While requests are still being sent, answers are taken in a batch at each tick:
    // waking this task for every answer cost CPU per request (bench/probe.sh). Then the last
    // ones are taken as they come, lane after lane, so the reports follow the last answer.
    while let Some(open) = lanes.iter().position(|l| !l.done) {
        let tail = interrupted || lanes[open].running.elapsed() > sending_ends;
        let lane = &mut lanes[open];
        tokio::select! {
            outcome = lane.running.outcomes.recv(), if tail => match outcome {
                Some(o) => lane.stats.record(&o),
                None => lane.done = true,
            },
            _ = tick.tick() => {
                for lane in lanes.iter_mut() {
                    while let Ok(o) = lane.running.outcomes.try_recv() {
                        lane.stats.record(&o);
                    }
                    if interrupt.is_set() && !interrupted {
                        lane.running.stop();
                    }
                    if let Some((store, name)) = lane.alias {
                        // A failed read only loses a weight change's exact time; say it once.
                        match store.get_alias(name).await {
                            Ok(a) => lane.stats.split_from(lane.running.elapsed(), split_of(&a.view)),
                            Err(e) => {
                                lane.alias_errors += 1;
                                if lane.alias_errors == 1 {
                                    ui.say(format!("warning: reading alias {name}: {e:#}"));
                                }
                            }
                        }
                    }
                }
                if interrupt.is_set() {
                    interrupted = true;
                }
                let elapsed = lanes[0].running.elapsed();
                let parts: Vec<String> = lanes
                    .iter()
                    .map(|l| {
                        let line = progress(&l.stats, l.count);
                        match (&l.function, several) {
                            (Some(f), true) => format!("{f}: {line}"),
                            _ => line,
                        }
                    })
                    .collect();
                let line = format!(
                    "probe {:>5.1}s/{}  {}",
                    elapsed.as_secs_f64().min(o.duration.as_secs_f64()),
                    rollout::format_duration(o.duration),
                    parts.join("  |  ")
                );
                ui.progress(&(elapsed.as_secs() / 5).to_string(), &line);
            }
        }
    }
    ui.end_progress();

    let mut answered = 0;
    let mut scheduled = 0;
    for lane in &lanes {
        let report = lane.stats.report();
        answered += report.requests;
        scheduled += lane.count;
        if let Some(path) = &o.plot {
            let path = plot_path(path, lane.function.as_deref(), several);
            let page = ::probe::plot::html(&lane.title, &lane.stats, &report);
            std::fs::write(&path, page)
                .with_context(|| format!("writing the plot to {}", path.display()))?;
            ui.say(format!("plot written to {}", path.display()));
        }
        ui.emit_result(
            format!("{}\n{}", lane.title, report.text()),
            &crate::cli::events::ProbeReport {
                function: lane.function.clone(),
                target: lane.target.clone(),
                title: lane.title.clone(),
                report: &report,
            },
        );
    }
    if interrupted {
        return Err(Exit::Interrupted(format!(
            "probe stopped after {answered} of {scheduled} requests; the report above covers them"
        ))
        .into());
    }
    Ok(())
}

/// One lane's part of the progress line (a log gets a plain line every 5 s of the run).
fn progress(stats: &Stats, total: u64) -> String {
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
    format!(
        "{}/{} answered  success {:.2}%  p99 {p99}  {}",
        r.requests,
        total,
        r.success * 100.0,
        shares.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ui::Format;
    use crate::cloud::fake::{Fake, view};
    use ::probe::testing::{serve, serve_requests, split_rule};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn opts(url: &str) -> ProbeOpts {
        ProbeOpts {
            stage: None,
            url: Some(url.to_string()),
            rate: 200.0,
            duration: Duration::from_secs(1),
            path: None,
            timeout: Duration::from_secs(5),
            plot: None,
            invoke: false,
        }
    }

    /// `--stage live --url URL --path P`.
    fn stage_opts(url: &str, path: &str) -> ProbeOpts {
        ProbeOpts {
            stage: Some("live".into()),
            path: Some(path.into()),
            ..opts(url)
        }
    }

    fn ctx<'a>(
        env: &'a rollout::Environments,
        fake: &'a Fake,
        ui: &'a Ui,
        interrupt: &'a Interrupt,
    ) -> Ctx<'a, Fake> {
        Ctx {
            cloud: fake,
            env,
            ui,
            interrupt,
            function: &env.project.main_function().name,
        }
    }

    #[test]
    fn a_path_is_probed_for_the_function_that_serves_it_else_each_functions_request() {
        let env = crate::cloud::fake::env();
        let names = |path| {
            calls(&env.project, path)
                .into_iter()
                .map(|(f, c)| format!("{f}: {}", c.describe()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(None),
            [
                "app: GET /build-info (expects 200)",
                "birthday: PUT /hello/probe (expects 204)"
            ]
        );
        assert_eq!(names(Some("/hello/nando")), ["birthday: GET /hello/nando"]);
        assert_eq!(names(Some("/")), ["app: GET /"]);
        // A path no route serves is still probed, as the first function's.
        assert_eq!(names(Some("/nowhere")), ["app: GET /nowhere"]);
    }

    #[tokio::test]
    async fn each_function_gets_its_own_request_and_its_answers_are_checked_against_its_alias() {
        // app's /build-info answers 200 from versions 3 and 4 (every tenth), birthday's PUT
        // answers 204 from versions 7 and 8 (every other): each function's versions in its
        // own report, against its own alias.
        // Counted per route: the server's own count interleaves both functions' requests.
        let (puts, gets) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let rule: ::probe::testing::RequestRule = Arc::new(move |_, r| {
            if r.line.starts_with("PUT /hello/probe ") && r.body.contains("dateOfBirth") {
                let n = puts.fetch_add(1, Ordering::Relaxed);
                (204, Some(if n % 2 == 0 { "8" } else { "7" }.into()))
            } else if r.line.starts_with("GET /build-info ") {
                let n = gets.fetch_add(1, Ordering::Relaxed);
                (200, Some(if n % 10 == 0 { "4" } else { "3" }.into()))
            } else {
                (404, None)
            }
        });
        let server = serve_requests(rule, None).await;
        let env = crate::cloud::fake::env();
        let (app, birthday) = (Fake::seeded(&env), Fake::seeded(&env));
        app.set_alias("live", view(3, Some((4, "10"))));
        birthday.set_alias("live", view(7, Some((8, "50"))));
        let ui = Ui::capture(Format::Json);
        let interrupt = Interrupt::default();
        let o = ProbeOpts {
            stage: Some("live".into()),
            ..opts(&server.url())
        };
        probe(
            &ctx(&env, &app, &ui, &interrupt),
            &[("app", &app), ("birthday", &birthday)],
            o,
        )
        .await
        .unwrap();
        let (stdout, stderr) = ui.output();
        let reports: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(reports.len(), 2, "{stdout}");
        let (a, b) = (&reports[0], &reports[1]);
        assert_eq!(
            (&a["function"], &b["function"]),
            (&"app".into(), &"birthday".into())
        );
        assert_eq!(a["target"], format!("GET {}/build-info", server.url()));
        assert_eq!(b["target"], format!("PUT {}/hello/probe", server.url()));
        for r in [a, b] {
            assert_eq!(r["requests"], 200, "{r}");
            assert_eq!(r["success"], 1.0, "{r}");
            assert_eq!(r["unattributed"]["requests"], 0, "{r}");
        }
        assert_eq!(b["expect_status"], 204);
        let versions = |r: &serde_json::Value| {
            r["versions"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(a), ["3", "4"]);
        assert_eq!(versions(b), ["7", "8"]);
        assert_eq!(a["versions"]["4"]["expected_share"], 0.1);
        assert_eq!(b["versions"]["8"]["expected_share"], 0.5);
        assert_eq!(b["versions"]["8"]["within_interval"], true, "{b}");
        assert!(
            a["title"]
                .as_str()
                .unwrap()
                .starts_with("function app: stage live")
        );
        assert!(
            stderr.contains("alias live of birthday: version 7 with version 8 at 50%"),
            "{stderr}"
        );
        let seen = server.received();
        let puts = seen.iter().filter(|r| r.line.starts_with("PUT ")).count();
        assert_eq!(puts, 200);
        assert!(
            seen.iter()
                .filter(|r| r.line.starts_with("PUT "))
                .all(|r| r.content_type.as_deref() == Some("application/json"))
        );
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
        let env = crate::cloud::fake::env();
        let ui = Ui::capture(Format::Json);
        let interrupt = Interrupt::default();
        probe(
            &ctx(&env, &fake, &ui, &interrupt),
            &[("app", &fake)],
            stage_opts(&server.url(), "/"),
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
        assert_eq!(r["target"], format!("GET {}/", server.url()));
        assert_eq!(r["function"], "app", "--path / is app's route: {r}");
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
            stderr.contains("alias live of app: version 3 with version 4 at 10%"),
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
        let env = crate::cloud::fake::env();
        let ui = Ui::capture(Format::Table);
        let interrupt = Interrupt::default();
        probe(
            &ctx(&env, &fake, &ui, &interrupt),
            &[("app", &fake)],
            stage_opts(&server.url(), "/build-info"),
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
