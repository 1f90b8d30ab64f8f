"""The GitHub Actions workflows held to account beyond actionlint and zizmor (make lint-workflows).

- Every `promote ...` command line in .github/ parses against the promote built from this
  checkout: each `run:` script that calls promote is executed by bash with `promote` replaced by
  a recorder, fed with realistic values for its `${{ ... }}` and inputs, and every recorded
  command line then runs through the real binary (`--dry-run` added to the mutating ones)
  against a seeded moto_server. A renamed flag or subcommand breaks this test, not the pipeline.
- The properties the pipeline promises: one build, the stages in the order environments/ gives,
  OIDC only, minimal permissions, a lock per stage, actions pinned to commits.
- operate.yml's input check rejects bad input and never runs it; tools/smoke-test.sh passes only
  when /build-info reports the expected commit and version.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import re
import shutil
import subprocess
import struct
import threading
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import ENVIRONMENTS_DIR, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
SHA = "3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7"
VERSION = "3"  # tools/seed.py publishes versions 1..3
MUTATING = {"publish", "deploy", "canary", "advance", "complete", "rollback"}
# `promote` in command position: start of a line, after `$(`, a pipe or list operator, `!`,
# or a case pattern's `)`. Not inside strings such as "::error::promote failed".
PROMOTE_CALL = re.compile(r"(?:^\s*|\$\(\s*|[;|&]\s*|\)\s+|!\s+)promote\s+[a-z-]")


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def action_files() -> list[Path]:
    return sorted(ACTIONS.glob("*/action.yml"))


def workflow(name: str) -> dict:
    return load_yaml(WORKFLOWS / name)


def stage_order() -> list[str]:
    """Stages in path order, from the upstream links of environments/<stage>.json."""
    upstream = {
        p.stem: json.loads(p.read_text())["upstream"]
        for p in ENVIRONMENTS_DIR.glob("*.json")
        if p.name != "project.json"
    }
    order = [s for s, u in upstream.items() if u is None]
    while len(order) < len(upstream):
        order.append(next(s for s, u in upstream.items() if u == order[-1]))
    return order


@dataclass
class Step:
    file: str
    job: str | None
    index: int
    step: dict
    env: dict[str, str] = field(default_factory=dict)  # workflow + job + step env, unevaluated

    @property
    def where(self) -> str:
        name = self.step.get("name") or f"step {self.index}"
        return f"{self.file}: {self.job or 'action'}: {name}"


@functools.cache
def all_steps() -> tuple[Step, ...]:
    steps = []
    for path in workflow_files():
        wf = load_yaml(path)
        for job_id, job in wf["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                env = {**wf.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                steps.append(Step(path.name, job_id, i, step, {k: str(v) for k, v in env.items()}))
    for path in action_files():
        action = load_yaml(path)
        for i, step in enumerate(action["runs"].get("steps", [])):
            env = {k: str(v) for k, v in step.get("env", {}).items()}
            steps.append(Step(str(path.relative_to(ROOT / ".github")), None, i, step, env))
    return tuple(steps)


def promote_steps() -> list[Step]:
    return [s for s in all_steps() if "run" in s.step and PROMOTE_CALL.search(s.step["run"])]


# ---------------------------------------------------------------------------------------
# Running a step's script with a recording `promote`
# ---------------------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(value: str, values: dict[str, str], where: str) -> str:
    def one(m: re.Match) -> str:
        expr = m.group(1)
        if expr not in values:
            pytest.fail(f"{where}: no realistic value for ${{{{ {expr} }}}}; add one to the test's table")
        return values[expr]

    return EXPRESSION.sub(one, value)


@dataclass(frozen=True)
class Call:
    line: int  # line of the run: script
    argv: tuple[str, ...]


# An exported bash function (the format bash itself uses for `export -f`): the step's script
# keeps its own line numbers, and BASH_LINENO[0] tells which line called promote.
RECORDER = '() {  printf \'%s\\0\' "${BASH_LINENO[0]}" "$#" "$@" >> "$PROMOTE_RECORD"; }'


def run_recorded(
    step: Step,
    values: dict[str, str],
    tmp: Path,
    exit_code: int = 0,
    extra_env: dict[str, str] | None = None,
    override_env: dict[str, str] | None = None,
) -> tuple[list[Call], subprocess.CompletedProcess]:
    """Runs the step's `run:` as GitHub does (bash -eo pipefail) and returns the promote calls;
    the stand-in promote exits with `exit_code`."""
    record = tmp / "record"
    record.write_bytes(b"")
    script = tmp / "step.sh"
    script.write_text(step.step["run"])
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "GITHUB_SHA": SHA,
        "GITHUB_OUTPUT": str(tmp / "github_output"),
        "GITHUB_STEP_SUMMARY": str(tmp / "step_summary"),
        "GITHUB_PATH": str(tmp / "github_path"),
        "RUNNER_TEMP": str(tmp),
        "PROMOTE_RECORD": str(record),
        "BASH_FUNC_promote%%": RECORDER[:-1] + f" return {exit_code}; }}",
    }
    env.update(extra_env or {})
    for k, v in step.env.items():
        env[k] = evaluate(v, values, step.where)
    env.update(override_env or {})
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )
    tokens = record.read_bytes().split(b"\0")[:-1]
    calls = []
    while tokens:
        line, n = int(tokens[0]), int(tokens[1])
        calls.append(Call(line, tuple(t.decode() for t in tokens[2 : 2 + n])))
        tokens = tokens[2 + n :]
    return calls, proc


def promote_lines(step: Step) -> set[int]:
    return {i for i, text in enumerate(step.step["run"].splitlines(), 1) if PROMOTE_CALL.search(text)}


def function_names() -> list[str]:
    return [f["name"] for f in json.loads((ENVIRONMENTS_DIR / "project.json").read_text())["functions"]]


def pipeline_values(tmp: Path) -> dict[str, str]:
    return {
        "needs.publish.outputs.version": VERSION,
        "needs.publish.outputs.release": " ".join(f"{f}={VERSION}" for f in function_names()),
        "needs.build-functions.outputs.artifact": f"functions-arm64-{SHA}",
        "runner.temp": str(tmp),
        "steps.url.outputs.url": "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/dev",
        "github.sha": SHA,
    }


def dispatch_inputs(wf: dict) -> dict[str, dict]:
    return wf["on"]["workflow_dispatch"].get("inputs", {})


# Which optional inputs each action reads; the others stay at their defaults in the scenarios
# (the input check's rejection of them is tested on its own below).
OPERATE_OPTIONS = {
    "status": set(),
    "deploy": {"version"},
    "canary": {"version", "weight"},
    "advance": {"weight"},
    "complete": set(),
    "rollback": {"to_previous"},
}


def operate_scenarios() -> list[dict[str, str]]:
    """Every stage and action, with the empty, whole and fractional weights and versions it takes."""
    inputs = dispatch_inputs(workflow("operate.yml"))
    stages = inputs["stage"]["options"]
    actions = inputs["action"]["options"]
    scenarios = []
    for stage, action, weight, version, to_previous, dry_run in itertools.product(
        stages, actions, ["", "10", "2.5"], ["", "2"], ["false", "true"], ["false", "true"]
    ):
        options = OPERATE_OPTIONS[action]
        if (weight and "weight" not in options) or (version and "version" not in options) or (
            to_previous == "true" and "to_previous" not in options
        ):
            continue
        scenarios.append(
            {
                "inputs.stage": stage,
                "inputs.action": action,
                "inputs.weight": weight,
                "inputs.version": version,
                "inputs.to_previous": to_previous,
                # Only where it applies, so the product stays small.
                "inputs.allow_downgrade": str(action in ("deploy", "canary") and version == "2").lower(),
                "inputs.dry_run": dry_run,
            }
        )
    return scenarios


def operate_step(name_prefix: str) -> Step:
    for s in all_steps():
        if s.file == "operate.yml" and str(s.step.get("name", "")).startswith(name_prefix):
            return s
    raise AssertionError(f"operate.yml has no step named {name_prefix}...")


def check_inputs(values: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    _, proc = run_recorded(operate_step("Check the inputs"), values, tmp)
    return proc


def recorded_calls(tmp_path: Path) -> list[tuple[str, Call]]:
    """(where, call) for every promote call in every workflow, across operate's valid inputs."""
    found: list[tuple[str, Call]] = []
    for step in promote_steps():
        seen_lines: set[int] = set()
        if step.file == "operate.yml":
            scenario_values = []
            for scenario in operate_scenarios():
                values = {**pipeline_values(tmp_path), **scenario}
                if check_inputs(values, tmp_path).returncode == 0:
                    scenario_values.append(values)
            assert scenario_values, "operate.yml's input check accepts no input at all"
        else:
            scenario_values = [pipeline_values(tmp_path)]
        for values in scenario_values:
            calls, proc = run_recorded(step, values, tmp_path)
            for call in calls:
                seen_lines.add(call.line)
                found.append((step.where, call))
        missed = promote_lines(step) - seen_lines
        assert not missed, (
            f"{step.where}: the promote calls on lines {sorted(missed)} of its script were never "
            f"reached (last run: exit {proc.returncode}, stderr {proc.stderr!r})"
        )
    return found


