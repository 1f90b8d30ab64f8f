#!/usr/bin/env python3
"""Runs of `promote canary` judged by the metrics judge on the local gateway (bench/judge.sh).

Each run: the live alias is reset to the stable version with no routing and an empty note,
then `promote --output json canary --stage live --version V --weight 10 --bake B` runs while
steady traffic (started by judge.sh) goes through the gateway. The time of the first write is
when promote prints its `alias_updated` (shift) event, right after UpdateAlias answered; the
rollback time is its `rolled_back` event, printed after the rollback's UpdateAlias. Prints one
JSON line per run. Loopback only.
"""

import argparse
import json
import subprocess
import sys
import time

import boto3
from botocore.config import Config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--promote", required=True)
    p.add_argument("--environments", required=True)
    p.add_argument("--stable", required=True)
    p.add_argument("--candidate", required=True)
    p.add_argument("--kind", required=True, choices=["faulty", "identical"])
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--bake", required=True)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        sys.exit("bench: refusing a non-loopback endpoint")
    cfg = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 3})
    s = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                              region_name=args.region)
    lam = s.client("lambda", endpoint_url=args.endpoint, config=cfg)
    fn = json.load(open(f"{args.environments}/project.json"))["functions"][0]["name"]

    for i in range(args.runs):
        lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=args.stable, Description="",
                         RoutingConfig={"AdditionalVersionWeights": {}})
        proc = subprocess.Popen(
            [args.promote, "--environments", args.environments, "--output", "json", "canary",
             "--stage", "live", "--version", args.candidate, "--weight", "10", "--bake", args.bake,
             # The bench judges one stage; its upstream stages never served the versions.
             "--skip-upstream", "--reason", "bench: the judge on live alone"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        first_write = rolled_back = None
        reason = ""
        last_numbers = None
        for line in proc.stdout:
            now = time.monotonic()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "alias_updated" and first_write is None:
                first_write = now
            elif kind == "rolled_back":
                rolled_back = now
                reason = ev.get("reason", "")
            elif kind == "bake":
                for f in ev.get("evidence", []):
                    if f.get("source") == "metrics" and f.get("numbers"):
                        last_numbers = f["numbers"]
            if now - started > args.timeout:
                proc.kill()
                break
        code = proc.wait()
        stderr = proc.stderr.read()
        out = {
            "kind": args.kind, "run": i + 1, "exit": code,
            "detection_s": (rolled_back - first_write) if first_write and rolled_back else None,
            "reason": reason or (stderr.strip().splitlines() or [""])[-1],
        }
        if last_numbers:
            c, st = last_numbers["candidate"], last_numbers["stable"]
            out["candidate"] = f"{c['errors']}/{c['requests']}"
            out["stable"] = f"{st['errors']}/{st['requests']}"
            out["p_value"] = last_numbers.get("p_value")
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
