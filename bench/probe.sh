#!/usr/bin/env bash
# `promote probe` against oha, side by side in the same run and against the same target (the
# `app` served over HTTP on loopback): achieved rate against the requested one, CPU time per
# request (user + system, from getrusage of each client process) and p99 latency.
# Figures are printed, never asserted. Targets (issue 13): the probe within 2% of the
# requested rate, and CPU per request no worse than oha's.
#
# Usage: bench/probe.sh                 (RATES="50 200 1000" DURATION=10 REPS=3 by default)
#        RATES="100" DURATION=5 REPS=1 bench/probe.sh
# oha comes from PATH, else target/tools/bin, else it is installed there with
# `cargo install --locked --root target/tools oha` (crates.io).
#
# Both clients and the server are built with the `measure` profile (Cargo.toml): release code
# generation without fat LTO.
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results probe "$@" # its figures also go to bench/RESULTS.md, section probe
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rates=${RATES:-"50 200 1000"}
duration=${DURATION:-10}

# -p gateway too: the same set as bench/gateway.sh, so features unify alike and one build serves both.
echo "== cargo build --profile measure -p app -p gateway -p promote" >&2
cargo build --quiet --profile measure -p app -p gateway -p promote >&2
bin=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/measure

oha=$(command -v oha || true)
if [[ -z "$oha" && -x target/tools/bin/oha ]]; then oha=target/tools/bin/oha; fi
if [[ -z "$oha" ]]; then
  echo "== cargo install --locked --root target/tools oha" >&2
  cargo install --quiet --locked --root target/tools oha >&2
  oha=target/tools/bin/oha
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# warn: no request log, so the server's stdout costs nothing.
PORT=$port RUST_LOG=warn "$bin/app" >"$work/app.log" 2>&1 &
app=$!
trap 'kill $app 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null; then break; fi
  sleep 0.05
done
url="http://127.0.0.1:$port/build-info"

# Runs a command; prints its children's user+system CPU seconds on fd 3.
cpu() {
  python3 - "$@" 3>&3 <<'EOF'
import os, resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
os.write(3, f"{r.ru_utime + r.ru_stime:.3f}\n".encode())
EOF
}

# The machine's noise (a VM: one run's CPU may be 30% off the next) is larger than the
# difference being measured, so each client runs REPS times, alternating with the other, and
# the medians are compared; the spread is printed beside them.
reps=${REPS:-3}
printf '%-6s | %-50s | %-50s\n' "" "promote probe (open loop), median of $reps" "oha -q R --latency-correction, median of $reps"
printf '%-6s | %-9s %-8s %-24s %-8s | %-9s %-8s %-24s %-8s\n' \
  asked achieved "of asked" "CPU/request (min-max)" p99 achieved "of asked" "CPU/request (min-max)" p99
for r in $rates; do
  runs=()
  for i in $(seq "$reps"); do
    pcpu=$(cpu "$bin/promote" probe --url "http://127.0.0.1:$port" --path /build-info \
      --rate "$r" --duration "${duration}s" --output json 3>&1 >"$work/probe.$i.json" 2>"$work/probe.err")
    ocpu=$(cpu "$oha" -z "${duration}s" -q "$r" --latency-correction --no-tui \
      --output-format json "$url" 3>&1 >"$work/oha.$i.json" 2>"$work/oha.err")
    runs+=("$pcpu" "$ocpu")
  done
  python3 - "$r" "$work" "${runs[@]}" <<'EOF'
import json, statistics, sys
r, work, cpus = float(sys.argv[1]), sys.argv[2], [float(x) for x in sys.argv[3:]]
probe, oha = [], []
for i in range(len(cpus) // 2):
    p = json.loads(open(f"{work}/probe.{i + 1}.json").read().splitlines()[-1])
    probe.append((p["rate"], cpus[2 * i] / max(p["requests"], 1) * 1e6, p["latency_ms"]["p99"], p["requests"], p["success"]))
    o = json.load(open(f"{work}/oha.{i + 1}.json"))
    # oha: answers over the whole run (it has no separate send rate).
    o_n = sum(o.get("statusCodeDistribution", {}).values())
    oha.append((o["summary"]["requestsPerSec"], cpus[2 * i + 1] / max(o_n, 1) * 1e6,
                o["latencyPercentiles"]["p99"] * 1000, o_n, o["summary"]["successRate"]))
def col(runs):
    med = lambda k: statistics.median(x[k] for x in runs)
    cpu = [x[1] for x in runs]
    spread = f"{med(1):.1f} µs ({min(cpu):.0f}-{max(cpu):.0f})"
    return f"{med(0):<9.2f} {med(0) / r * 100:<7.2f}% {spread:<24} {med(2):<5.2f} ms"
print(f"{r:<6g} | {col(probe)} | {col(oha)}")
n = lambda runs: f"{sum(x[3] for x in runs)} requests, success {min(x[4] for x in runs) * 100:.2f}% or more"
print(f"{'':<6} |   {n(probe):<48} |   {n(oha)}")
EOF
done
