#!/usr/bin/env bash
# Benchmarks of `promote` against a local moto_server (figures printed, never asserted):
#  1. reaction time: SetAlarmState(ALARM) -> live alias routing cleared, as a separate reader
#     sees it, median and max over RUNS (default 10) runs with the stage's default poll;
#  2. wall time of `promote status` (three stages) next to the same reads done with the
#     `aws` CLI, against the same emulator.
# Usage: bench/promote.sh            (RUNS=N to change the run count, PROFILE=release for an
#                                    optimised promote; the default reuses the test build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-10}
profile=${PROFILE:-dev}

tools/venv.sh --no-checkov
cargo build --quiet -p promote --profile "$profile"
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
promote=$root/target/$dir/promote

state=$(mktemp -d)
trap 'tools/moto.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT INT TERM
endpoint=$(tools/moto.sh start "$state")
eval "$(tools/moto.sh env "$state")"
envdir=$root/environments
.venv/bin/python tools/seed.py --endpoint "$endpoint" --environments "$envdir" >"$state/seed.json"
echo "moto_server at $endpoint, seeded from environments/; promote: $profile build"

echo
echo "== reaction time (alarm -> routing cleared), $runs runs"
.venv/bin/python bench/promote_reaction.py --endpoint "$endpoint" --promote "$promote" \
  --environments "$envdir" --runs "$runs"

echo
echo "== promote status (3 stages) vs the same reads with the aws CLI"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
fn=$(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["function_name"])' <"$state/seed.json")
api=$(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["rest_api_id"])' <"$state/seed.json")
stages=$(.venv/bin/python -c 'import json,sys; print(" ".join(json.load(sys.stdin)["stages"]))' <"$state/seed.json")

"$promote" --environments "$envdir" status >/dev/null # warm the page cache
: >"$state/promote.t"
for _ in $(seq 1 "$runs"); do
  t=$(now)
  "$promote" --environments "$envdir" status >/dev/null
  awk -v a="$(now)" -v b="$t" 'BEGIN {print a - b}' >>"$state/promote.t"
done

aws_status() {
  local a=.venv/bin/aws
  $a lambda list-versions-by-function --function-name "$fn" >/dev/null
  for s in $stages; do
    $a lambda get-alias --function-name "$fn" --name "$s" >/dev/null
    $a apigateway get-stage --rest-api-id "$api" --stage-name "$s" >/dev/null
    # shellcheck disable=SC2046
    $a cloudwatch describe-alarms --alarm-names $(.venv/bin/python -c \
      'import json,sys; print(" ".join(json.load(sys.stdin)["stages"][sys.argv[1]]["alarms"]))' "$s" <"$state/seed.json") >/dev/null
  done
}
aws_runs=$(( runs < 3 ? runs : 3 ))
: >"$state/aws.t"
for _ in $(seq 1 "$aws_runs"); do
  t=$(now)
  aws_status
  awk -v a="$(now)" -v b="$t" 'BEGIN {print a - b}' >>"$state/aws.t"
done
p=$(median <"$state/promote.t")
a=$(median <"$state/aws.t")
printf 'promote status:          median %.3f s over %d runs (max %.3f s)\n' "$p" "$runs" "$(sort -n "$state/promote.t" | tail -1)"
printf 'aws CLI, same reads:     median %.3f s over %d runs (%d aws invocations per run)\n' "$a" "$aws_runs" $((1 + 3 * $(wc -w <<<"$stages")))
printf 'speed-up:                %.1fx (target: 10x)\n' "$(awk -v a="$a" -v p="$p" 'BEGIN {print a / p}')"
