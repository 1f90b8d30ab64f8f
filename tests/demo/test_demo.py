"""Runs `tools/demo.sh run` (what `make demo` runs) non-interactively against its own moto and
asserts the alias states the walk passes through, read from the emulator independently of
promote's own output."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def moto_listening(port_file: Path) -> bool:
    if not port_file.exists():
        return False
    try:
        with socket.create_connection(("127.0.0.1", int(port_file.read_text())), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    log = tmp_path_factory.mktemp("demo") / "states.jsonl"
    env = dict(os.environ, DEMO_PROFILE=os.environ.get("DEMO_PROFILE", "dev"), DEMO_BUILD="tests")
    # Bounded: the build is incremental by the time tests run; the walk itself is ~1 minute.
    proc = subprocess.run(
        [str(ROOT / "tools/demo.sh"), "run", "--state-log", str(log)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1500,
    )
    states = {}
    if log.exists():
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            states[entry["checkpoint"]] = entry["aliases"]
    return proc, states


def test_demo_exits_zero_and_narrates(walk):
    proc, _ = walk
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout + proc.stderr  # publish is narrated on stderr: its stdout is the version
    for shown in ("$ promote publish", "$ promote deploy --stage dev", "$ promote canary --stage live --weight 10",
                  "$ promote status", "exited with code 4"):
        assert shown in out, f"demo output lacks {shown!r}"


def build_infos(out: str) -> list[tuple[str, dict]]:
    """Every `curl -s <gateway>/<stage>/build-info` the demo shows, with the JSON it printed."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.search(r"\$ curl -s http://127\.0\.0\.1:\d+/(\w+)/build-info$", line)
        if m and i + 1 < len(lines):
            found.append((m.group(1), json.loads(lines[i + 1])))
    return found


def test_demo_requests_flow_through_the_gateway(walk):
    """After each move a real request through the local API Gateway answers with the version the
    stage's alias serves, run from its own zip."""
    proc, _ = walk
    infos = build_infos(proc.stdout)
    v1, v2 = "2", "3"
    seen = [(stage, info["lambda"]["function_version"], info["lambda"]["alias"], info["stage"]) for stage, info in infos]
    assert seen == [
        ("dev", v1, "dev", "dev"), ("test", v1, "test", "test"), ("live", v1, "live", "live"),
        ("dev", v2, "dev", "dev"), ("test", v2, "test", "test"),
        ("live", v1, "live", "live"),  # rolled back
        ("live", v2, "live", "live"),  # the whole plan done
    ], seen
    # The second release is the bumped minor version of the first.
    first, second = infos[0][1]["version"], infos[3][1]["version"]
    assert first != second


def tally(out: str, title: str) -> dict[str, int]:
    """The `  200 version 3   40  (10.0%)` lines printed under TITLE."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(title))
    counts = {}
    for line in lines[start + 1:]:
        m = re.match(r"  (\d{3} [\w ]+?)\s+(\d+)  \(", line)
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_demo_shows_the_canary_split_and_catches_the_bad_release_by_traffic(walk):
    proc, _ = walk
    out = proc.stdout
    split = tally(out, "observed split:")
    assert sum(split.values()) == 400
    # 10% of 400: 40 expected, sigma 6; 5 sigma either way.
    assert 10 <= split.get("200 version 3", 0) <= 70, split
    assert split.get("200 version 2", 0) + split.get("200 version 3", 0) == 400, split
    bad = tally(out, "live traffic during the bad canary:")
    assert bad.get("502 error", 0) > 0, bad
    # Nobody sets an alarm by hand: the gateway evaluates it from the failing requests.
    assert "set-alarm-state" not in out + proc.stderr
    assert re.search(r"^ALARM\tThreshold Crossed: ", out, re.M), out[-3000:]


def test_demo_passes_through_every_state(walk):
    proc, states = walk
    assert list(states) == ["seeded", "published", "baseline", "test-on-new", "canary-10",
                            "rolled-back", "live-complete"], proc.stderr[-4000:]

    seeded = states["seeded"]
    assert {name: a["version"] for name, a in seeded.items()} == {"dev": "1", "test": "1", "live": "1"}

    # Two real builds published after the seeded version 1.
    v1, v2 = "2", "3"
    baseline = states["baseline"]
    assert {name: (a["version"], a["weights"]) for name, a in baseline.items()} == {
        "dev": (v1, {}), "test": (v1, {}), "live": (v1, {})}

    on_test = states["test-on-new"]
    assert (on_test["dev"]["version"], on_test["test"]["version"], on_test["live"]["version"]) == (v2, v2, v1)

    canary = states["canary-10"]["live"]
    assert canary["version"] == v1
    assert canary["weights"] == {v2: pytest.approx(0.1)}

    rolled_back = states["rolled-back"]["live"]
    assert rolled_back["version"] == v1
    assert rolled_back["weights"] == {}

    final = states["live-complete"]
    assert final["live"]["version"] == v2 and final["live"]["weights"] == {}


def test_demo_leaves_no_emulator_running(walk):
    assert not moto_listening(ROOT / "target/demo/moto/port")
    assert not (ROOT / "target/demo/moto/pid").exists()
    assert not (ROOT / "target/demo/next-release").exists()
    assert not (ROOT / "target/demo/gateway/pid").exists()
