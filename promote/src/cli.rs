//! The command line (CONTRACTS.md, "promote CLI").

// What the command line shows and returns: the human and JSON output, the typed events of
// the JSON stream, the exit codes, and Ctrl-C.
pub mod events;
pub mod exit;
pub mod interrupt;
pub mod ui;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rollout::{Version, Weight};

use crate::cli::ui::Format;

const MAIN_EXAMPLES: &str = "\
Examples:
  promote status
  promote publish --zip target/lambda/app/bootstrap.zip
  promote deploy --stage dev --version 4
  promote canary --stage live                 # the whole step plan of environments/live.json
  promote canary --stage live --weight 10     # 10% to the candidate, bake, leave the split
  promote advance --stage live
  promote complete --stage live
  promote rollback --stage live

AWS endpoint, region and credentials come from the standard AWS environment
(AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, ...); the region falls back to
environments/project.json.";

/// The top-level help's closing text: examples, then every exit code by name.
fn main_help() -> String {
    format!("{MAIN_EXAMPLES}\n\n{}", exit::summary())
}

/// Moves published Lambda versions along the path to live (dev -> test -> live) by shifting
/// weighted alias traffic, and takes it back on its own when a CloudWatch alarm fires.
#[derive(Debug, Parser)]
#[command(name = "promote", version, after_help = main_help())]
pub struct Cli {
    /// Directory with project.json and one <stage>.json per stage
    #[arg(
        long,
        global = true,
        env = "PROMOTE_ENVIRONMENTS",
        hide_env_values = true,
        default_value = "environments",
        value_name = "DIR"
    )]
    pub environments: PathBuf,

    /// Output format: a table for people, or one JSON object per line for machines
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every stage in path order: stable and candidate versions with weight, semver and git
    /// sha, alarm states, invoke URL
    #[command(after_help = with_exit_codes("status", 
        "Examples:\n  promote status\n  promote status --stage live --output json"
    ))]
    Status(StatusArgs),

    /// Upload a deployment zip and publish it as a version described `<name> <semver> <sha>`
    /// from the artifact's own build stamp; identical code returns the existing version
    #[command(after_help = with_exit_codes("publish", 
        "Prints the version number on stdout (JSON: {\"version\", \"created\", \"name\", \"semver\", \"git_sha\"}).\n\n\
         Examples:\n  promote publish --zip target/lambda/app/bootstrap.zip\n  \
         V=$(promote publish --zip bootstrap.zip) && promote deploy --stage dev --version \"$V\""
    ))]
    Publish(PublishArgs),

    /// Move a stage to a version all at once (stages whose strategy is all_at_once), then
    /// watch its alarms for the bake time and move back if one fires
    #[command(after_help = with_exit_codes("deploy", 
        "Without --version, the version serving 100% of the upstream stage.\n\n\
         Examples:\n  promote deploy --stage dev --version 4\n  promote deploy --stage test --dry-run"
    ))]
    Deploy(DeployArgs),

    /// Shift traffic to a candidate in weighted steps, baking after each step while
    /// watching the stage's alarms; roll back on its own if one fires
    #[command(after_help = with_exit_codes("canary", 
        "Without --weight, runs the stage's whole step plan (e.g. 10 -> 50 -> 100) and ends with\n\
         the alias on the candidate and its routing cleared. With --weight W, routes W% to the\n\
         candidate, bakes, and exits leaving the split in place.\n\
         Run again after an interruption (even kill -9), it continues from the current weight.\n\n\
         Examples:\n  promote canary --stage live\n  promote canary --stage live --version 7 --weight 10 --bake 10m\n  \
         promote canary --stage live --dry-run"
    ))]
    Canary(CanaryArgs),

    /// Move a canary to its next step (or to --weight) and bake there watching the alarms;
    /// the step at 100% completes the promotion
    #[command(after_help = with_exit_codes("advance", 
        "An alarm firing during the bake takes the candidate's traffic back (exit 4).\n\n\
         Examples:\n  promote advance --stage live\n  promote advance --stage live --weight 25 --bake 10m"
    ))]
    Advance(AdvanceArgs),

    /// Send all traffic to the candidate and clear the routing; the alias description records
    /// the version served before, for `rollback --to-previous`
    #[command(after_help = with_exit_codes("complete", "Examples:\n  promote complete --stage live\n  promote complete --stage live --dry-run"))]
    Complete(StageArgs),

    /// Take the candidate's traffic back to 0% (clear the routing), or with --to-previous
    /// return the alias to the version it served before the last promotion
    #[command(after_help = with_exit_codes("rollback", 
        "Examples:\n  promote rollback --stage live\n  promote rollback --stage live --to-previous"
    ))]
    Rollback(RollbackArgs),

    /// A live view of a stage (versions, weight, alarms) refreshing until Ctrl-C
    #[command(after_help = with_exit_codes("watch", "Examples:\n  promote watch --stage live\n  promote watch --stage live --interval 2s"))]
    Watch(WatchArgs),

    /// Open-loop synthetic traffic: requests on a fixed schedule whatever the server does,
    /// each answer attributed to the version that served it, each version's share checked
    /// against the alias's weights
    #[command(after_help = with_exit_codes("probe", 
        "Latency is measured from each request's scheduled send time, so a stall shows in the\n\
         figures. Answers name their version in the x-app-version header; those without one\n\
         (e.g. a 502 from API Gateway) are counted as unattributed and estimated from the split;\n\
         with --invoke, Lambda names the version that ran in every answer, crashes included.\n\
         A share outside its 99% interval is called out. Prints a vegeta-like report (JSON:\n\
         one {\"event\": \"probe_report\"} object). Exits 0 once the run is over, whatever it saw;\n\
         the other codes are for a run that could not start or was stopped.\n\n\
         Examples:\n  promote probe --stage live --rate 100 --duration 20s\n  \
         promote probe --url http://127.0.0.1:3000 --path /build-info --plot probe.html\n  \
         promote probe --stage live --url http://127.0.0.1:8080/live --output json\n  \
         promote probe --stage live --invoke --url http://127.0.0.1:8080"
    ))]
    Probe(ProbeArgs),

    /// Validate the environments directory (every file against its schema, then the rules
    /// across fields and files) without AWS; every problem is listed at once
    #[command(after_help = with_exit_codes(
        "check",
        "Exits 0 and prints the stage order when the directory is valid; exits 2 with one line\n\
         per problem (file, field, what is wrong and what it takes) otherwise.\n\n\
         Examples:\n  promote check\n  promote check --environments path/to/environments --output json"
    ))]
    Check,
}

