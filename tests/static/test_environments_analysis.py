"""The `analysis` block of the stage files as `promote check` holds it: schema bounds, cross-field rules.

The rules are promote's (environments/schema/stage.schema.json, crates/rollout/src/validate.rs);
the defaults by strategy are tested with the loader (crates/rollout/src/load_analysis_tests.rs).
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
            "judge_relative": True,
            "on_unreadable": "hold",
            "max_read_failures": 1,
            "early_pass": True,
        },
    )
    assert check_environments.check(envdir).ok


@pytest.mark.parametrize(
    "analysis, where, what",
    [
        ({"sources": []}, "analysis.sources", "must list at least 1 item"),
        ({"sources": ["alarms", "alarms"]}, "analysis.sources", '["alarms","alarms"] lists an item twice'),
        ({"sources": ["logs"]}, "analysis.sources[0]", '"logs" is not one of "alarms", "metrics", "probe"'),
        ({"period_seconds": 45}, "analysis.period_seconds", "45 is not one of 1, 5, 10, 30, 60"),
        ({"min_requests": 0}, "analysis.min_requests", "0 is below the minimum of 1"),
        ({"confidence": 1}, "analysis.confidence", "1 must be less than 1"),
        ({"max_error_rate": 0}, "analysis.max_error_rate", "0 must be greater than 0"),
        ({"latency_tolerance": -1}, "analysis.latency_tolerance", "-1 is below the minimum of 0"),
        ({"latency_statistic": "p50"}, "analysis.latency_statistic", '"p50" is not one of "p99", "mean"'),
        ({"max_extension_seconds": 90000}, "analysis.max_extension_seconds", "90000 is above the maximum of 86400"),
        ({"on_no_evidence": "wait"}, "analysis.on_no_evidence", '"wait" is not one of "hold", "rollback"'),
        ({"probe_rate": 0}, "analysis.probe_rate", "0 must be greater than 0"),
        ({"probe_rate": 5000}, "analysis.probe_rate", "5000 is above the maximum of 1000"),
        ({"on_unreadable": "ignore"}, "analysis.on_unreadable", '"ignore" is not one of "rollback", "hold"'),
        ({"max_read_failures": 0}, "analysis.max_read_failures", "0 is below the minimum of 1"),
        ({"early_pass": 1}, "analysis.early_pass", '1 is not of type "boolean"'),
        ({"min_request": 10}, "analysis", "unknown field `min_request`"),
    ],
)
def test_out_of_bounds_values_name_the_field(envdir: Path, analysis: dict, where: str, what: str):
    set_analysis(envdir, "live", analysis)
    assert f"live.json: field `{where}`: {what}" in errors_of(envdir)


def test_judging_relatively_needs_the_metrics_source(envdir: Path):
    set_analysis(envdir, "live", {"sources": ["alarms"], "judge_relative": True})
    out = errors_of(envdir)
    assert "live.json: field `analysis.judge_relative`" in out and '"metrics" source' in out
    # An all-at-once stage has no metrics by default, so the setting alone is refused there too.
    set_analysis(envdir, "live", {})
    set_analysis(envdir, "test", {"judge_relative": True})
    assert "test.json: field `analysis.judge_relative`" in errors_of(envdir)
