"""The `analysis` block of the stage files: defaults by strategy, schema bounds, cross-field rules.

The same rules as promote's loader (crates/rollout/src/config.rs and its config_analysis_tests.rs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import check_environments
from conftest import ENVIRONMENTS_DIR


@pytest.fixture
def envdir(tmp_path: Path) -> Path:
    d = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    return d


def set_analysis(d: Path, stage: str, analysis: dict) -> None:
    path = d / f"{stage}.json"
    data = json.loads(path.read_text())
    data["analysis"] = analysis
    path.write_text(json.dumps(data))


def errors_of(d: Path) -> str:
    report = check_environments.check(d)
    assert not report.ok
    return "\n".join(report.errors)


def test_default_sources_follow_the_strategy():
    stages = {p.stem: json.loads(p.read_text()) for p in ENVIRONMENTS_DIR.glob("*.json") if p.stem != "project"}
    for name, stage in stages.items():
        want = ["alarms", "metrics"] if stage["strategy"]["type"] == "canary" else ["alarms"]
        if "analysis" not in stage:
            assert check_environments.analysis_sources(stage) == want, name
    assert "metrics" in check_environments.analysis_sources(stages["live"])


def test_every_field_within_bounds_is_accepted(envdir: Path):
    set_analysis(
        envdir,
        "live",
        {
            "sources": ["alarms", "metrics", "probe"],
            "probe_rate": 50,
            "period_seconds": 5,
            "min_requests": 50,
            "confidence": 0.95,
            "max_error_rate": 0.1,
            "latency_tolerance": 0.25,
            "latency_statistic": "mean",
            "max_extension_seconds": 30,
            "on_no_evidence": "rollback",
            "on_unreadable": "hold",
            "max_read_failures": 5,
            "judge_relative": True,
        },
    )
    assert check_environments.check(envdir).ok


@pytest.mark.parametrize(
    "analysis, where",
    [
        ({"sources": []}, "analysis/sources"),
        ({"sources": ["alarms", "alarms"]}, "analysis/sources"),
        ({"sources": ["logs"]}, "analysis/sources/0"),
        ({"period_seconds": 45}, "analysis/period_seconds"),
        ({"min_requests": 0}, "analysis/min_requests"),
        ({"confidence": 1}, "analysis/confidence"),
        ({"max_error_rate": 0}, "analysis/max_error_rate"),
        ({"latency_tolerance": -1}, "analysis/latency_tolerance"),
        ({"latency_statistic": "p50"}, "analysis/latency_statistic"),
        ({"max_extension_seconds": 90000}, "analysis/max_extension_seconds"),
        ({"on_no_evidence": "wait"}, "analysis/on_no_evidence"),
        ({"on_unreadable": "ignore"}, "analysis/on_unreadable"),
        ({"max_read_failures": 0}, "analysis/max_read_failures"),
        ({"probe_rate": 0}, "analysis/probe_rate"),
        ({"probe_rate": 5000}, "analysis/probe_rate"),
        ({"min_request": 10}, "analysis"),
    ],
)
def test_out_of_bounds_values_name_the_field(envdir: Path, analysis: dict, where: str):
    set_analysis(envdir, "live", analysis)
    assert f"live.json: {where}" in errors_of(envdir)


def test_judging_relatively_needs_the_metrics_source(envdir: Path):
    set_analysis(envdir, "live", {"sources": ["alarms"], "judge_relative": True})
    out = errors_of(envdir)
    assert "live.json: analysis/judge_relative" in out and '"metrics" source' in out
    # An all-at-once stage has no metrics by default, so the setting alone is refused there too.
    set_analysis(envdir, "live", {})
    set_analysis(envdir, "test", {"judge_relative": True})
    assert "test.json: analysis/judge_relative" in errors_of(envdir)