/// A subcommand's help text followed by the exit codes it can return.
fn with_exit_codes(command: &str, text: &str) -> String {
    format!("{text}\n\n{}", exit::help_for(command))
}

fn parse_weight(s: &str) -> Result<Weight, String> {
    Weight::parse_split(s).map_err(|e| e.to_string())
}

fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).map_err(|e| e.to_string())
}

fn parse_release_entry(s: &str) -> Result<(String, Version), String> {
    let (function, version) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not FUNCTION=N; name the function, such as app=4"))?;
    if function.is_empty() {
        return Err(format!("`{s}` names no function; such as app=4"));
    }
    Ok((function.to_string(), parse_version(version)?))
}

/// The longest `--bake`: a day. Longer ones outlive any CI job and any AWS session, and
/// an unbounded one overflowed the clock after the first write.
pub const MAX_BAKE: Duration = Duration::from_secs(24 * 3600);
/// `--poll` (and `watch --interval`) bounds: faster than 100ms only burns API quota;
/// slower than 5 minutes is not watching.
pub const MIN_POLL: Duration = Duration::from_millis(100);
pub const MAX_POLL: Duration = Duration::from_secs(300);

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = rollout::parse_duration(s)?;
    if d < MIN_POLL {
        return Err(format!("`{s}` is too short; give at least 100ms"));
    }
    if d > MAX_POLL {
        return Err(format!("`{s}` is too long; give at most 5m"));
    }
    Ok(d)
}