# ---------------------------------------------------------------------------------------
# The real promote against a seeded moto_server
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promote_bin() -> Path:
    """The promote built from this checkout.

    Built exactly as `make test-rust` builds it (`cargo test --workspace --locked`, whose
    integration tests need the binary), so after make test this is a no-op: a plain
    `cargo build -p promote` would unify features differently and recompile the AWS SDK.
    """
    override = os.environ.get("PROMOTE_BIN")
    if override:
        return Path(override)
    cargo = shutil.which("cargo")
    assert cargo, "cargo is needed to build promote for the workflow check"
    subprocess.run([cargo, "test", "--workspace", "--locked", "--no-run", "-q"], cwd=ROOT, check=True, timeout=3000)
    binary = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "promote"
    assert binary.exists(), f"{binary} was not built"
    return binary


@pytest.fixture()
def moto(tmp_path_factory) -> dict[str, str]:
    """A freshly seeded moto_server (tools/seed.py) per test; yields the AWS environment for promote."""
    state = tmp_path_factory.mktemp("moto")
    start = subprocess.run(
        [str(ROOT / "tools" / "moto.sh"), "start", str(state)], capture_output=True, text=True, timeout=120
    )
    assert start.returncode == 0, start.stderr
    endpoint = start.stdout.strip().splitlines()[-1]
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": json.loads((ENVIRONMENTS_DIR / "project.json").read_text())["region"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_COLOR": "1",
        }
        seed = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "tools" / "seed.py"), "--endpoint", endpoint],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert seed.returncode == 0, seed.stderr
        yield env
    finally:
        subprocess.run([str(ROOT / "tools" / "moto.sh"), "stop", str(state)], timeout=60)


def fake_artifact(tmp: Path, sha: str = SHA) -> None:
    """The zips the publish job downloads, one per function of project.json, stamped as
    CONTRACTS.md, "The build stamp", says."""
    import seed  # tools/seed.py, on sys.path through conftest

    signed = tmp / "functions" / "signed"
    signed.mkdir(parents=True, exist_ok=True)
    for name in function_names():
        (tmp / "functions" / f"{name}.zip").write_bytes(seed.fake_zip(name, "0.9.0", sha))
        # The Sign step's output: AWS Signer, which moto does not emulate, returns the same zip
        # with a signature Lambda checks (and moto does not); the Publish step reads this copy.
        (signed / f"{name}.zip").write_bytes((tmp / "functions" / f"{name}.zip").read_bytes())


def run_promote(binary: Path, argv: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def subcommand(argv: tuple[str, ...]) -> str:
    """The first word that is not an option or an option's value."""
    takes_value = {"--environments", "--output"}
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif not a.startswith("-"):
            return a
    return ""


def as_checked(argv: tuple[str, ...]) -> tuple[str, ...]:
    if subcommand(argv) in MUTATING and "--dry-run" not in argv:
        return (*argv, "--dry-run")
    return argv


def split_every_stage(env: dict[str, str]) -> None:
    """Every stage mid-canary (version 1 stable, version 2 at 1%): the state in which an operator
    advances, completes or rolls back, and below every weight operate.yml may be given."""
    import boto3

    project = json.loads((ENVIRONMENTS_DIR / "project.json").read_text())
    lam = boto3.client(
        "lambda",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
    for stage in stage_order():
        lam.update_alias(
            FunctionName=project["functions"][0]["name"],
            Name=stage,
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.01}},
        )


