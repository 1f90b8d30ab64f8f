"""`make demo-up` as a new user meets it: the stack it leaves, then every command it prints, run
as printed and in order, each checked against the emulator's own state (read with boto3,
independently of promote). Then the messages a newcomer meets around them, each with its exit
code, compared with the snapshots in tests/demo/snapshots (UPDATE_SNAPSHOTS=1 rewrites them),
and every command a message advises run in the state it was given in. `make demo-down` last:
nothing left running."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "target/demo"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def shell_env(env_sh: Path) -> dict[str, str]:
    """The environment a shell has after pasting the exports demo-up printed (source env.sh),
    starting from this process's environment without any AWS_* of its own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PROMOTE_"))}
    out = subprocess.run(["bash", "-c", f"source {shlex.quote(str(env_sh))} && env -0"],
                         env=base, capture_output=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.decode().split("\0") if "=" in line)


class Stack:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.proc = proc
        self.env = shell_env(WORK / "env.sh")
        self.commands = [l for l in (WORK / "commands.sh").read_text().splitlines() if l.strip()]
        self.gateway = re.search(r"http://127\.0\.0\.1:\d+", self.commands[0]).group(0)
        self.versions = {s: re.search(r"# version (\d+)", c).group(1)
                         for s, c in zip(("dev", "test", "live"), self.commands)}

    def sh(self, line: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=ROOT, env=env or self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)

    def alias(self, name: str) -> tuple[str, dict]:
        import boto3
        lam = boto3.client("lambda", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                           aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")
        a = lam.get_alias(FunctionName="app", Name=name)
        return a["FunctionVersion"], ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


@pytest.fixture(scope="module")
def stack():
    env = dict(os.environ, DEMO_PROFILE=os.environ.get("DEMO_PROFILE", "dev"), DEMO_BUILD="tests")
    proc = subprocess.run([str(ROOT / "tools/demo.sh"), "up"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=1500)
    try:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        yield Stack(proc)
    finally:
        subprocess.run([str(ROOT / "tools/demo.sh"), "down"], cwd=ROOT, capture_output=True, timeout=60)


def test_demo_up_prints_the_exports_and_the_commands_it_leaves_in_files(stack):
    out = stack.proc.stdout
    assert (WORK / "env.sh").read_text() in out
    assert (WORK / "commands.sh").read_text() in out
    kinds = [shlex.split(c)[:4] for c in stack.commands]
    assert kinds == [
        ["curl", "-s", f"{stack.gateway}/dev/build-info"],
        ["curl", "-s", f"{stack.gateway}/test/build-info"],
        ["curl", "-s", f"{stack.gateway}/live/build-info"],
        ["promote", "canary", "--stage", "live"],
        ["promote", "probe", "--stage", "live"],
        ["promote", "status"],
        ["promote", "rollback", "--stage", "live"],
    ], stack.commands


def test_the_printed_commands_work_in_order(stack):
    """Order matters: each command runs in the state the previous ones left."""
    dev, test, live = stack.versions["dev"], stack.versions["test"], stack.versions["live"]
    # Every stage from real code, live one release behind test.
    assert dev == test and int(live) < int(test), stack.versions
    for stage, line in zip(("dev", "test", "live"), stack.commands[:3]):
        r = stack.sh(line)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert (info["stage"], info["lambda"]["function_version"]) == (stage, stack.versions[stage]), info
        with urllib.request.urlopen(f"{stack.gateway}/{stage}/build-info", timeout=5) as answer:
            assert answer.status == 200

    canary = stack.sh(stack.commands[3])
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert stack.alias("live") == (live, {test: pytest.approx(0.1)})

    probe = stack.sh(stack.commands[4])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    # Every answer named its version, and the candidate's share is within the probe's own
    # interval around the alias's 10% (the probe warns when it is not).
    assert re.search(rf"version {test}\b", probe.stdout), probe.stdout
    assert "warning" not in probe.stdout + probe.stderr, probe.stdout + probe.stderr
    assert "unattributed" not in probe.stdout or re.search(r"unattributed\s+0\b", probe.stdout), probe.stdout

    status = stack.sh(stack.commands[5])
    assert status.returncode == 0, status.stdout + status.stderr
    assert "could not be read" not in status.stdout + status.stderr, status.stdout
    assert re.search(rf"\blive\b.*\b{live}\b.*\b{test}\b.*10%", status.stdout), status.stdout

    rollback = stack.sh(stack.commands[6])
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert stack.alias("live") == (live, {})