fn parse_bake(s: &str) -> Result<Duration, String> {
    let d = rollout::parse_duration(s)?;
    if d > MAX_BAKE {
        return Err(format!("`{s}` is too long; a bake is at most 24h"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// Stage name (an environments/<stage>.json file)
    #[arg(long, value_name = "S")]
    pub stage: String,
    /// Print exactly what would change and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this stage
    #[arg(long, value_name = "S")]
    pub stage: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The deployment zip (with a `bootstrap` entry carrying the build stamp); on a project of
    /// several functions, one FUNCTION=PATH per function to publish (repeatable), and the
    /// release is printed as FUNCTION=N pairs for `deploy --release`
    #[arg(long, value_name = "PATH", required = true)]
    pub zip: Vec<PathBuf>,
    /// Read the artifact and say what would be published; upload nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The guards a new candidate passes, and the flags that waive them (deploy, canary).
#[derive(Debug, Args, Clone, Default)]
pub struct GuardArgs {
    /// Allow a lower (or unknown) semver than the one the stage serves
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Roll out a version that was rolled back on this stage before
    #[arg(long)]
    pub retry: bool,
    /// The candidate of one function of a release, as FUNCTION=N (repeatable; the others
    /// come from the upstream stage): what `promote publish` printed for a project of
    /// several functions
    #[arg(long = "release", value_name = "FUNCTION=N", value_parser = parse_release_entry)]
    pub release: Vec<(String, Version)>,
    /// Let in a version the upstream stage has not served at 100% (otherwise refused, exit 3);
    /// needs --reason, recorded on the alias note
    #[arg(long, requires = "reason")]
    pub skip_upstream: bool,
    /// Why the upstream stage is skipped (with --skip-upstream; an empty reason is exit 2)
    #[arg(long, value_name = "TEXT", requires = "skip_upstream")]
    pub reason: Option<String>,
    /// An alarm already in ALARM does not refuse the rollout: the per-version metrics judge
    /// the candidate against the stable version instead (to ship a fix for a bad stable
    /// version), and a throttle-rate alarm firing later is left to their throttle comparison
    /// (the stage's capacity, not the candidate's); the stage's analysis.judge_relative for
    /// this run
    #[arg(long)]
    pub judge_relative: bool,
}

impl GuardArgs {
    /// `--skip-upstream --reason R`: R (an empty reason is refused later, with exit 2).
    pub fn skip_upstream(&self) -> Option<String> {
        self.skip_upstream
            .then(|| self.reason.clone().unwrap_or_default())
    }
}

/// How long to bake and how often to look (deploy, canary, advance).
#[derive(Debug, Args, Clone, Default)]
pub struct BakeArgs {
    /// Bake time after each move, overriding the stage's (30s, 5m, 1m30s, or seconds; 0 for
    /// none)
    #[arg(long, value_name = "DURATION", value_parser = parse_bake)]
    pub bake: Option<Duration>,
    /// How often to read the alarms while baking (default: the stage's poll interval, at most 5s)
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub poll: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Published version number (default: the version serving 100% upstream)
    #[arg(long, value_name = "N", value_parser = parse_version)]
    pub version: Option<Version>,
    #[command(flatten)]
    pub guards: GuardArgs,
    #[command(flatten)]
    pub bake: BakeArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Published version number (default: a canary already in flight, else the version
    /// serving 100% upstream)
    #[arg(long, value_name = "N", value_parser = parse_version)]
    pub version: Option<Version>,
    /// Percent of traffic for the candidate, 0 < W < 100 (default: the stage's whole step plan)
    #[arg(long, value_name = "W", value_parser = parse_weight)]
    pub weight: Option<Weight>,
    #[command(flatten)]
    pub bake: BakeArgs,
    #[command(flatten)]
    pub guards: GuardArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Debug, Args)]
pub struct AdvanceArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Percent of traffic for the candidate, above the current one and below 100
    /// (default: the next step of the stage's plan)
    #[arg(long, value_name = "W", value_parser = parse_weight)]
    pub weight: Option<Weight>,
    #[command(flatten)]
    pub bake: BakeArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Return the alias to the version it served before the last completed promotion
    #[arg(long)]
    pub to_previous: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Stage name (an environments/<stage>.json file)
    #[arg(long, value_name = "S")]
    pub stage: String,
    /// Refresh interval
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval)]
    pub interval: Duration,
}

/// The probe through a rollout's bakes (README, "The probe during a canary").
#[derive(Debug, Args, Clone, Default)]
pub struct EvidenceArgs {
    /// Probe the stage through every bake (open loop, each answer attributed to its
    /// version) and judge the candidate on it; as "probe" in the stage's analysis.sources
    #[arg(long)]
    pub probe: bool,
    /// The probe's requests a second (default: the stage's analysis.probe_rate, 10); implies --probe
    #[arg(long, value_name = "R", value_parser = parse_probe_rate)]
    pub probe_rate: Option<f64>,
    /// The base URL the probe sends to instead of the stage's invoke URL (e.g. the local
    /// gateway's http://127.0.0.1:PORT/live); implies --probe
    #[arg(long, value_name = "URL", value_parser = parse_probe_url)]
    pub probe_url: Option<String>,
    /// Probe by invoking the stage's alias through Lambda's Invoke API: every answer names the
    /// version that ran, a crash included (API Gateway's 502 names none). --probe-url is then
    /// the Invoke endpoint (e.g. the local gateway's http://127.0.0.1:PORT); implies --probe
    #[arg(long)]
    pub probe_invoke: bool,
}

/// Checked before anything is read from AWS; whether it answers is checked before the first
/// write.
fn parse_probe_url(s: &str) -> Result<String, String> {
    ::probe::http::target(s, "/")
        .map(|_| s.trim().to_string())
        .map_err(|e| e.to_string())
}

fn parse_probe_rate(s: &str) -> Result<f64, String> {
    let r = parse_rate(s)?;
    if r > rollout::config::MAX_PROBE_RATE {
        return Err(format!(
            "`{s}` is more than the {} requests a second a rollout's probe may send",
            rollout::config::MAX_PROBE_RATE
        ));
    }
    Ok(r)
}

/// A probe's rate: requests a second, a positive number.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 100_000.0 => Ok(r),
        Ok(r) if r > 100_000.0 => Err(format!("`{s}` is more than 100000 requests a second")),
        _ => Err(format!(
            "`{s}` is not a rate; give requests a second, a number above 0 (e.g. 50 or 0.5)"
        )),
    }
}