def test_every_promote_command_line_parses_against_the_built_cli(tmp_path, promote_bin, moto):
    fake_artifact(tmp_path)
    calls = recorded_calls(tmp_path)
    # The pipeline and the operator's workflow must really drive promote: an extraction that
    # silently found nothing would make this test pass for nothing.
    subcommands = {subcommand(c.argv) for _, c in calls}
    assert {"publish", "deploy", "canary", "status", "advance", "complete", "rollback"} <= subcommands, subcommands
    assert any("--to-previous" in c.argv for _, c in calls) and any("--allow-downgrade" in c.argv for _, c in calls)

    # Dry runs change nothing, so the scene is set per call: the pipeline's commands meet the
    # seeded stack (every stage on version 1); operate.yml's meet what an operator acts on,
    # canaries in progress, or (for rollback --to-previous) promotions just completed.
    def scene(where: str, argv: tuple[str, ...]) -> int:
        if not where.startswith("operate.yml"):
            return 0
        return 2 if "--to-previous" in argv else 1

    calls.sort(key=lambda wc: scene(wc[0], wc[1].argv))
    failures = []
    checked: dict[tuple[str, ...], subprocess.CompletedProcess] = {}
    current = 0
    for where, call in calls:
        wanted = scene(where, call.argv)
        if wanted != current:
            if wanted >= 1 and current < 1:
                split_every_stage(moto)
            if wanted == 2:
                for stage in stage_order():
                    done = run_promote(promote_bin, ("complete", "--stage", stage), moto)
                    assert done.returncode == 0, done.stderr
            current = wanted
        argv = as_checked(call.argv)
        if argv not in checked:
            checked[argv] = run_promote(promote_bin, argv, moto)
        proc = checked[argv]
        usage_error = proc.returncode == 2 or re.search(r"unexpected argument|Usage:", proc.stderr)
        if usage_error:
            failures.append(f"{where} (line {call.line}): promote {' '.join(argv)}\n  exit {proc.returncode}: {proc.stderr.strip()}")
        if subcommand(argv) == "status" and proc.returncode != 0:
            failures.append(f"{where} (line {call.line}): promote {' '.join(argv)} exit {proc.returncode}: {proc.stderr.strip()}")
    assert not failures, "\n".join(failures)


def test_the_check_catches_a_renamed_flag(tmp_path, promote_bin, moto):
    # The property the test above relies on: a flag promote does not know is a usage error.
    proc = run_promote(promote_bin, ("deploy", "--stag", "dev", "--version", VERSION, "--dry-run"), moto)
    assert proc.returncode == 2, proc
    proc = run_promote(promote_bin, ("promote-everything", "--stage", "dev"), moto)
    assert proc.returncode == 2, proc


def pipeline_step(job: str, name: str) -> Step:
    for s in all_steps():
        if s.file == "path-to-live.yml" and s.job == job and s.step.get("name") == name:
            return s
    raise AssertionError(f"path-to-live.yml: job {job} has no step {name!r}")


def run_for_real(step: Step, values: dict[str, str], tmp: Path, promote_bin: Path, aws: dict[str, str]):
    """Runs the step's script as GitHub would, with the real promote on PATH and moto as AWS."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "promote").exists():
        (bin_dir / "promote").symlink_to(promote_bin)
    for f in ("github_output", "step_summary"):
        (tmp / f).write_text("")
    script = tmp / "step.sh"
    script.write_text(step.step["run"])
    env = {
        **aws,
        "PATH": f"{bin_dir}:{aws['PATH']}",
        "GITHUB_SHA": SHA,
        "GITHUB_OUTPUT": str(tmp / "github_output"),
        "GITHUB_STEP_SUMMARY": str(tmp / "step_summary"),
        "RUNNER_TEMP": str(tmp),
    }
    for k, v in step.env.items():
        env[k] = evaluate(v, values, step.where)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    outputs = dict(
        line.split("=", 1) for line in (tmp / "github_output").read_text().splitlines() if "=" in line
    )
    return proc, outputs, (tmp / "step_summary").read_text()


def short_bakes(tmp: Path) -> Path:
    """environments/ with one-second bakes and polls (the stack's names unchanged), for walking
    the whole path in a test: the plans' minutes are not what is tested here. moto runs no
    Lambda code, so no per-version metrics exist: every stage is judged by its alarms alone,
    as promote's own integration tests do (their `judge_by_alarms_only`)."""
    d = tmp / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    for p in d.glob("*.json"):
        if p.name == "project.json":
            continue
        stage = json.loads(p.read_text())
        stage["poll_interval_seconds"] = 1
        stage["test_fixture_short_bakes"] = True
        stage["analysis"] = {"sources": ["alarms"]}
        strategy = stage["strategy"]
        for step in strategy.get("steps", []):
            step["bake_seconds"] = 1
        if "steps" not in strategy:
            strategy["bake_seconds"] = 1
        p.write_text(json.dumps(stage))
    return d


def served(promote_bin: Path, aws: dict[str, str], stage: str) -> dict[str, str]:
    """Each function's version on `stage`, and its split, from `promote status --output json`."""
    proc = run_promote(promote_bin, ("status", "--stage", stage, "--output", "json"), aws)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    out = {}
    for row in rows:
        if row.get("event") == "stage_status" and row.get("stage") == stage:
            out[row.get("function", function_names()[0])] = (row["stable"]["version"], row.get("candidate"))
    return out


def test_the_pipeline_scripts_move_a_release_of_every_function_with_the_real_promote(tmp_path, promote_bin, moto):
    """publish -> dev -> test -> live in miniature, with every function of project.json (two or
    more): the scripts read what promote really prints (the release from publish's JSON, the
    stage URL from status's JSON), move every function of the release through every stage
    (live's whole canary plan, its bakes shortened) and write the run summary."""
    functions = function_names()
    assert len(functions) >= 2, "a release of several functions"
    fake_artifact(tmp_path)
    values = pipeline_values(tmp_path)
    aws = {**moto, "PROMOTE_ENVIRONMENTS": str(short_bakes(tmp_path))}

    proc, outputs, summary = run_for_real(pipeline_step("publish", "Publish"), values, tmp_path, promote_bin, aws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    release = dict(pair.split("=") for pair in outputs.get("release", "").split())
    assert sorted(release) == sorted(functions), outputs
    for f, v in release.items():
        assert re.fullmatch(r"[1-9][0-9]*", v) and int(v) > int(VERSION), f"{f}: new code, so a new version: {outputs}"
    assert outputs.get("version") == release[functions[0]], outputs
    assert SHA in summary and "0.9.0" in summary and all(f"| {f} |" in summary for f in functions), summary

    values["needs.publish.outputs.version"] = outputs["version"]
    values["needs.publish.outputs.release"] = outputs["release"]
    for job, step in (("dev", "Deploy"), ("test", "Deploy"), ("live", "Canary (whole step plan, rolls back on alarm)")):
        proc, _, _ = run_for_real(pipeline_step(job, step), values, tmp_path, promote_bin, aws)
        assert proc.returncode == 0, f"{job}: {proc.stdout + proc.stderr}"
        now = served(promote_bin, aws, job)
        assert now == {f: (release[f], None) for f in functions}, f"{job} serves {now}, not release {release}"

    proc, outputs, _ = run_for_real(pipeline_step("dev", "Find the stage URL"), values, tmp_path, promote_bin, aws)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"https://\w+\.execute-api\.[a-z0-9-]+\.amazonaws\.com/dev", outputs.get("url", "")), outputs

    proc, _, summary = run_for_real(pipeline_step("live", "Summary"), values, tmp_path, promote_bin, aws)
    assert proc.returncode == 0, proc.stderr
    assert f"release {outputs.get('release', values['needs.publish.outputs.release'])}" in summary, summary
    assert "failed" not in summary, summary

    # Zips stamped with another commit are refused: only this commit's build may reach dev.
    other = tmp_path / "other"
    other.mkdir()
    fake_artifact(other, sha="1" * 40)
    values["runner.temp"] = str(other)
    proc, outputs, _ = run_for_real(pipeline_step("publish", "Publish"), values, other, promote_bin, aws)
    assert proc.returncode != 0 and "release" not in outputs, (proc.stdout, outputs)
    assert "records commit" in proc.stdout, proc.stdout


# ---------------------------------------------------------------------------------------
# What the pipeline promises
# ---------------------------------------------------------------------------------------

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")


@pytest.mark.parametrize(
    "path", [*workflow_files(), *action_files()], ids=lambda p: str(p.relative_to(ROOT / ".github"))
)
def test_third_party_actions_are_pinned_to_a_commit_with_its_version(path: Path):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = USES.match(line)
        if not m:
            continue
        ref, rest = m.groups()
        if ref.startswith(("$/", "./")):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}:{n}: {ref} is not pinned to a full commit sha"
        assert re.fullmatch(r"\s*#\s*v?\d+(\.\d+)*\s*", rest), f"{path.name}:{n}: {ref} has no `# vX.Y.Z` comment"


