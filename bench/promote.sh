#!/usr/bin/env bash
# Benchmarks of `promote` against a local moto_server (figures printed, never asserted):
#  1. reaction time: SetAlarmState(ALARM) -> live alias routing cleared, as a separate reader
#     sees it, median and max over RUNS (default 10) runs with the stage's default poll;
#  2. wall time of `promote status` (three stages) next to the same reads done with the
#     `aws` CLI, against the same emulator.
# Usage: bench/promote.sh            (RUNS=N to change the run count, PROFILE=release for an
#                                    optimised promote; the default reuses the test build;
#                                    BASELINE=<git rev> also measures the reaction time of the
#                                    promote built from that commit, in the same run, against
#                                    the same emulator, side by side)
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results promote "$@" # its figures also go to bench/RESULTS.md, section promote
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-10}
profile=${PROFILE:-dev}

tools/venv.sh --no-checkov
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
state=$(mktemp -d)
baseline_tree=
cleanup() {
  tools/moto.sh stop "$state" >/dev/null 2>&1 || true
  [[ -z $baseline_tree ]] || git worktree remove --force "$baseline_tree" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT INT TERM
if [[ -n ${BASELINE:-} ]]; then
  # Built in the shared target/ (dependencies are reused), then copied out before the
  # current tree's build replaces it.
  baseline_tree=$state/baseline
  git worktree add --detach --quiet "$baseline_tree" "$BASELINE"
  (cd "$baseline_tree" && CARGO_TARGET_DIR=$root/target cargo build --quiet -p promote --profile "$profile")
  cp "$root/target/$dir/promote" "$state/promote-baseline"
fi
cargo build --quiet -p promote --profile "$profile"
promote=$root/target/$dir/promote

endpoint=$(tools/moto.sh start "$state")
eval "$(tools/moto.sh env "$state")"
envdir=$root/environments
.venv/bin/python tools/seed.py --endpoint "$endpoint" --environments "$envdir" >"$state/seed.json"
echo "moto_server at $endpoint, seeded from environments/; promote: $profile build"

echo
echo "== reaction time (alarm -> routing cleared), $runs runs"
.venv/bin/python bench/promote_reaction.py --endpoint "$endpoint" --promote "$promote" \
  --environments "$envdir" --runs "$runs" | tee "$state/reaction.now"
if [[ -n $baseline_tree ]]; then
  echo
  echo "== reaction time of the baseline ($BASELINE), $runs runs, same emulator"
  .venv/bin/python bench/promote_reaction.py --endpoint "$endpoint" --promote "$state/promote-baseline" \
    --environments "$baseline_tree/environments" --runs "$runs" | tee "$state/reaction.base"
  echo
  echo "side by side:"
  printf '  this tree:          %s\n' "$(tail -1 "$state/reaction.now")"
  printf '  baseline %-9s  %s\n' "${BASELINE:0:9}:" "$(tail -1 "$state/reaction.base")"
fi

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
