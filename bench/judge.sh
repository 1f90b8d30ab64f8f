#!/usr/bin/env bash
# The metrics judge end to end on the local gateway (issue 12's figures; printed, never asserted):
#   detection: time from the canary's first write to its rollback, for a candidate failing 20%
#              of its requests (gateway --fault V:0.2), median and max over RUNS runs;
#   wrong rollbacks: identical candidates (the same app, another zip) rolled back, n/RUNS;
# at 50 requests a second through the gateway's live stage URL (paced by `promote probe
# --rate 50`), the candidate at 10%, the stage judged by its per-version metrics alone
# (analysis.sources ["metrics"], period_seconds 5, every other setting at its default except
# latency_statistic "mean": moto serves no percentiles). Beside them, what the same plan needs
# in AWS with 60 s periods (computed from the window rule) and with CodeDeploy's alarms and
# Flagger's defaults (docs/canary-analysis.md).
#
# Usage: bench/judge.sh   (RUNS=20 runs of each kind; BAKE=45s, the identical candidates' bake:
#                          long enough for min_requests 100 at 5 candidate requests a second in
#                          complete 5 s periods; PROFILE=dev reuses the test build)
# Needs .venv (tools/venv.sh) for moto and boto3. Everything listens on 127.0.0.1 and stops at
# the end. No load tool to install: `promote probe` sends the traffic on schedule.
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results judge "$@" # its figures also go to bench/RESULTS.md, section judge
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-20}
bake=${BAKE:-45s}
profile=${PROFILE:-dev}
rate=50
period=5
python=$root/.venv/bin/python
[[ -x $python ]] || { echo "bench/judge.sh: run tools/venv.sh first (moto lives in .venv)" >&2; exit 1; }

echo "== cargo build --profile $profile -p app -p gateway -p promote" >&2
cargo build --quiet --profile "$profile" -p app -p gateway -p promote >&2
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
bin=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/$dir

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  tools/moto.sh stop "$work/moto" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

endpoint=$(tools/moto.sh start "$work/moto")
eval "$(tools/moto.sh env "$work/moto")"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
envdir=$work/environments
cp -r environments "$envdir"
"$python" - "$envdir/live.json" "$period" <<'EOF'
import json, sys
path, period = sys.argv[1], int(sys.argv[2])
v = json.load(open(path))
v["poll_interval_seconds"] = 1
v["analysis"] = {"sources": ["metrics"], "period_seconds": period, "latency_statistic": "mean",
                 "max_extension_seconds": 30}
json.dump(v, open(path, "w"), indent=2)
EOF
"$python" tools/seed.py --endpoint "$endpoint" --versions 1 --environments "$envdir" >/dev/null

# Three zips of the same app: the stable version, the faulty candidate and the identical one
# (a file of their own gives each its own CodeSha256, hence its own version).
"$python" - "$bin/app" "$work" <<'EOF'
import sys, zipfile
for name in ("stable", "faulty", "identical"):
    with zipfile.ZipFile(f"{sys.argv[2]}/{name}.zip", "w", zipfile.ZIP_STORED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        z.writestr(info, open(sys.argv[1], "rb").read())
        if name != "stable":
            z.writestr("release.txt", name)
EOF
publish() {
  "$bin/promote" --environments "$envdir" --output json publish --zip "$1" |
    "$python" -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.strip()][-1]["version"])'
}
stable=$(publish "$work/stable.zip")
faulty=$(publish "$work/faulty.zip")
identical=$(publish "$work/identical.zip")
"$python" - "$endpoint" "$AWS_REGION" "$stable" <<'EOF'
import boto3, sys
boto3.client("lambda", endpoint_url=sys.argv[1], region_name=sys.argv[2]).update_alias(
    FunctionName="app", Name="live", FunctionVersion=sys.argv[3], RoutingConfig={"AdditionalVersionWeights": {}})
EOF

