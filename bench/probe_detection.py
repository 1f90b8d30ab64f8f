#!/usr/bin/env python3
"""Detection time of the probe evidence source, as promote's own event stream shows it.

Each run: the live alias is reset to the stable version with no routing and no note, then
`promote --output json canary --stage live --version C --weight 10 --probe-rate R
--probe-url GATEWAY/live --poll 1s` starts against a gateway that fails the candidate's
requests at a set rate (--fault). Every stdout line is stamped as it arrives; the detection
time is from the `alias_updated` event of the 10% shift (the split is in place) to the
`rolled_back` event (the rollback written). Prints one line per run and the median / max.
Loopback only; each run is bounded by --timeout.
"""

import argparse
import json
import os
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
    p.add_argument("--gateway", required=True, help="the gateway's base URL")
    p.add_argument("--stable", required=True)
    p.add_argument("--candidate", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--rate", default="100")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--invoke", action="store_true",
                   help="probe through the gateway's Lambda Invoke API (--probe-invoke)")
    args = p.parse_args()
    for url in (args.endpoint, args.gateway):
        if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
            sys.exit("bench: refusing a non-loopback URL")
    fn = json.load(open(os.path.join(args.environments, "project.json")))["functions"][0]["name"]
    cfg = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 3})
    s = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                              region_name=os.environ["AWS_REGION"])
    lam = s.client("lambda", endpoint_url=args.endpoint, config=cfg)

    times, exits = [], []
    for i in range(args.runs):
        lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=args.stable, Description="",
                         RoutingConfig={"AdditionalVersionWeights": {}})
        proc = subprocess.Popen(
            [args.promote, "--environments", args.environments, "--output", "json", "canary",
             "--stage", "live", "--version", args.candidate, "--weight", "10", "--bake", "10m",
             "--poll", "1s", "--probe-rate", args.rate]
            + (["--probe-invoke", "--probe-url", args.gateway] if args.invoke
               else ["--probe-url", f"{args.gateway}/live"]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        shifted = rolled = None
        deadline = time.monotonic() + args.timeout
        for line in proc.stdout:
            now = time.monotonic()
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "alias_updated" and shifted is None:
                shifted = now
            if e.get("event") == "rolled_back":
                rolled = now
            if now > deadline:
                proc.kill()
                break
        code = proc.wait()
        exits.append(code)
        if shifted is not None and rolled is not None:
            times.append(rolled - shifted)
            print(f"run {i + 1}: exit {code}, split to rollback {rolled - shifted:.2f} s", flush=True)
        else:
            print(f"run {i + 1}: exit {code}, no rollback seen", flush=True)
    if times:
        via = "the Invoke API" if args.invoke else "the stage URL"
        print(f"detection (probe through {via} at {args.rate}/s, candidate at 10%): median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s over {len(times)} runs; exits {exits}")
    return 0 if times else 1


if __name__ == "__main__":
    sys.exit(main())
