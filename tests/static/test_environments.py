"""environments/ as `promote check` sees it: each file against its schema, then the rules a
schema cannot express. The rules are promote's (crates/rollout); these tests hold the check CI
and Terraform's users run to its messages, a bad file at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import check_environments
from conftest import ENVIRONMENTS_DIR


def stage_files() -> list[Path]:
    return sorted(p for p in ENVIRONMENTS_DIR.glob("*.json") if p.name != "project.json")


def test_the_repository_files_are_valid():
    report = check_environments.check(ENVIRONMENTS_DIR)
    assert report.errors == []
    assert report.order[0] == "dev" and report.order[-1] == "live"


@pytest.mark.parametrize("path", stage_files(), ids=lambda p: p.name)
def test_each_stage_file_names_its_schema(path: Path):
    # Editors validate as you type through "$schema"; a wrong path silently loses that.
    data = json.loads(path.read_text())
    assert (path.parent / data["$schema"]).resolve() == (ENVIRONMENTS_DIR / "schema/stage.schema.json").resolve()


def test_cli_reports_success(capsys):
    assert check_environments.main([str(ENVIRONMENTS_DIR)]) == 0
    assert "dev -> test -> live" in capsys.readouterr().out


@pytest.fixture
def envdir(tmp_path: Path) -> Path:
    """A writable copy of environments/ to break in one way per test."""
    d = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    return d


def edit(d: Path, stage: str, change) -> None:
    path = d / f"{stage}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def errors_of(d: Path) -> str:
    report = check_environments.check(d)
    assert not report.ok
    return "\n".join(report.errors)


def test_schema_violation_names_file_and_field(envdir: Path):
    edit(envdir, "test", lambda s: s["alarms"][0].update(kind="lambda_duration"))
    out = errors_of(envdir)
    assert 'test.json: field `alarms[0].kind`: "lambda_duration" is not one of "lambda_errors"' in out


def test_unknown_field_is_rejected(envdir: Path):
    edit(envdir, "dev", lambda s: s.update(bake=3))
    assert "dev.json: unknown field `bake`" in errors_of(envdir)


def test_invalid_json_is_reported_with_position(envdir: Path):
    (envdir / "live.json").write_text('{"upstream": "test",')
    out = errors_of(envdir)
    assert "live.json: not valid JSON" in out and "line 1" in out


def test_project_file_is_validated(envdir: Path):
    (envdir / "project.json").write_text(json.dumps({"functions": []}))
    out = errors_of(envdir)
    assert "project.json: missing field `rest_api_name`" in out
    assert "project.json: field `functions`" in out


def test_two_first_stages(envdir: Path):
    edit(envdir, "test", lambda s: s.update(upstream=None))
    assert 'stages dev, test all have "upstream": null; exactly one' in errors_of(envdir)


def test_unknown_upstream(envdir: Path):
    edit(envdir, "live", lambda s: s.update(upstream="staging"))
    assert "live.json: field `upstream`: `staging` is not a stage; the stages are: dev, live, test" in errors_of(envdir)


def test_fork_is_not_a_linear_path(envdir: Path):
    edit(envdir, "live", lambda s: s.update(upstream="dev"))
    out = errors_of(envdir)
    assert "stages live, test all follow `dev`; the path must be a single line" in out


def test_cycle_is_detected(envdir: Path):
    # dev is the root; test and live point at each other, so neither is reachable.
    edit(envdir, "test", lambda s: s.update(upstream="live"))
    out = errors_of(envdir)
    assert "stages live, test are not reachable from the first stage" in out and "cycle" in out


def test_stage_name_must_be_usable_as_alias(envdir: Path):
    shutil.copy(envdir / "live.json", envdir / "Live-2.json")
    assert "Live-2.json: `Live-2` is not a valid stage name" in errors_of(envdir)


def test_canary_weights_must_increase(envdir: Path):
    steps = [{"weight": 50, "bake_seconds": 60}, {"weight": 10, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 0}]
    edit(envdir, "live", lambda s: s["strategy"].update(steps=steps))
    assert (
        "live.json: field `strategy.steps[1].weight`: 10% does not increase on the previous step's 50%; "
        "weights must be strictly increasing"
    ) in errors_of(envdir)


def test_canary_must_end_at_100(envdir: Path):
    steps = [{"weight": 10, "bake_seconds": 60}, {"weight": 50, "bake_seconds": 60}]
    edit(envdir, "live", lambda s: s["strategy"].update(steps=steps))
    assert "live.json: field `strategy.steps[1].weight`: the last step must be 100" in errors_of(envdir)


def test_alarm_names_are_unique_across_stages(envdir: Path):
    edit(envdir, "test", lambda s: s["alarms"][0].update(name="app-dev-lambda-errors"))
    assert (
        "test.json: field `alarms[0].name`: alarm `app-dev-lambda-errors` is also an alarm of stage `dev` (dev.json)"
    ) in errors_of(envdir)


def test_alarm_names_are_unique_within_a_stage(envdir: Path):
    edit(envdir, "dev", lambda s: s["alarms"][1].update(name=s["alarms"][0]["name"]))
    assert "dev.json: field `alarms[1].name`: alarm `app-dev-lambda-errors` is listed twice" in errors_of(envdir)


def test_a_throttle_rate_threshold_is_a_fraction(envdir: Path):
    def as_percent(stage: dict) -> None:
        (i,) = [i for i, a in enumerate(stage["alarms"]) if a["kind"] == "lambda_throttle_rate"]
        stage["alarms"][i]["threshold"] = 2
    edit(envdir, "live", as_percent)
    assert (
        "live.json: field `alarms[1].threshold`: alarm `app-live-lambda-throttle-rate` watches a share of requests, "
        "so its threshold is a fraction below 1 (0.05 is 5%), not 2"
    ) in errors_of(envdir)


def test_no_stage_files(envdir: Path):
    for p in envdir.glob("*.json"):
        if p.name != "project.json":
            p.unlink()
    assert "no stage files" in errors_of(envdir)


def test_cli_exits_2_with_one_line_per_problem(envdir: Path, capsys):
    edit(envdir, "live", lambda s: s.update(upstream="live"))
    edit(envdir, "dev", lambda s: s.update(poll_interval_seconds=0))
    assert check_environments.main([str(envdir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("error: ")] == [
        f"error: {envdir / 'dev.json'}: field `poll_interval_seconds`: 0 is below the minimum of 1 "
        "(How often the evidence is read during a bake, 1 to 60 seconds.)",
        f"error: {envdir / 'live.json'}: field `upstream`: stage `live` cannot be its own upstream",
        f"error: 2 problem(s) in {envdir}; fix them and run `promote check` again",
    ]


def test_json_output_names_file_and_field(envdir: Path):
    edit(envdir, "live", lambda s: s["analysis"].update(confidence=1) if "analysis" in s else s.update(analysis={"confidence": 1}))
    done = check_environments.run_check(envdir)
    assert done.returncode == 2
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["checked", "error"]
    (problem,) = events[0]["problems"]
    assert problem["file"] == str(envdir / "live.json")
    assert problem["field"] == "analysis.confidence"
    assert "1 must be less than 1" in problem["message"]
    assert events[1]["exit_code"] == 2


def test_adding_a_stage_file_adds_a_stage(envdir: Path):
    edit(envdir, "live", lambda s: s.update(upstream="staging"))
    shutil.copy(envdir / "test.json", envdir / "staging.json")
    edit(envdir, "staging", lambda s: (s.update(upstream="test"), [a.update(name=a["name"].replace("test", "staging")) for a in s["alarms"]]))
    report = check_environments.check(envdir)
    assert report.errors == []
    assert report.order == ["dev", "test", "staging", "live"]


def test_names_terraform_derives_must_fit_aws_limits(envdir: Path):
    project = json.loads((envdir / "project.json").read_text())
    project["functions"][0]["name"] = "f" * 50
    (envdir / "project.json").write_text(json.dumps(project))
    out = errors_of(envdir)
    # 50 + "-deploy-" + "live" = 62 fits; 50 + "-codedeploy" = 61 fits; "-apigateway-logs" does not.
    assert f"the IAM role name `{'f' * 50}-apigateway-logs` that Terraform derives is 66 characters" in out
    assert "-deploy-live`" not in out


def test_a_bake_shorter_than_an_alarm_window_is_refused(envdir: Path):
    # live's p99 alarm needs 3 periods of 60 s before it can fire: a 120 s last step passes first.
    edit(envdir, "live", lambda s: s["strategy"]["steps"][-1].update(bake_seconds=120))
    edit(envdir, "test", lambda s: s["strategy"].update(bake_seconds=30))
    out = errors_of(envdir)
    assert (
        "live.json: field `strategy.steps[2].bake_seconds`: a 120 s bake ends before alarm `app-live-api-p99-latency` "
        "could fire: it needs 3 period(s) of 60 s = 180 s of data; set bake_seconds to at least 180"
    ) in out
    assert "test.json: field `strategy.bake_seconds`: a 30 s bake ends before alarm `app-test-api-p99-latency`" in out


def test_no_bake_and_a_shorter_alarm_window_are_accepted(envdir: Path):
    edit(envdir, "test", lambda s: s["strategy"].update(bake_seconds=0))
    edit(envdir, "live", lambda s: (s["strategy"]["steps"][-1].update(bake_seconds=60),
                                    [a.update(evaluation_periods=1) for a in s["alarms"]]))
    assert check_environments.check(envdir).errors == []


def test_fixtures_shorten_bakes_only_under_the_named_override(envdir: Path):
    edit(envdir, "test", lambda s: s["strategy"].update(bake_seconds=1))
    assert "a 1 s bake ends before" in errors_of(envdir)
    edit(envdir, "test", lambda s: s.update(test_fixture_short_bakes=True))
    assert check_environments.check(envdir).errors == []


@pytest.mark.parametrize("path", stage_files(), ids=lambda p: p.name)
def test_the_repository_files_never_use_the_test_override(path: Path):
    assert "test_fixture_short_bakes" not in json.loads(path.read_text())