def test_ci_runs_the_readme_test_command_fmt_and_clippy_on_the_project_toolchain():
    wf = workflow("ci.yml")
    assert {"pull_request", "push"} <= set(wf["on"])
    runs = [str(s.get("run", "")) for job in wf["jobs"].values() for s in job["steps"]]
    uses = [str(s.get("uses", "")) for job in wf["jobs"].values() for s in job["steps"]]
    assert "make test" in runs
    assert any(r.startswith("cargo fmt") and "--check" in r for r in runs), runs
    assert any(r.startswith("cargo clippy") and r.endswith("-D warnings") for r in runs), runs
    assert any(u.startswith("Swatinem/rust-cache@") for u in uses), "no dependency cache"
    pythons = [s["with"]["python-version"] for job in wf["jobs"].values() for s in job["steps"] if "setup-python" in str(s.get("uses", ""))]
    assert pythons == ["3.11"], pythons


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflows_build_with_the_workspace_toolchain(path: Path):
    rust_version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    wf = load_yaml(path)
    compiles = any("cargo" in str(s.get("run", "")) for job in wf["jobs"].values() for s in job.get("steps", []))
    if compiles:
        toolchain = wf.get("env", {}).get("RUSTUP_TOOLCHAIN", "")
        assert toolchain == rust_version or toolchain.startswith(rust_version + "."), (toolchain, rust_version)


def test_dependabot_keeps_every_pinned_action_current():
    config = load_yaml(ROOT / ".github" / "dependabot.yml")
    actions = next(u for u in config["updates"] if u["package-ecosystem"] == "github-actions")
    dirs = set(actions["directories"])
    assert "/" in dirs  # .github/workflows
    for path in action_files():
        assert "/" + str(path.parent.relative_to(ROOT)) in dirs, f"{path.parent} is not watched by Dependabot"


def test_no_expression_is_spliced_into_a_script():
    # Values reach scripts through env: only, so no input can become shell code.
    spliced = [s.where for s in all_steps() if "run" in s.step and "${{" in s.step["run"]]
    assert not spliced, spliced


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_permissions_are_empty_by_default_and_granted_per_job(path: Path):
    wf = load_yaml(path)
    assert wf.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{path.name}: job {job_id} must state its permissions"
        assert set(perms.values()) <= {"read", "write"} and perms.get("contents") in (None, "read"), (path.name, job_id, perms)
        uses_aws = any("promote-setup" in str(s.get("uses", "")) for s in job.get("steps", []))
        # OIDC exactly where AWS is needed, and then only inside a GitHub environment (the
        # role's trust names repo:...:environment:<stage>).
        assert (perms.get("id-token") == "write") == uses_aws, (path.name, job_id, perms)
        if uses_aws:
            assert job.get("environment"), f"{path.name}: job {job_id} assumes a role outside a GitHub environment"
        assert set(perms) - {"contents", "id-token"} == set(), (path.name, job_id, perms)


def test_no_stored_aws_keys():
    text = "\n".join(p.read_text() for p in [*workflow_files(), *action_files()])
    assert "aws-access-key-id" not in text and "secrets." not in text


