#!/usr/bin/env bash
# The judge's wrong rollbacks and detection times, old and new, side by side on the same
# seeded simulated traffic (a simulation, not a timed test; printed and written to
# bench/RESULTS.md, never asserted):
#   wrong rollbacks: identical versions (1% errors, log-normal latency around 40 ms) over
#                    PLANS whole live plans (10% and 50% steps of 300 s, one look per complete
#                    period on the growing window, per-period p99s weighted by requests) at
#                    AWS's 60 s periods and the gateway's 5 s periods, at 5, 20, 100 requests
#                    a second, with a 95% interval;
#   detection:       a candidate failing 20% of its requests, and one 10 ms slower, at a 10%
#                    split and 50 requests a second.
# The old judge is the Fisher-test judge this release replaced, kept beside the simulation
# (crates/rollout/examples/judge_aa/old_judge.rs) so that both read the same traffic.
#
# Usage: bench/judge_aa.sh   (PLANS=1000, SEED=1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
plans=${PLANS:-1000}
seed=${SEED:-1}
echo "== cargo build --profile measure -p rollout --example judge_aa" >&2
nice -n 5 cargo build --quiet --profile measure -p rollout --example judge_aa >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
nice -n 5 "$root/target/measure/examples/judge_aa" "$plans" "$seed" | tee "$out"
secs=$(( $(date +%s) - start ))

# The section between the markers is this script's; the rest of the file is left as it is.
results=$root/bench/RESULTS.md
begin='<!-- judge_aa.sh: begin -->'
end='<!-- judge_aa.sh: end -->'
section=$(mktemp)
trap 'rm -f "$out" "$section"' EXIT
{
  echo "$begin"
  echo "## The judge on identical and failing candidates (bench/judge_aa.sh)"
  echo
  echo "\`PLANS=$plans SEED=$seed bench/judge_aa.sh\`, $(date -u +%Y-%m-%d), ${secs} s on $(nproc) cores."
  echo
  cat "$out"
  echo "$end"
} > "$section"
[[ -f $results ]] || printf '# Benchmark figures\n\nWritten by the scripts under bench/; do not edit by hand.\n' > "$results"
python3 - "$results" "$section" "$begin" "$end" <<'PY'
import sys
path, section, begin, end = sys.argv[1:]
text = open(path).read()
new = open(section).read().rstrip("\n")
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    text = head + new + tail
else:
    text = text.rstrip("\n") + "\n\n" + new + "\n"
open(path, "w").write(text)
PY
echo "== written to bench/RESULTS.md" >&2
