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
source "$(dirname "$0")/results.sh"
bench_results judge_aa "$@" # its figures also go to bench/RESULTS.md, section judge_aa
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
plans=${PLANS:-1000}
seed=${SEED:-1}
echo "== cargo build --profile measure -p rollout --example judge_aa" >&2
nice -n 5 cargo build --quiet --profile measure -p rollout --example judge_aa >&2
start=$(date +%s)
nice -n 5 "$root/target/measure/examples/judge_aa" "$plans" "$seed"
echo
echo "$(( $(date +%s) - start )) s on $(nproc) cores"