def job_environment(job: dict) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def test_path_to_live_walks_the_stages_in_the_order_environments_gives():
    wf = workflow("path-to-live.yml")
    jobs = wf["jobs"]
    stage_jobs = {}
    for job_id, job in jobs.items():
        text = yaml.safe_dump(job)
        if re.search(r"promote (deploy|canary) --stage", text):
            stage_jobs[job["env"]["STAGE"]] = job_id
            assert job_environment(job) == job["env"]["STAGE"], f"job {job_id} runs outside its stage's environment"
    order = stage_order()
    assert set(stage_jobs) == set(order), f"stage jobs {stage_jobs} for stages {order}"

    def needs(job_id: str) -> set[str]:
        n = jobs[job_id].get("needs", [])
        return {n} if isinstance(n, str) else set(n)

    for upstream, stage in zip(order, order[1:]):
        assert stage_jobs[upstream] in needs(stage_jobs[stage]), f"{stage} does not wait for {upstream}"
    # The last stage runs the whole canary plan; the ones before it deploy the published
    # release, every function of it (`--release FUNCTION=N` each).
    last = " ".join(str(s.get("run", "")) for s in jobs[stage_jobs[order[-1]]]["steps"])
    assert re.search(r"promote canary --stage \"\$STAGE\" \"\$\{flags\[@\]\}\"(?! *--weight)", last), last
    for stage in order:
        job = jobs[stage_jobs[stage]]
        assert job["env"]["RELEASE"] == "${{ needs.publish.outputs.release }}", stage
        assert job["env"]["VERSION"] == "${{ needs.publish.outputs.version }}", stage
        moves = " ".join(str(s.get("run", "")) for s in job["steps"])
        assert 'flags+=(--release "$pair")' in moves, stage
        assert "publish" in needs(stage_jobs[stage]), stage
        assert any("smoke-test.sh" in str(s.get("run", "")) for s in job["steps"]), f"{stage} has no smoke test"
        assert any("promote status" in str(s.get("run", "")) and "GITHUB_STEP_SUMMARY" in s["run"] for s in job["steps"]), stage


def test_path_to_live_builds_once_and_later_jobs_only_download():
    jobs = workflow("path-to-live.yml")["jobs"]
    builders = [j for j, job in jobs.items() if any("cargo lambda build" in str(s.get("run", "")) for s in job.get("steps", []))]
    assert builders == ["build-functions"], builders
    compile_jobs = [j for j, job in jobs.items() if any(re.search(r"\bcargo (build|lambda)", str(s.get("run", ""))) for s in job.get("steps", []))]
    assert sorted(compile_jobs) == ["build-functions", "build-promote"], compile_jobs
    build = " ".join(str(s.get("run", "")) for s in jobs["build-functions"]["steps"])
    assert "--release" in build and "--arm64" in build
    # Every function project.json lists, not a fixed list of packages.
    assert "jq -r '.functions[].package' environments/project.json" in build
    upload = [s for s in jobs["build-functions"]["steps"] if "upload-artifact" in str(s.get("uses", ""))]
    assert upload and upload[0]["with"]["name"] == "functions-arm64-${{ github.sha }}"
    download = [s for s in jobs["publish"]["steps"] if "download-artifact" in str(s.get("uses", ""))]
    assert download and download[0]["with"]["name"] == "${{ needs.build-functions.outputs.artifact }}"


def test_every_stage_has_a_lock_and_live_is_never_cancelled():
    groups: dict[str, list] = {}
    for path in workflow_files():
        for job_id, job in load_yaml(path)["jobs"].items():
            if "concurrency" in job:
                c = job["concurrency"]
                groups.setdefault(c["group"], []).append((path.name, job_id, c.get("cancel-in-progress")))
    for stage in stage_order():
        holders = groups.get(f"promote-stage-{stage}")
        assert holders, f"no job locks stage {stage}"
        assert all(cancel is False for *_, cancel in holders), holders
    # operate.yml shares the same locks for the moves that must not overlap a pipeline run.
    operate = workflow("operate.yml")["jobs"]["operate"]["concurrency"]
    assert "format('promote-stage-{0}', inputs.stage)" in operate["group"] and operate["cancel-in-progress"] is False


def plan_seconds(stage: str) -> int:
    """How long promote bakes on a stage (environments/<stage>.json), waiting included."""
    strategy = json.loads((ENVIRONMENTS_DIR / f"{stage}.json").read_text())["strategy"]
    if strategy["type"] == "canary":
        return sum(step["bake_seconds"] for step in strategy["steps"])
    return strategy.get("bake_seconds", 0)


def test_job_timeouts_and_aws_sessions_outlast_the_bake_plans():
    # A job killed, or credentials expiring, mid-bake leaves a split behind: both must cover the
    # plan in environments/ with room for the smoke test. Raise them with the bake times.
    margin = 300
    session = 3600  # the role-duration-seconds default, Terraform's default maximum
    jobs = workflow("path-to-live.yml")["jobs"]
    for job_id, job in jobs.items():
        stage = job.get("env", {}).get("STAGE")
        if stage:
            assert job["timeout-minutes"] * 60 >= plan_seconds(stage) + margin, (job_id, plan_seconds(stage))
            assert session >= plan_seconds(stage) + margin, (job_id, plan_seconds(stage))
    longest = max(plan_seconds(s) for s in stage_order())
    operate = workflow("operate.yml")["jobs"]["operate"]
    assert operate["timeout-minutes"] * 60 >= longest + margin


def test_operate_offers_every_stage_and_action():
    inputs = dispatch_inputs(workflow("operate.yml"))
    assert sorted(inputs["stage"]["options"]) == sorted(stage_order())
    assert set(inputs["action"]["options"]) == {"status", "deploy", "advance", "complete", "rollback", "canary"}


@pytest.mark.parametrize(
    "code, says",
    [(0, None), (3, "refused"), (4, "rolled back"), (5, "changed by someone else"), (1, "exit code 1")],
)
def test_the_live_canary_fails_the_job_with_promotes_exit_code_and_says_why(code, says, tmp_path):
    step = next(s for s in all_steps() if s.job == "live" and "promote canary" in str(s.step.get("run", "")))
    calls, proc = run_recorded(step, pipeline_values(tmp_path), tmp_path, exit_code=code)
    assert [subcommand(c.argv) for c in calls] == ["canary"]
    assert proc.returncode == code, proc
    if says:
        assert "::error::" in proc.stdout and says in proc.stdout, proc.stdout


@pytest.mark.parametrize("code", [0, 2, 3, 4, 5])
def test_operate_fails_the_job_with_promotes_exit_code(code, tmp_path):
    values = {**pipeline_values(tmp_path), **operate_values(action="advance")}
    calls, proc = run_recorded(operate_step("promote"), values, tmp_path, exit_code=code)
    assert [c.argv for c in calls] == [("advance", "--stage", "live")]
    assert proc.returncode == code
    assert ("::error::" in proc.stdout) == (code != 0), proc.stdout


