#!/usr/bin/env python3
"""Reaction time of `promote canary` to an alarm, as a separate reader sees it.

Each run: the live alias is reset to version 1 with no routing and its alarms to OK, then
`promote canary --stage live --version 2 --weight 10` starts with a long bake and the stage's
default poll. Once the split is visible, after a random delay (so the alarm lands at a random
phase of the poll cycle), one alarm is set to ALARM; the reader polls GetAlias every 10 ms
until the routing is gone. Prints one line per run and the median / max. Loopback moto only.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import boto3
from botocore.config import Config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--promote", required=True)
    p.add_argument("--environments", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--stage", default="live")
    args = p.parse_args()
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        sys.exit("bench: refusing a non-loopback endpoint")

    project = json.load(open(os.path.join(args.environments, "project.json")))
    stage_cfg = json.load(open(os.path.join(args.environments, f"{args.stage}.json")))
    poll = stage_cfg["poll_interval_seconds"]
    fn = project["functions"][0]["name"]
    alarms = [a["name"] for a in stage_cfg["alarms"]]
    region = os.environ["AWS_REGION"]
    cfg = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    s = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    lam = s.client("lambda", endpoint_url=args.endpoint, config=cfg)
    cw = s.client("cloudwatch", endpoint_url=args.endpoint, config=cfg)

    def routing():
        a = lam.get_alias(FunctionName=fn, Name=args.stage)
        return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}

    # The seeded upstream stage never served version 2; the path-to-live guard is not what
    # this measures (the override is recorded on the note, then reset). A baseline built
    # before the guard existed has no such flag.
    help_text = subprocess.run([args.promote, "canary", "--help"], capture_output=True, text=True).stdout
    skip = ["--skip-upstream", "--reason", "bench: reaction time"] if "--skip-upstream" in help_text else []

    reactions = []
    for i in range(args.runs):
        for name in alarms:
            cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="bench reset")
        # The description too: promote records a rollback in it and refuses to re-canary the
        # same version without --retry, which is exactly what the next run does.
        lam.update_alias(FunctionName=fn, Name=args.stage, FunctionVersion="1", Description="",
                         RoutingConfig={"AdditionalVersionWeights": {}})
        proc = subprocess.Popen(
            [args.promote, "--environments", args.environments, "canary", "--stage", args.stage,
             "--version", "2", "--weight", "10", "--bake", "10m", *skip],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not routing()[1]:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"bench: run {i}: the split never appeared (promote exit {proc.poll()})")
                time.sleep(0.01)
            time.sleep(random.uniform(0, poll))
            alarm = random.choice(alarms)
            t0 = time.monotonic()
            cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="bench: injected")
            while routing()[1]:
                if time.monotonic() - t0 > poll * 4 + 10:
                    raise SystemExit(f"bench: run {i}: routing not cleared {poll * 4 + 10}s after ALARM")
                time.sleep(0.01)
            dt = time.monotonic() - t0
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reactions.append(dt)
        print(f"  run {i + 1:2d}: routing cleared {dt * 1000:7.0f} ms after SetAlarmState(ALARM) on {alarm} (promote exit {code})")
    print(f"reaction time over {len(reactions)} runs, poll {poll} s: median {statistics.median(reactions):.2f} s, "
          f"max {max(reactions):.2f} s (target: at most {poll + 0.5:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