"$bin/gateway" --listen 127.0.0.1:0 --environments "$envdir" \
  --artifacts "$work/stable.zip" "$work/faulty.zip" "$work/identical.zip" --fault "$faulty:0.2" \
  >"$work/gateway.out" 2>"$work/gateway.err" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $work/gateway.out ]] && break; sleep 0.1; done
gateway_url=$(sed -n 's/^listening on //p' "$work/gateway.out")
[[ -n $gateway_url ]] || { cat "$work/gateway.err" >&2; exit 1; }

# Traffic for the whole bench, on schedule (bounded: a probe runs at most an hour).
"$bin/promote" probe --url "$gateway_url/live" --path /build-info --rate "$rate" --duration 3600s \
  >"$work/probe.out" 2>"$work/probe.err" &
pids+=($!)
sleep 3 # the stable version's instance warm before the first run
kill -0 "${pids[-1]}" 2>/dev/null || { echo "bench/judge.sh: the probe stopped:" >&2; cat "$work/probe.err" >&2; exit 1; }

runs_of() { # KIND CANDIDATE BAKE
  "$python" bench/judge_runs.py --endpoint "$endpoint" --region "$AWS_REGION" --promote "$bin/promote" \
    --environments "$envdir" --stable "$stable" --candidate "$2" --kind "$1" --runs "$runs" --bake "$3" |
    tee -a "$work/runs.jsonl" >&2
}
echo "== $runs runs with a candidate failing 20% (version $faulty), then $runs with an identical one (version $identical, ${bake} bake); $rate req/s through $gateway_url/live, 10%, ${period} s periods" >&2
runs_of faulty "$faulty" 120s
runs_of identical "$identical" "$bake"

"$python" - "$work/runs.jsonl" "$runs" "$period" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs, period = int(sys.argv[2]), int(sys.argv[3])
faulty = [r for r in rows if r["kind"] == "faulty"]
identical = [r for r in rows if r["kind"] == "identical"]
caught = [r["detection_s"] for r in faulty if r["exit"] == 4 and r["detection_s"] is not None]
missed = len(faulty) - len(caught)
wrong = sum(1 for r in identical if r["exit"] == 4)
held = sum(1 for r in identical if r["exit"] == 6)
def window(p, poll):
    # The first complete period starts on the first multiple of p after the write, ends p later and
    # is judged one period (the lag) after its end: (p - u) + 2p after a write at phase u in [0, p),
    # plus up to one poll; at 50 req/s and 10%, that first period alone holds the evidence.
    return 2 * p, 3 * p + poll, 2.5 * p + poll / 2
lo5, hi5, mid5 = window(period, 1)
lo60, hi60, mid60 = window(60, 5)
print()
print(f"{'':44}{'measured (gateway)':>22}{'window rule':>16}")
if caught:
    print(f"{'detection, median (s)':44}{statistics.median(caught):>22.1f}{mid5:>16.1f}   [goal <= 30 s]")
    print(f"{'detection, max (s)':44}{max(caught):>22.1f}{hi5:>16.1f}")
print(f"{'faulty candidates not rolled back':44}{f'{missed}/{len(faulty)}':>22}")
print(f"{'identical candidates rolled back (wrong)':44}{f'{wrong}/{len(identical)}':>22}   [goal 0/20]")
print(f"{'identical candidates held (exit 6)':44}{f'{held}/{len(identical)}':>22}")
print()
print("the same plan elsewhere, detection of the 20% candidate:")
print(f"  AWS, metrics judge, 60 s periods (window rule, 5 s poll):  {lo60/60:.1f}-{hi60/60:.1f} min, median {mid60/60:.1f} min (+ Lambda's metric delivery delay)")
print("  CodeDeploy, alarm on the alias (60 s period x 1 evaluation): >= 1-2 min once the alias's errors cross a")
print("    threshold set for the stable version; a 20% candidate at 10% moves the alias's rate by 2% only")
print("  Flagger defaults (interval 1m, threshold 5 failed checks):   about 5 min")
EOF