def elf_header(machine: int) -> bytes:
    """The 64 bytes `file` reads an executable's architecture from (e_machine at offset 18)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x400000, 64, 0, 0, 64, 56, 0, 64, 0, 0)


AARCH64, X86_64 = 0xB7, 0x3E


@pytest.mark.parametrize(
    "machine, stamped_sha, ok, says",
    [
        (AARCH64, SHA, True, None),
        (X86_64, SHA, False, "not an arm64 executable"),
        (AARCH64, "1" * 40, False, "does not name this commit"),
        (AARCH64, None, False, "does not name this commit"),
    ],
    ids=["arm64-this-commit", "x86_64", "other-commit", "no-stamp"],
)
def test_the_build_refuses_a_zip_not_built_for_arm64_from_this_commit(machine, stamped_sha, ok, says, tmp_path):
    """Every function's zip is checked; the second function's is the one varied here (the
    first is always good), so a loop that stopped after the first would fail this."""
    zips = tmp_path / "lambda"
    functions = json.loads((ENVIRONMENTS_DIR / "project.json").read_text())["functions"]
    for n, f in enumerate(functions):
        good = n != 1
        bootstrap = elf_header(AARCH64 if good else machine) + b"\0" * 64
        sha = SHA if good else stamped_sha
        if sha:
            bootstrap += f"@@build-stamp@@{f['name']} 0.9.0 {sha}@@end@@".encode() + b"\0" * 16
        (zips / f["package"]).mkdir(parents=True)
        with zipfile.ZipFile(zips / f["package"] / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", bootstrap)
    out = tmp_path / "out"
    step = pipeline_step("build-functions", "Check the zips (arm64 bootstraps stamped with this commit)")
    _, proc = run_recorded(step, pipeline_values(tmp_path), tmp_path, override_env={"ZIPS": str(zips), "OUT": str(out)})
    assert (proc.returncode == 0) == ok, proc
    if ok:
        assert f"artifact=functions-arm64-{SHA}" in (tmp_path / "github_output").read_text()
        summary = (tmp_path / "step_summary").read_text()
        for f in functions:
            assert f"{f['name']} 0.9.0" in summary, summary
            assert (out / f"{f['name']}.zip").read_bytes() == (zips / f["package"] / "bootstrap.zip").read_bytes()
    else:
        assert says in proc.stdout and f"function {functions[1]['name']}" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "role, region, ok, says",
    [
        ("arn:aws:iam::123456789012:role/app-deploy-dev", "", True, "region=eu-west-2"),
        ("arn:aws:iam::123456789012:role/app-deploy-dev", "us-east-1", True, "region=us-east-1"),
        ("arn:aws-us-gov:iam::123456789012:role/app-deploy-dev", "", True, "region=eu-west-2"),
        ("", "", False, "AWS_ROLE_ARN is '', not an IAM role ARN"),
        ("app-deploy-dev", "", False, "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/app-deploy-dev", "mars-1", False, "no valid AWS region"),
    ],
)
def test_promote_setup_checks_the_role_and_resolves_the_region(role, region, ok, says, tmp_path):
    step = next(s for s in all_steps() if s.job is None and s.step.get("id") == "resolve")
    (tmp_path / "promote-bin").mkdir()
    (tmp_path / "promote-bin" / "promote").write_text("")
    values = {"runner.temp": str(tmp_path), "inputs.role-to-assume": role, "inputs.aws-region": region}
    # sudo install is the one step that leaves the sandbox: record it instead.
    sudo = '() { printf "%s " "$@" > "$RUNNER_TEMP/sudo"; }'
    _, proc = run_recorded(step, values, tmp_path, extra_env={"BASH_FUNC_sudo%%": sudo})
    assert (proc.returncode == 0) == ok, proc
    if ok:
        assert says in (tmp_path / "github_output").read_text()
        assert (tmp_path / "sudo").read_text().split()[-1] == "/usr/local/bin/promote"
    else:
        assert says in proc.stdout, proc.stdout


# ---------------------------------------------------------------------------------------
# operate.yml's input check
# ---------------------------------------------------------------------------------------


def operate_values(**kw: str) -> dict[str, str]:
    base = {
        "stage": "live",
        "action": "status",
        "weight": "",
        "version": "",
        "allow_downgrade": "false",
        "to_previous": "false",
        "dry_run": "false",
    }
    base.update(kw)
    return {f"inputs.{k}": v for k, v in base.items()}


@pytest.mark.parametrize(
    "inputs",
    [
        {"action": "canary", "weight": "10"},
        {"action": "canary", "weight": "2.5", "version": "7"},
        {"action": "canary"},
        {"action": "advance", "weight": "50"},
        {"action": "advance"},
        {"action": "complete"},
        {"action": "rollback", "to_previous": "true"},
        {"stage": "dev", "action": "status"},
        {"stage": "dev", "action": "canary", "version": "3", "weight": "50"},
        {"stage": "dev", "action": "deploy", "version": "3", "allow_downgrade": "true"},
        {"stage": "test", "action": "deploy"},
    ],
)
def test_operate_accepts_good_input(inputs, tmp_path):
    proc = check_inputs(operate_values(**inputs), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "inputs, says",
    [
        ({"stage": "prod"}, "unknown stage 'prod'"),
        ({"stage": "../live"}, "unknown stage"),
        ({"action": "destroy"}, "unknown action 'destroy'"),
        ({"action": "canary", "weight": "0"}, "weight '0'"),
        ({"action": "canary", "weight": "100"}, "weight '100'"),
        ({"action": "canary", "weight": "100.5"}, "weight '100.5'"),
        ({"action": "canary", "weight": "-3"}, "weight '-3'"),
        ({"action": "canary", "weight": "abc"}, "weight 'abc'"),
        ({"action": "canary", "weight": "10; rm -rf ~"}, "weight '10; rm -rf ~'"),
        ({"action": "complete", "weight": "10"}, "weight is for canary and advance only"),
        ({"action": "canary", "version": "$LATEST"}, "version '$LATEST'"),
        ({"action": "canary", "version": "0"}, "version '0'"),
        ({"action": "rollback", "version": "3"}, "version is for deploy and canary only"),
        ({"action": "canary", "to_previous": "true"}, "to_previous is for rollback only"),
        ({"action": "complete", "allow_downgrade": "true"}, "allow_downgrade is for deploy and canary only"),
        ({"stage": "dev", "action": "canary", "weight": "10"}, "dev is the first stage"),
        ({"stage": "dev", "action": "deploy"}, "dev is the first stage"),
        ({"stage": "test", "action": "canary"}, "test uses the all_at_once strategy, which has no step plan"),
        ({"stage": "live", "action": "deploy", "version": "3"}, "live uses the canary strategy: move it with canary"),
    ],
)
def test_operate_rejects_bad_input_saying_what_is_wrong(inputs, says, tmp_path):
    proc = check_inputs(operate_values(**inputs), tmp_path)
    assert proc.returncode != 0
    assert says in proc.stdout, proc.stdout


def test_operate_never_runs_its_input(tmp_path):
    marker = tmp_path / "pwned"
    for payload in [f"$(touch {marker})", f"`touch {marker}`", f"1; touch {marker}", f"10 && touch {marker}"]:
        for name in ("stage", "action", "weight", "version"):
            values = operate_values(**{"action": "canary", name: payload})
            check_inputs(values, tmp_path)
            # The run step itself, even if the check were bypassed.
            run_recorded(operate_step("promote"), {**pipeline_values(tmp_path), **values}, tmp_path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# tools/smoke-test.sh
# ---------------------------------------------------------------------------------------


@pytest.fixture()
def build_info_server():
    """A loopback HTTP server whose /build-info answer the test sets."""
    answer = {"status": 200, "body": "{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = answer["body"].encode() if self.path.endswith("/build-info") else b"not found"
            self.send_response(answer["status"] if self.path.endswith("/build-info") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dev", answer
    finally:
        server.shutdown()
        server.server_close()


def smoke(url: str, sha: str, version: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMOKE_ATTEMPTS": "2", "SMOKE_INTERVAL": "0"}
    return subprocess.run(
        [str(ROOT / "tools" / "smoke-test.sh"), url, sha, version], env=env, capture_output=True, text=True, timeout=60
    )


def build_info(sha: str, version: str) -> str:
    # The shape app/ serves (app/src/routes.rs): build info flattened, plus the invocation.
    return json.dumps(
        {"name": "app", "version": "0.9.0", "git": {"sha": sha, "short_sha": sha[:7]}, "lambda": {"function_version": version}, "stage": "dev"}
    )


def test_smoke_test_passes_when_build_info_names_the_commit_and_version(build_info_server):
    url, answer = build_info_server
    answer["body"] = build_info(SHA, VERSION)
    proc = smoke(url, SHA, VERSION)
    assert proc.returncode == 0, proc.stderr
    assert f"serves {SHA} as version {VERSION}" in proc.stdout


@pytest.mark.parametrize(
    "status, body, says",
    [
        (200, build_info("0" * 40, VERSION), "git.sha=" + "0" * 40),
        (200, build_info(SHA, "2"), "lambda.function_version=2"),
        (200, "not json", "not json"),
        (502, '{"message": "Internal server error"}', "502"),
    ],
    ids=["other-commit", "other-version", "not-json", "bad-gateway"],
)
def test_smoke_test_fails_on_anything_else(build_info_server, status, body, says):
    url, answer = build_info_server
    answer["status"], answer["body"] = status, body
    proc = smoke(url, SHA, VERSION)
    assert proc.returncode == 1
    assert says in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args", [("ftp://x", SHA, "3"), ("https://x", "abc", "3"), ("https://x", SHA, "$LATEST")], ids=["url", "sha", "version"]
)
def test_smoke_test_rejects_bad_arguments(args):
    assert smoke(*args).returncode == 2


# ---------------------------------------------------------------------------------------
# approval_required: a person approves before the stage moves
# ---------------------------------------------------------------------------------------
#
# GitHub asks for that approval, not promote: a job that runs in a GitHub environment waits
# for the environment's required reviewers. The repository cannot set those reviewers (they
# are repository settings), so what it can hold to the stage files is: every job that moves a
# stage requiring approval runs in the environment named after the stage, and the set-up in
# docs/github-actions.md tells people to put required reviewers on exactly those environments.

SETUP_PROTECTION = re.compile(r"^\s*- `(?P<stage>[a-z][a-z0-9_]*)`: (?P<rule>.*(?:\n(?!\s*- `|\d+\.).*)*)", re.M)


def approval_stages(environments_dir: Path = ENVIRONMENTS_DIR) -> dict[str, bool]:
    return {
        p.stem: bool(json.loads(p.read_text()).get("approval_required", False))
        for p in sorted(environments_dir.glob("*.json"))
        if p.name != "project.json"
    }


def setup_protection_rules(page: str) -> dict[str, str]:
    """Stage -> its bullet in docs/github-actions.md's set-up, step "Protection rules"."""
    start = page.index("Protection rules (Settings")
    end = page.index("\n4. ", start)
    return {m["stage"]: m["rule"] for m in SETUP_PROTECTION.finditer(page[start:end])}


