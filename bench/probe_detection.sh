#!/usr/bin/env bash
# Time from a candidate starting to fail to the alias rolled back, with the probe as the
# only evidence (issue 13; printed, never asserted; goal under 10 s): the gateway fails
# FAULT of the candidate's requests as a crashed function does (API Gateway's 502, naming no
# version), the candidate takes 10%, the probe sends RATE requests a second, promote polls
# every second. The split going in is when the candidate starts to fail.
#
# Both ways in, in one run: through the stage URL (the 502s name no version: the shortfall
# test) and through the gateway's Lambda Invoke API (--probe-invoke: every crash named).
#
# Usage: bench/probe_detection.sh        (RUNS=10 RATE=100 FAULT=0.2)
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results probe_detection "$@" # its figures also go to bench/RESULTS.md, section probe_detection
source "$(dirname "$0")/stack.sh"
cd "$root"
runs=${RUNS:-10}
rate=${RATE:-100}
fault=${FAULT:-0.2}

stack_build
envs=$work/environments
cp -r environments "$envs"
# The probe alone judges live: no alarm or metric can take part in what is measured.
"$python" - "$envs/live.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["analysis"] = {"sources": ["probe"]}
json.dump(s, open(p, "w"), indent=2)
PY
stack_moto "$envs"
stable=$(stack_publish stable.zip)
candidate=$(stack_publish candidate.zip candidate)
stack_gateway --environments "$envs" --artifacts "$work/stable.zip" "$work/candidate.zip" \
  --fault "$candidate:$fault"
echo "== $runs runs: stable $stable, candidate $candidate failing $fault at 10%, probe at $rate/s" >&2
for via in "" --invoke; do
  "$python" bench/probe_detection.py --endpoint "$endpoint" --promote "$bin/promote" \
    --environments "$envs" --gateway "$gateway_url" --stable "$stable" --candidate "$candidate" \
    --runs "$runs" --rate "$rate" $via
done
echo "reference: the same candidate judged by Lambda's per-minute metrics needs 2-3 minutes (docs/canary-analysis.md); CodeDeploy's alarm rollback a minute or more after the alarm's period"