/// The longest probe: an hour (the samples are kept for the plot).
pub const MAX_PROBE: Duration = Duration::from_secs(3600);

fn parse_probe_duration(s: &str) -> Result<Duration, String> {
    let d = rollout::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` is no time at all; give e.g. 10s"));
    }
    if d > MAX_PROBE {
        return Err(format!("`{s}` is too long; a probe runs at most 1h"));
    }
    Ok(d)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = rollout::parse_duration(s)?;
    if d < MIN_POLL || d > Duration::from_secs(60) {
        return Err(format!("`{s}` is not a request timeout; give 100ms to 60s"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(true).args(["stage", "url"])))]
pub struct ProbeArgs {
    /// Stage to probe: its invoke URL, and its alias's weights as the split to expect; each
    /// function of the project with its own probe request (project.json functions[].probe)
    #[arg(long, value_name = "S")]
    pub stage: Option<String>,
    /// Base URL to probe (e.g. the local gateway's stage URL); with --stage, used instead of
    /// the stage's invoke URL
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Requests per second (to each function), sent on schedule whatever the answers
    #[arg(long, value_name = "R", default_value = "50", value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: f64,
    /// How long to send (30s, 5m, or seconds)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_probe_duration)]
    pub duration: Duration,
    /// GET this path under the base URL instead, for the one function whose routes serve it
    /// (default: each function's probe request; with --url alone, /)
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
    /// A request without a complete answer by then counts as a timeout
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Write latency over time, coloured by version, to this self-contained HTML file (one
    /// FILE-FUNCTION.html per function when several are probed)
    #[arg(long, value_name = "FILE.html")]
    pub plot: Option<PathBuf>,
    /// Invoke the stage's alias through Lambda's Invoke API instead of requesting its URL:
    /// every answer names the version that ran, a crash included (API Gateway's 502 names
    /// none). --url is then the Invoke endpoint (e.g. the local gateway's base URL)
    #[arg(long, requires = "stage")]
    pub invoke: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn help(sub: Option<&str>) -> String {
        let mut cmd = Cli::command().term_width(100);
        cmd.build();
        let c = match sub {
            Some(s) => cmd.find_subcommand_mut(s).unwrap().clone(),
            None => cmd,
        };
        let mut c = c.term_width(100);
        c.render_long_help().to_string()
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_snapshots() {
        insta::assert_snapshot!("help", help(None));
        for sub in [
            "status", "publish", "deploy", "canary", "advance", "complete", "rollback", "watch",
            "probe",
        ] {
            insta::assert_snapshot!(format!("help_{sub}"), help(Some(sub)));
        }
    }

    #[test]
    fn every_help_documents_the_exit_codes() {
        for sub in [
            "status", "publish", "deploy", "canary", "advance", "complete", "rollback", "watch",
            "probe",
        ] {
            let h = help(Some(sub));
            assert!(
                h.ends_with(&format!("{}\n", exit::help_for(sub))),
                "{sub}: {h}"
            );
        }
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        assert_eq!(names, exit::ALL, "the exit table knows every subcommand");
    }

    fn parse_err(args: &[&str]) -> String {
        let mut argv = vec!["promote"];
        argv.extend_from_slice(args);
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(e.exit_code(), 2, "clap usage errors exit 2");
        e.to_string()
    }

    #[test]
    fn bad_weights_and_versions_are_usage_errors_with_reasons() {
        let mut all = String::new();
        for w in ["0", "100", "100.5", "-3", "abc", "NaN"] {
            all += &parse_err(&["canary", "--stage", "live", &format!("--weight={w}")]);
            all += "---\n";
        }
        for v in ["$LATEST", "two", "0"] {
            all += &parse_err(&["deploy", "--stage", "dev", &format!("--version={v}")]);
            all += "---\n";
        }
        all += &parse_err(&["canary", "--stage", "live", "--bake", "5x"]);
        all += "---\n";
        all += &parse_err(&["canary", "--stage", "live", "--poll", "0"]);
        insta::assert_snapshot!("usage_errors", all);
    }

    #[test]
    fn bad_probe_options_are_usage_errors_with_reasons() {
        let mut all = String::new();
        for rate in ["0", "-1", "abc", "1e9"] {
            all += &parse_err(&["probe", "--url", "http://x", "--rate", rate]);
            all += "---\n";
        }
        all += &parse_err(&["probe", "--url", "http://x", "--duration", "0"]);
        all += "---\n";
        all += &parse_err(&["probe", "--rate", "10"]);
        insta::assert_snapshot!("probe_usage_errors", all);
        let ok =
            Cli::try_parse_from(["promote", "probe", "--stage", "live", "--rate", "0.5"]).unwrap();
        let Command::Probe(a) = ok.command else {
            panic!("not a probe")
        };
        assert_eq!(
            (a.rate, a.duration, a.path.as_deref()),
            (0.5, Duration::from_secs(10), None)
        );
    }

    #[test]
    fn parses_global_flags_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "promote",
            "status",
            "--output",
            "json",
            "-vv",
            "--environments",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.environments, PathBuf::from("x"));
    }
}