def approval_problems(stages: dict[str, bool], pipeline: dict, operate: dict, page: str) -> list[str]:
    problems = []
    rules = setup_protection_rules(page)
    movers: dict[str, list[tuple[str, str | None]]] = {}
    for job_id, job in pipeline["jobs"].items():
        stage = job.get("env", {}).get("STAGE")
        if stage:
            movers.setdefault(stage, []).append((job_id, job_environment(job)))
    operate_env = job_environment(operate["jobs"]["operate"])
    for stage, required in stages.items():
        reviewers = "**Required reviewers**" in rules.get(stage, "")
        if required:
            if not movers.get(stage):
                problems.append(f"path-to-live.yml: no job moves stage {stage}, which requires approval")
            for job_id, environment in movers.get(stage, []):
                if environment != stage:
                    problems.append(
                        f"path-to-live.yml: job {job_id} moves {stage} in environment {environment!r}, not {stage!r}: "
                        "nobody would be asked to approve it"
                    )
            if operate_env != "${{ inputs.stage }}":
                problems.append(f"operate.yml: the operate job runs in {operate_env!r}, not the stage's environment")
            if not reviewers:
                problems.append(
                    f"docs/github-actions.md: {stage}.json sets approval_required, but the set-up's protection rules do not give "
                    f"`{stage}` **Required reviewers**"
                )
        elif reviewers:
            problems.append(
                f"docs/github-actions.md: the set-up puts **Required reviewers** on `{stage}`, but {stage}.json does not set "
                "approval_required: set it there, or drop the reviewers from the set-up"
            )
    return problems


def test_stages_requiring_approval_run_in_their_protected_environment():
    stages = approval_stages()
    assert any(stages.values()), "no stage requires approval: is approval_required still read?"
    page = (ROOT / "docs" / "github-actions.md").read_text()
    assert approval_problems(stages, workflow("path-to-live.yml"), workflow("operate.yml"), page) == []


