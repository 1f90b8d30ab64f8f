# Sourced by every bench script, first thing:
#
#   source "$(dirname "$0")/results.sh"
#   bench_results SECTION "$@"
#
# runs the script again with its stdout (its figures; progress goes to stderr) shown and kept,
# then, if it succeeded, has bench/results.py replace SECTION of bench/RESULTS.md with them,
# stamped with the date, the commit and the machine, and exits with the script's status. A run
# that fails writes nothing. BENCH_RESULTS=0 prints the figures without writing them (trying
# settings out); the knobs set in the environment are recorded with the command.
bench_results() {
  local section=$1
  shift
  [[ -z ${BENCH_RESULTS_INNER:-} ]] || return 0
  local root script knobs="" name
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  script=${0#"$root"/}
  if [[ ${BENCH_RESULTS:-1} == 0 ]]; then
    BENCH_RESULTS_INNER=1 exec bash "$0" "$@"
  fi
  for name in RUNS DURATION REPS RATES RATE FAULT PROFILE BAKE BASELINE STARTUP_RUNS PLANS SEED; do
    [[ -z ${!name:-} ]] || knobs+="$name=${!name} "
  done
  local out status=0
  out=$(mktemp)
  # This outer run does nothing else, so its EXIT trap is its own (Ctrl-C included).
  trap 'rm -f "$out"' EXIT
  BENCH_RESULTS_INNER=1 bash "$0" "$@" | tee "$out" || status=${PIPESTATUS[0]}
  if [[ $status == 0 ]]; then
    python3 "$root/bench/results.py" "$section" "$knobs$script${*:+ $*}" <"$out" || status=$?
  else
    echo "$script: exit $status; bench/RESULTS.md left as it was" >&2
  fi
  exit "$status"
}
