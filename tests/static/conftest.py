"""Fixtures of the static checks: the parsed terraform/ module and the environments/ files.

Run with `.venv/bin/pytest tests/static` (make test-static). Terraform itself cannot run here,
so these tests hold it to account from its source and from the same files promote reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "tools", Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tfmodel import Environments, Module, load_module  # noqa: E402

TERRAFORM_DIR = ROOT / "terraform"
ENVIRONMENTS_DIR = ROOT / "environments"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def environments_dir() -> Path:
    return ENVIRONMENTS_DIR


@pytest.fixture(scope="session")
def tf() -> Module:
    return load_module(TERRAFORM_DIR)


@pytest.fixture(scope="session")
def env() -> Environments:
    return Environments.load(ENVIRONMENTS_DIR)


@pytest.fixture(scope="session")
def codedeploy_env(tmp_path_factory) -> Environments:
    """environments/ with dev and live switched to "engine": "codedeploy" (no shipped stage is):
    dev as it is (all at once, no bake), live as a runnable canary (10% for 5 min, then 100)
    with both hooks."""
    import json
    import shutil

    d = tmp_path_factory.mktemp("codedeploy") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    dev = json.loads((d / "dev.json").read_text())
    dev["strategy"]["engine"] = "codedeploy"
    (d / "dev.json").write_text(json.dumps(dev))
    live = json.loads((d / "live.json").read_text())
    live["strategy"] = {
        "type": "canary",
        "engine": "codedeploy",
        "hooks": {"before_allow_traffic": "app-live-pre", "after_allow_traffic": "app-live-post"},
        "steps": [{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 0}],
    }
    (d / "live.json").write_text(json.dumps(live))
    return Environments.load(d)