def test_the_approval_check_catches_each_way_of_skipping_approval():
    stages = approval_stages()
    pipeline, operate = workflow("path-to-live.yml"), workflow("operate.yml")
    page = (ROOT / "docs" / "github-actions.md").read_text()
    (stage, _), *_ = [(s, r) for s, r in stages.items() if r]

    another = next(s for s, r in stages.items() if not r)
    out = approval_problems({**stages, another: True}, pipeline, operate, page)
    assert out == [
        f"docs/github-actions.md: {another}.json sets approval_required, but the set-up's protection rules do not give "
        f"`{another}` **Required reviewers**"
    ]

    out = approval_problems({**stages, stage: False}, pipeline, operate, page)
    assert out and f"puts **Required reviewers** on `{stage}`, but {stage}.json does not set" in out[0]

    job_id = next(j for j, job in pipeline["jobs"].items() if job.get("env", {}).get("STAGE") == stage)
    unprotected = json.loads(json.dumps(pipeline))
    unprotected["jobs"][job_id].pop("environment")
    out = approval_problems(stages, unprotected, operate, page)
    assert out == [f"path-to-live.yml: job {job_id} moves {stage} in environment None, not {stage!r}: nobody would be asked to approve it"]

    elsewhere = json.loads(json.dumps(operate))
    elsewhere["jobs"]["operate"]["environment"] = "ops"
    assert approval_problems(stages, pipeline, elsewhere, page) == [
        "operate.yml: the operate job runs in 'ops', not the stage's environment"
    ]


# ---------------------------------------------------------------------------------------
# Only main reaches the roles (docs/threat-model.md)
# ---------------------------------------------------------------------------------------

MAIN_ONLY = "${{ github.ref == 'refs/heads/main' }}"


def job_runs(jobs: dict, job_id: str, ref: str, seen: tuple = ()) -> bool:
    """Whether a job runs for a push/dispatch on `ref`: its own `if` (only the main-only
    condition is understood; anything else fails loudly) and every job it needs."""
    assert job_id not in seen, f"needs cycle at {job_id}"
    job = jobs[job_id]
    cond = job.get("if")
    if cond is not None:
        assert cond == MAIN_ONLY, f"job {job_id}: an `if` this check does not read: {cond!r}"
        if ref != "refs/heads/main":
            return False
    needs = job.get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    return all(job_runs(jobs, n, ref, seen + (job_id,)) for n in needs)


def role_jobs(wf: dict) -> list[str]:
    return [j for j, job in wf["jobs"].items() if any("promote-setup" in str(s.get("uses", "")) for s in job.get("steps", []))]


def test_a_branch_other_than_main_reaches_no_job_that_holds_a_role():
    for name in ("path-to-live.yml", "operate.yml"):
        wf = workflow(name)
        holders = role_jobs(wf)
        assert holders, name
        for job_id in holders:
            # Each says so itself, so a changed `needs` cannot open the way.
            assert wf["jobs"][job_id].get("if") == MAIN_ONLY, f"{name}: job {job_id} holds a role without the main-only condition"
            assert job_runs(wf["jobs"], job_id, "refs/heads/main"), (name, job_id)
            for ref in ("refs/heads/feature", "refs/heads/main-fix", "refs/tags/v1.0.0", "refs/pull/7/merge"):
                assert not job_runs(wf["jobs"], job_id, ref), (name, job_id, ref)
    pipeline = workflow("path-to-live.yml")["jobs"]
    assert job_environment(pipeline["publish"]) == "publish"
    assert job_environment(pipeline["live"]) == "live"


def test_only_the_publish_job_signs_and_publishes_in_its_own_environment():
    jobs = workflow("path-to-live.yml")["jobs"]
    publishing = [j for j, job in jobs.items() if any(re.search(r"promote publish|start-signing-job", str(s.get("run", ""))) for s in job.get("steps", []))]
    assert publishing == ["publish"], publishing
    stage_envs = set(stage_order())
    assert job_environment(jobs["publish"]) not in stage_envs
    sign = next(s for s in jobs["publish"]["steps"] if s.get("name") == "Sign")
    assert "aws signer start-signing-job" in sign["run"] and "wait successful-signing-job" in sign["run"]
    publish = next(s for s in jobs["publish"]["steps"] if s.get("name") == "Publish")
    # What is published is what Sign wrote: the signed copy of every function's zip.
    assert publish["env"]["SIGNED"] == sign["env"]["SIGNED"]
    assert publish["env"]["SIGNED"].endswith("/functions/signed")
    assert '"$SIGNED/$name.zip"' in sign["run"] and '"$name=$SIGNED/$name.zip"' in publish["run"]
    assert jobs["publish"]["steps"].index(sign) < jobs["publish"]["steps"].index(publish)


def test_the_main_only_check_catches_a_job_without_it():
    wf = json.loads(json.dumps(workflow("path-to-live.yml")))
    wf["jobs"]["live"].pop("if")
    wf["jobs"]["live"]["needs"] = ["build-promote"]
    assert job_runs(wf["jobs"], "live", "refs/heads/feature")


def requirement_pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a requirements file, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.strip().startswith("--hash") else line
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)(.*)$", line)
        if m:
            pins[m[1].lower()] = (m[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", m[3]))
    return pins


def test_the_release_build_installs_its_python_tools_hash_locked():
    release = requirement_pins(ROOT / "tools" / "requirements-release.txt")
    # The tests' pins: requirements.txt and the demo's file it includes (cargo-lambda, zig).
    dev = requirement_pins(ROOT / "tools" / "requirements.txt") | requirement_pins(
        ROOT / "tools" / "requirements-demo.txt"
    )
    assert set(release) == {"cargo-lambda", "ziglang"}, release
    for name, (version, hashes) in release.items():
        assert hashes, f"{name} has no --hash"
        assert dev[name][0] == version, f"{name}: release {version}, tests {dev[name][0]}"
    venv = (ROOT / "tools" / "venv.sh").read_text()
    assert "requirements-release.txt\" --require-hashes --no-deps" in venv
    build = workflow("path-to-live.yml")["jobs"]["build-functions"]
    runs = [str(s.get("run", "")) for s in build["steps"]]
    assert any(r.strip() == "tools/venv.sh --release" for r in runs), runs
    assert not any("pip install" in r for r in runs)
