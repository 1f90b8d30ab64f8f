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
import time
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
        # app's version on each stage, and birthday's on live, from the comments.
        self.versions = {s: re.search(r"# app version (\d+)", c).group(1)
                         for s, c in zip(("dev", "test", "live"), self.commands)}
        self.birthday_live = re.search(r"# birthday version (\d+)", self.commands[3]).group(1)

    def sh(self, line: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=ROOT, env=env or self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)

    def client(self, service: str):
        import boto3
        return boto3.client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                            aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")

    def wait_alarms(self, stage: str, state: str, only: str | None = None, within: float = 60) -> None:
        """Until every alarm of STAGE (or the one named ONLY) is in STATE."""
        cw = self.client("cloudwatch")
        deadline = time.monotonic() + within
        states = None
        while time.monotonic() < deadline:
            alarms = cw.describe_alarms(AlarmNamePrefix=only or f"app-{stage}-")["MetricAlarms"]
            # A prefix also matches the other functions' copies (<name>-birthday).
            states = {a["AlarmName"]: a["StateValue"] for a in alarms if only in (None, a["AlarmName"])}
            if states and all(v == state for v in states.values()):
                return
            time.sleep(0.2)
        pytest.fail(f"alarms of {stage} not {state} within {within} s: {states}")

    def alias(self, name: str, function: str = "app") -> tuple[str, dict]:
        a = self.client("lambda").get_alias(FunctionName=function, Name=name)
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
    kinds = [shlex.split(c, comments=True)[:4] for c in stack.commands]
    assert kinds == [
        ["curl", "-s", f"{stack.gateway}/dev/build-info"],
        ["curl", "-s", f"{stack.gateway}/test/build-info"],
        ["curl", "-s", f"{stack.gateway}/live/build-info"],
        ["curl", "-s", "-X", "PUT"],
        ["curl", "-s", f"{stack.gateway}/live/hello/nando"],
        ["curl", "-s", "-X", "PUT"],
        ["curl", "-s", f"{stack.gateway}/live/notes/shopping"],
        ["curl", "-s", "-F", f"file=@target/demo/photo.png"],
        ["curl", "-s", "-o", "target/demo/photo_75.png"],
        ["curl", "-s", "--aws-sigv4", "aws:amz:$AWS_REGION:s3"],
        ["for", "i", "in", "$(seq"],
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

    # The birthday API on live's own table: the PUT stores, the GET answers from it, both from
    # the version live's alias serves.
    birthday = stack.birthday_live
    assert stack.alias("live", "birthday") == (birthday, {})
    put = stack.sh(stack.commands[3])
    assert (put.returncode, put.stdout) == (0, "204\n"), put.stdout + put.stderr
    item = stack.client("dynamodb").get_item(TableName="birthday-live", Key={"username": {"S": "nando"}}).get("Item")
    assert item and "1990-07-05" in json.dumps(item), item
    got = stack.sh(stack.commands[4])
    assert got.returncode == 0, got.stderr
    assert re.fullmatch(r'\{"message":"Hello, nando! (Your birthday is in \d+ day\(s\)|Happy birthday!)"\}', got.stdout), got.stdout
    with urllib.request.urlopen(f"{stack.gateway}/live/hello/nando", timeout=5) as answer:
        assert answer.headers["x-app-version"] == birthday

    # The object functions on live's buckets, each answer from the version live serves.
    notes_live = re.search(r"# notes version (\d+)", stack.commands[5]).group(1)
    put = stack.sh(stack.commands[5])
    assert put.returncode == 0 and put.stdout.rstrip().endswith(" 201"), put.stdout + put.stderr
    assert json.loads(put.stdout.rsplit(" ", 1)[0])["key"] == "shopping.txt", put.stdout
    again = stack.sh(stack.commands[5])
    assert again.stdout.rstrip().endswith(" 200"), again.stdout
    notes_bucket = next(b for b in stack.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("app-live-notes-"))
    stored = stack.client("s3").get_object(Bucket=notes_bucket["Name"], Key="shopping.txt")["Body"].read()
    assert stored == b"remember the milk", stored
    got = stack.sh(stack.commands[6])
    assert got.stdout == "remember the milk", got.stdout
    with urllib.request.urlopen(f"{stack.gateway}/live/notes/shopping", timeout=5) as answer:
        assert answer.headers["x-app-version"] == notes_live
    image = stack.sh(stack.commands[7])
    assert image.returncode == 0 and image.stdout.rstrip().endswith(" 201"), image.stdout + image.stderr
    copy = stack.sh(stack.commands[8])
    assert copy.stdout.strip() == "200 image/png", copy.stdout + copy.stderr
    png = (WORK / "photo_75.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 75, png[:24]
    metadata_live = re.search(r"# file-metadata version (\d+)", stack.commands[10]).group(1)
    upload = stack.sh(stack.commands[9])
    assert upload.returncode == 0, upload.stdout + upload.stderr
    summary = stack.sh(stack.commands[10])
    assert summary.returncode == 0, summary.stdout + summary.stderr
    made = json.loads(summary.stdout)
    assert (made["key"], made["size"], made["made_by"]["version"]) == ("hello.txt", 5, metadata_live), made

    # The canary moves every function of the release (test's versions) to 10% of live.
    canary = stack.sh(stack.commands[11])
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert stack.alias("live") == (live, {test: pytest.approx(0.1)})
    birthday_candidate = stack.alias("test", "birthday")[0]
    assert birthday_candidate != birthday
    assert stack.alias("live", "birthday") == (birthday, {birthday_candidate: pytest.approx(0.1)})

    probe = stack.sh(stack.commands[12])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    # Every answer named its version, and each version's share interval holds its alias weight
    # (the probe warns when one does not).
    rows = {m.group(1): (int(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)))
            for m in re.finditer(r"^  (\d+)\s+(\d+)\s+[\d.]+%\s+\[([\d.]+), ([\d.]+)\]%\s+([\d.]+)%", probe.stdout, re.M)}
    assert set(rows) == {live, test}, probe.stdout
    assert sum(n for n, *_ in rows.values()) == 250, probe.stdout
    for version, (_, low, high, alias) in rows.items():
        assert low <= alias <= high, (version, probe.stdout)
    assert rows[test][3] == 10.0 and rows[live][3] == 90.0, probe.stdout
    assert "warning" not in probe.stdout + probe.stderr, probe.stdout + probe.stderr

    status = stack.sh(stack.commands[13])
    assert status.returncode == 0, status.stdout + status.stderr
    assert "could not be read" not in status.stdout + status.stderr, status.stdout
    assert re.search(rf"\blive\b.*\b{live}\b.*\b{test}\b.*10%", status.stdout), status.stdout

    rollback = stack.sh(stack.commands[14])
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert stack.alias("live") == (live, {})
    assert stack.alias("live", "birthday") == (birthday, {})


def normalized(text: str, stack: Stack) -> str:
    """What a message says, without what changes from run to run."""
    text = text.replace(stack.gateway, "http://127.0.0.1:GATEWAY").replace(stack.env["AWS_ENDPOINT_URL"], "http://127.0.0.1:MOTO")
    text = text.replace(str(ROOT) + "/", "")
    text = re.sub(r"https://\w+\.execute-api\.", "https://API.execute-api.", text)
    text = re.sub(r"CodeSha256 \S+ \(known: [^)]*\)", "CodeSha256 SHA (known: SHAS)", text)
    text = re.sub(r"\b[0-9a-f]{40}\b", "GITSHA", text)
    text = re.sub(r"\b[0-9a-f]{7}\b", "SHORTSHA", text)
    text = re.sub(r"\b\d\d:\d\d:\d\d UTC\b", "HH:MM:SS UTC", text)
    return text


def snapshot(name: str, got: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            pytest.fail(f"new snapshot {path.name} written; check it and run again")
    assert got == path.read_text(), f"{path.name} differs (UPDATE_SNAPSHOTS=1 rewrites it):\n{got}"


def said(stack: Stack, name: str, line: str, code: int, env: dict | None = None) -> str:
    """Runs LINE, checks its exit code, compares what it printed with snapshot NAME."""
    r = stack.sh(line, env)
    out = r.stdout + r.stderr
    assert r.returncode == code, f"{line}: exit {r.returncode}, expected {code}\n{out}"
    snapshot(name, f"$ {line}\n[exit {code}]\n{normalized(out, stack)}")
    return out


def advised(message: str) -> list[str]:
    """Every command a message tells the reader to run (in backquotes)."""
    return re.findall(r"`(promote [^`]+)`", message)


def test_the_messages_around_them_say_what_to_do_and_their_advice_works(stack):
    """Runs after the printed commands (live serves the older release, the newer one rolled
    back there). Each message with its exit code as a snapshot, then the command it advises,
    in the state it was given in."""
    dev, live = stack.versions["dev"], stack.versions["live"]

    # The no-op says where the candidate came from and how to name another.
    m = said(stack, "noop_from_upstream", "promote deploy --stage test", 0)
    # In a release of several functions each is named with --release FUNCTION=N.
    functions = [f["name"] for f in json.loads((ROOT / "environments/project.json").read_text())["functions"]]
    assert advised(m) == [f"promote deploy --stage test --release {f}=N" for f in functions], m
    r = stack.sh(f"promote deploy --stage test --release app={live} --allow-downgrade")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stack.alias("test") == (live, {})
    assert stack.sh(f"promote deploy --stage test --release app={dev}").returncode == 0

    # A version rolled back on a stage goes out again only with --retry, as the refusal says;
    # the --bake warning (a bake shorter than the alarms' windows) is printed once.
    m = said(stack, "rolled_back_before", "promote canary --stage live --weight 10", 3)
    assert "pass --retry" in m, m
    r = stack.sh("promote canary --stage live --weight 10 --retry --bake 1s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (r.stdout + r.stderr).count("warning: --bake 1s is shorter than") == 1, r.stdout + r.stderr
    assert stack.alias("live") == (live, {dev: pytest.approx(0.1)})
    # With the shipped environments (a p99 latency judge), moto answers the percentile with an
    # HTTP 500 when it holds datapoints for it (not always: promote/src/cloud/aws_tests.rs shows the
    # message for certain); when it does, the message names the endpoint and the call.
    shipped = dict(stack.env, PROMOTE_ENVIRONMENTS=str(ROOT / "environments"))
    r = stack.sh("promote status --stage live", shipped)
    assert r.returncode == 0, r.stdout + r.stderr
    if "could not be read" in r.stdout:
        assert "CloudWatch GetMetricData: the endpoint http://127.0.0.1:" in r.stdout, r.stdout
        assert "answered HTTP 500" in r.stdout, r.stdout
    assert stack.sh("promote rollback --stage live").returncode == 0

    # Back to the version served before: the seeded version 1, whose code the gateway lacks;
    # it says so in its answer. Once more, and the refusal advises a command that works here.
    said(stack, "rollback_to_previous", "promote rollback --stage live --to-previous", 0)
    # The gateway re-reads the aliases every 250 ms: the first answer from version 1 within 5 s.
    deadline = time.monotonic() + 5
    broken = None
    while broken is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{stack.gateway}/live/build-info", timeout=5).read()
        except urllib.error.HTTPError as e:
            broken = e
    assert broken is not None and broken.code == 502, broken
    body = json.loads(broken.read())
    assert body["errorType"] == "InvalidZipFileException"
    assert "function app version 1: its code is missing" in body["message"], body
    m = said(stack, "rollback_to_previous_again", "promote rollback --stage live --to-previous", 2)
    # (The note it quotes names the command that wrote it, not advice.)
    advice = m.split("move it explicitly with", 1)[1]
    # In a release the advice names the function whose alias refused (app, the first).
    assert advised(advice) == ["promote canary --stage live --release app=N --allow-downgrade", "promote status"], m
    # That one failing request fired live's errors alarm (the gateway evaluates it); with no
    # more failures it returns to OK within a few evaluations, and a rollout may start again.
    stack.wait_alarms("live", "ALARM", "app-live-lambda-errors")
    stack.wait_alarms("live", "OK")
    # Back to the release live served, which the first --to-previous rolled back: the message
    # says --retry is needed for it.
    assert f"add --retry for version {live}, rolled back here" in m, m
    for line in advised(advice):
        r = stack.sh(line.replace("--release app=N", f"--release app={live} --retry"))
        assert r.returncode == 0, line + "\n" + r.stdout + r.stderr
    assert stack.alias("live") == (live, {})

    # No credentials, and an endpoint that does not answer: what was tried, what to do.
    bare = {k: v for k, v in stack.env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    m = said(stack, "no_credentials", "promote status", 1, bare)
    assert "make demo-up" in m, m
    nowhere = dict(stack.env, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    m = said(stack, "endpoint_unreachable", "promote status", 1, nowhere)
    assert "could not reach the endpoint http://127.0.0.1:9" in m and "make demo-up" in m, m


def test_demo_down_leaves_nothing_running(stack):
    moto_port = int(stack.env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    gateway_port = int(stack.gateway.rsplit(":", 1)[1])
    assert listening(moto_port) and listening(gateway_port)
    r = subprocess.run([str(ROOT / "tools/demo.sh"), "down"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not listening(moto_port) and not listening(gateway_port)
    assert not (WORK / "gateway/pid").exists() and not (WORK / "moto/pid").exists()
    assert not (WORK / "env.sh").exists() and not (WORK / "next-release").exists()
