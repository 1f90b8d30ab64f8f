#!/usr/bin/env bash
# `promote probe` against oha, side by side in the same run and against the same target (the
# `app` served over HTTP on loopback): achieved rate against the requested one, CPU time per
# request (user + system, from getrusage of each client process) and p99 latency.
# Figures are printed, never asserted. Targets (issue 13): the probe within 2% of the
# requested rate, and CPU per request no worse than oha's.
#
# Usage: bench/probe.sh                 (RATES="50 200 1000" DURATION=10 by default)
#        RATES="100" DURATION=5 bench/probe.sh
# oha comes from PATH, else target/tools/bin, else it is installed there with
# `cargo install --locked --root target/tools oha` (crates.io).
#
# Both clients and the server are built with the `measure` profile (Cargo.toml): release code
# generation without fat LTO.
set -euo pipefail
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

printf '%-6s | %-44s | %-44s\n' "" "promote probe (open loop)" "oha -q R --latency-correction"
printf '%-6s | %-9s %-8s %-12s %-10s | %-9s %-8s %-12s %-10s\n' \
  asked achieved "of asked" "CPU/request" p99 achieved "of asked" "CPU/request" p99
for r in $rates; do
  n=$((r * duration))
  pcpu=$(cpu "$bin/promote" probe --url "http://127.0.0.1:$port" --path /build-info \
    --rate "$r" --duration "${duration}s" --output json 3>&1 >"$work/probe.json" 2>"$work/probe.err")
  ocpu=$(cpu "$oha" -z "${duration}s" -q "$r" --latency-correction --no-tui \
    --output-format json "$url" 3>&1 >"$work/oha.json" 2>"$work/oha.err")
  python3 - "$r" "$n" "$pcpu" "$ocpu" "$work/probe.json" "$work/oha.json" <<'EOF'
import json, sys
r, n, pcpu, ocpu = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
p = json.loads(open(sys.argv[5]).read().splitlines()[-1])
o = json.load(open(sys.argv[6]))
# oha: answers over the whole run (it has no separate send rate).
o_n = sum(o.get("statusCodeDistribution", {}).values())
o_rate = o["summary"]["requestsPerSec"]
o_p99 = o["latencyPercentiles"]["p99"] * 1000
p_p99 = p["latency_ms"]["p99"]
print(f"{r:<6g} | {p['rate']:<9.2f} {p['rate'] / r * 100:<7.2f}% {pcpu / max(p['requests'], 1) * 1e6:<9.1f} µs  {p_p99:<7.2f} ms | "
      f"{o_rate:<9.2f} {o_rate / r * 100:<7.2f}% {ocpu / max(o_n, 1) * 1e6:<9.1f} µs  {o_p99:<7.2f} ms")
print(f"{'':<6} |   {p['requests']} requests, success {p['success'] * 100:.2f}%, CPU {pcpu:.2f} s"
      f"{'':<8}|   {o_n} requests, success {o['summary']['successRate'] * 100:.2f}%, CPU {ocpu:.2f} s")
EOF
done
