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
            states[entry["checkpoint"]] = entry["functions"]
    return proc, states


PROJECT = json.loads((ROOT / "environments/project.json").read_text())
FUNCTIONS = tuple(f["name"] for f in PROJECT["functions"])
# The status each function's demo traffic (its probe request, or an upload) answers when healthy.
EXPECT = {f["name"]: f["probe"].get("expect_status", 200) for f in PROJECT["functions"]}
# Version 1 of each function is the seed's; the demo publishes two releases after it.
V1, V2 = "2", "3"


def test_demo_exits_zero_and_narrates(walk):
    proc, _ = walk
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    for shown in ("$ promote publish --zip app=", "--zip birthday=", "$ promote deploy --stage dev --release app=2 --release birthday=2",
                  "$ promote canary --stage live --weight 10", "$ promote status", "exited with code 4",
                  "--guardian ", "$ kill -9 "):
        assert shown in out, f"demo output lacks {shown!r}"
    # The second release is built by cargo for this machine, not with cargo lambda.
    assert "cargo lambda" not in out


def build_infos(out: str) -> list[tuple[str, dict]]:
    """Every `curl -s <gateway>/<stage>/build-info` the demo shows, with the JSON it printed."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.search(r"\$ curl -s http://127\.0\.0\.1:\d+/(\w+)/build-info$", line)
        if m and i + 1 < len(lines):
            found.append((m.group(1), json.loads(lines[i + 1])))
    return found


def birthday_answers(out: str) -> list[tuple[str, str, str, str]]:
    """Every birthday request the demo shows: (stage, method, what it printed, x-app-version)."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.search(r"\$ curl -s (-X PUT .*)?-w .* http://127\.0\.0\.1:\d+/(\w+)/hello/ada$", line)
        if m and i + 1 < len(lines):
            printed, _, version = lines[i + 1].rpartition(" x-app-version: ")
            found.append((m.group(2), "PUT" if m.group(1) else "GET", printed, version))
    return found


def test_demo_requests_flow_through_the_gateway(walk):
    """After each move real requests through the local API Gateway answer, for every function,
    from the version the stage's alias serves, run from its own zip."""
    proc, _ = walk
    infos = build_infos(proc.stdout)
    expected = [("dev", V1), ("test", V1), ("live", V1), ("dev", V2), ("test", V2),
                ("live", V1),  # rolled back
                ("live", V2)]  # the whole plan done
    seen = [(stage, info["lambda"]["function_version"], info["lambda"]["alias"], info["stage"]) for stage, info in infos]
    assert seen == [(stage, v, stage, stage) for stage, v in expected], seen
    # The second release is the bumped minor version of the first.
    first, second = infos[0][1]["version"], infos[3][1]["version"]
    assert first != second

    # The birthday API on each stage's own table: a PUT, then a GET of what it stored.
    answers = birthday_answers(proc.stdout)
    assert [(stage, method, version) for stage, method, _, version in answers] == [
        (stage, method, v) for stage, v in expected for method in ("PUT", "GET")], answers
    for stage, method, printed, _ in answers:
        if method == "PUT":
            assert printed == "204", (stage, printed)
        else:
            assert re.fullmatch(r'\{"message":"Hello, ada! (Your birthday is in \d+ day\(s\)|Happy birthday!)"\}', printed), printed


def tally(out: str, title: str) -> dict[str, int]:
    """The `  app 200 version 3   40  (10.0% of app)` lines printed under TITLE."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(title))
    counts = {}
    for line in lines[start + 1:]:
        m = re.match(r"  ([\w-]+ \d{3} [\w ]+?)\s+(\d+)  \(", line)
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_demo_shows_the_canary_split_and_catches_the_bad_release_by_traffic(walk):
    proc, _ = walk
    out = proc.stdout
    split = tally(out, "observed split:")
    for f in FUNCTIONS:
        # 10% of 200: 20 expected, sigma 4.2; 5 sigma either way.
        ok = EXPECT[f]
        assert 1 <= split.get(f"{f} {ok} version {V2}", 0) <= 41, split
        assert split.get(f"{f} {ok} version {V1}", 0) + split.get(f"{f} {ok} version {V2}", 0) == 200, split
    assert sum(split.values()) == 200 * len(FUNCTIONS), split
    # Only birthday's candidate fails: app answers throughout, and still goes back with it.
    bad = tally(out, "live traffic during the bad canary:")
    assert bad.get("birthday 502 error", 0) > 0, bad
    assert not [k for k in bad if k.startswith("app ") and not k.startswith(f"app {EXPECT['app']} ")], bad
    # Nobody sets an alarm by hand: the gateway evaluates them from the failing requests.
    assert "set-alarm-state" not in out + proc.stderr
    assert re.search(r"^app-live-\S+ ALARM Threshold Crossed: ", out, re.M), out[-3000:]
    assert re.search(r"^rolled back: .*every function of the release on stage live was taken back", out + proc.stderr, re.M)


def test_demo_shows_the_guardian_taking_back_a_canary_whose_promote_was_killed(walk):
    proc, states = walk
    out = proc.stdout
    guarded = tally(out, "live traffic while promote was dead:")
    assert guarded.get("birthday 502 error", 0) > 0, guarded
    # The refusal of a rerun and `status` say who rolled back and why.
    assert re.search(r"rolled back \(by the guardian: ", out), out[-3000:]
    for f in FUNCTIONS:
        assert states["guardian-canary"][f]["live"]["weights"] == {V2: pytest.approx(0.1)}, states["guardian-canary"]
        back = states["guardian-rolled-back"][f]["live"]
        assert (back["version"], back["weights"]) == (V1, {}), (f, back)
        assert "by=guardian" in back["description"], (f, back)


def test_demo_passes_through_every_state(walk):
    proc, states = walk
    assert list(states) == ["seeded", "published", "baseline", "test-on-new", "canary-10", "rolled-back",
                            "guardian-canary", "guardian-rolled-back", "live-complete"], proc.stderr[-4000:]
    for f in FUNCTIONS:
        at = {name: s[f] for name, s in states.items()}
        assert {name: a["version"] for name, a in at["seeded"].items()} == {"dev": "1", "test": "1", "live": "1"}

        # Two real releases published after the seeded version 1, every function moving together.
        assert {name: (a["version"], a["weights"]) for name, a in at["baseline"].items()} == {
            "dev": (V1, {}), "test": (V1, {}), "live": (V1, {})}, f

        on_test = at["test-on-new"]
        assert (on_test["dev"]["version"], on_test["test"]["version"], on_test["live"]["version"]) == (V2, V2, V1), f

        canary = at["canary-10"]["live"]
        assert canary["version"] == V1 and canary["weights"] == {V2: pytest.approx(0.1)}, f

        rolled_back = at["rolled-back"]["live"]
        assert rolled_back["version"] == V1 and rolled_back["weights"] == {}, f

        final = at["live-complete"]["live"]
        assert final["version"] == V2 and final["weights"] == {}, f


def test_demo_leaves_no_emulator_running(walk):
    assert not moto_listening(ROOT / "target/demo/moto/port")
    assert not (ROOT / "target/demo/moto/pid").exists()
    assert not (ROOT / "target/demo/next-release").exists()
    assert not (ROOT / "target/demo/gateway/pid").exists()
