#!/usr/bin/env bash
# The gateway's figures, printed and never asserted (targets from issue 11 in brackets), measured
# in one run against the same `app` binary served directly over HTTP (its local mode):
#   requests per second with 64 connections            [>= 1000 through the gateway]
#   p50 / p99 latency at a fixed 200 requests a second  [p50 added by the gateway <= 1 ms]
# The path is GET /dev/build-info through the gateway (stage -> alias -> version -> bootstrap
# under the Runtime API) and GET /build-info on the app itself.
#
# Usage: bench/gateway.sh   (DURATION=10 seconds per measurement, REPS=3 alternating latency
# pairs). Needs .venv (tools/venv.sh) for moto; uses oha from PATH, else installs it once into
# target/tools (cargo install --locked --root target/tools oha, as bench/probe.sh). Everything
# listens on 127.0.0.1 and stops at the end.
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results gateway "$@" # its figures also go to bench/RESULTS.md, section gateway
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${DURATION:-10}
python=$root/.venv/bin/python
[[ -x $python ]] || { echo "bench/gateway.sh: run tools/venv.sh first (moto lives in .venv)" >&2; exit 1; }

# The same place bench/probe.sh installs it, so it is built once for both.
oha=$(command -v oha || true)
if [[ -z $oha ]]; then
  oha=$root/target/tools/bin/oha
  if [[ ! -x $oha ]]; then
    echo "== cargo install --locked --root target/tools oha (once)" >&2
    cargo install --quiet --locked --root "$root/target/tools" oha >&2
  fi
fi

# The `measure` profile (Cargo.toml): release code generation without fat LTO, as
# bench/probe.sh; both sides of the comparison run this very binary.
echo "== cargo build --profile measure -p app -p gateway -p promote" >&2
cargo build --quiet --profile measure -p app -p gateway -p promote >&2
bin=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/measure

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  tools/moto.sh stop "$work/moto" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

endpoint=$(tools/moto.sh start "$work/moto")
eval "$(tools/moto.sh env "$work/moto")"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
"$python" tools/seed.py --endpoint "$endpoint" --versions 1 >/dev/null
"$python" - "$bin/app" "$work/app.zip" <<'EOF'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
info.external_attr = 0o755 << 16
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(info, open(sys.argv[1], "rb").read())
EOF
version=$("$bin/promote" --output json publish --zip "$work/app.zip" |
  "$python" -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.strip()][-1]["version"])')
"$bin/promote" deploy --stage dev --version "$version" >/dev/null

"$bin/gateway" --listen 127.0.0.1:0 --environments environments --artifacts "$work/app.zip" \
  >"$work/gateway.out" 2>"$work/gateway.err" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $work/gateway.out ]] && break; sleep 0.1; done
gateway_url=$(sed -n 's/^listening on //p' "$work/gateway.out")
[[ -n $gateway_url ]] || { cat "$work/gateway.err" >&2; exit 1; }

app_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The function as the gateway runs it: the environment its configuration gives (no RUST_LOG, so
# its one log line per request at info) and stdout to /dev/null (the gateway's, without -v).
PORT=$app_port "$bin/app" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$python" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$app_port/build-info" 2>/dev/null && break
  sleep 0.1
done

measure() { # URL ARGS... -> JSON summary line
  "$oha" --no-tui --output-format json "$@" 2>/dev/null
}
figures() { # LABEL URL [OHA ARGS...]
  local label=$1 url=$2
  shift 2
  measure -n 500 -c 64 "$@" "$url" >/dev/null # warm-up: instances started, connections open
  local rps lat
  rps=$(measure -z "${duration}s" -c 64 "$@" "$url")
  lat=$(measure -z "${duration}s" -c 8 -q 200 "$@" "$url")
  "$python" - "$label" "$rps" "$lat" <<'EOF'
import json, sys
label, rps, lat = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ok = sum(v for k, v in rps["statusCodeDistribution"].items() if k.startswith("2"))
total = sum(rps["statusCodeDistribution"].values())
p = lat["latencyPercentiles"]
ms = lambda x: float("nan") if x is None else x * 1000
if p["p50"] is None:
    print(f"{label}: no answer at 200 requests a second: {lat.get('errorDistribution')}", file=sys.stderr)
print(json.dumps({"label": label, "rps": rps["summary"]["requestsPerSec"], "ok": ok, "total": total,
                  "p50_ms": ms(p["p50"]), "p99_ms": ms(p["p99"])}))
EOF
}
echo "== measuring (${duration} s each): 64 connections flat out, then 200 requests/s" >&2
direct=$(figures "app directly" "http://127.0.0.1:$app_port/build-info")
through=$(figures "through the gateway" "$gateway_url/dev/build-info")
# The added p50 once more, REPS times, the two targets alternating: on this VM one run's
# latency may differ from the next by more than the gateway adds. The median of the
# differences is the figure.
reps=${REPS:-3}
pairs=()
for _ in $(seq "$reps"); do
  pairs+=("$(measure -z "${duration}s" -c 8 -q 200 "http://127.0.0.1:$app_port/build-info")")
  pairs+=("$(measure -z "${duration}s" -c 8 -q 200 "$gateway_url/dev/build-info")")
done
added=$("$python" - "${pairs[@]}" <<'EOF'
import json, statistics, sys
p50 = [json.loads(x)["latencyPercentiles"]["p50"] * 1000 for x in sys.argv[1:]]
d, g = p50[0::2], p50[1::2]
diff = [b - a for a, b in zip(d, g)]
print(json.dumps({"direct": d, "through": g, "added": diff, "median": statistics.median(diff)}))
EOF
)
instances=$(pgrep -c -f "gateway-code-.*/bootstrap" || true)

# The Runtime API itself, the gateway's against cargo-lambda's emulator (`cargo lambda watch
# --only-lambda-apis`), each driven through its Invoke endpoint with the same REST event: the
# reason the gateway has its own is in docs/gateway.md.
event=$work/event.json
"$python" - "$event" <<'EOF'
import json, sys
json.dump({"resource": "/{proxy+}", "path": "/build-info", "httpMethod": "GET", "headers": {},
           "multiValueHeaders": {}, "pathParameters": {"proxy": "build-info"},
           "requestContext": {"stage": "dev", "path": "/dev/build-info", "httpMethod": "GET",
                              "resourcePath": "/{proxy+}", "requestId": "bench",
                              "identity": {"sourceIp": "127.0.0.1"}},
           "body": None, "isBase64Encoded": False}, open(sys.argv[1], "w"))
EOF
invoke=(-m POST -T application/json -D "$event")
gw_invoke=$(figures "gateway Invoke API" "$gateway_url/2015-03-31/functions/app/invocations?Qualifier=dev" "${invoke[@]}")
cl_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# cargo-lambda comes from the project's .venv (tools/venv.sh), as for `make package`.
PATH=$root/.venv/bin:$PATH cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$cl_port" \
  >"$work/cargo-lambda.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do grep -q "starting Runtime server" "$work/cargo-lambda.log" && break; sleep 0.1; done
grep -q "starting Runtime server" "$work/cargo-lambda.log" || { cat "$work/cargo-lambda.log" >&2; exit 1; }
# One instance, as `cargo lambda watch` runs one per function unless told otherwise.
AWS_LAMBDA_FUNCTION_NAME=_ AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
  AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$cl_port/.rt "$bin/app" >/dev/null 2>&1 &
pids+=($!)
cl_invoke=$(figures "cargo lambda watch" "http://127.0.0.1:$cl_port/2015-03-31/functions/_/invocations" "${invoke[@]}")

"$python" - "$direct" "$through" "$instances" "$gw_invoke" "$cl_invoke" "$added" <<'EOF'
import json, sys
d, g, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
gi, ci, a = json.loads(sys.argv[4]), json.loads(sys.argv[5]), json.loads(sys.argv[6])
print(f"{'':28}{'app directly':>16}{'through gateway':>18}")
print(f"{'requests/s, 64 connections':28}{d['rps']:>16.0f}{g['rps']:>18.0f}   [>= 1000 through the gateway]")
print(f"{'  of which 2xx':28}{d['ok']:>9}/{d['total']:<6}{g['ok']:>11}/{g['total']:<6}")
print(f"{'p50 at 200 req/s (ms)':28}{d['p50_ms']:>16.3f}{g['p50_ms']:>18.3f}   added {g['p50_ms'] - d['p50_ms']:.3f} ms [<= 1 ms]")
print(f"{'p99 at 200 req/s (ms)':28}{d['p99_ms']:>16.3f}{g['p99_ms']:>18.3f}")
f = lambda xs: " ".join(f"{x:.3f}" for x in xs)
print(f"added p50, {len(a['added'])} alternating pairs: median {a['median']:.3f} ms [<= 1 ms]"
      f" (added {f(a['added'])}; direct {f(a['direct'])}; through {f(a['through'])})")
print(f"bootstrap instances the gateway ran: {n}")
print()
print(f"{'Runtime API, by Invoke':28}{'gateway':>16}{'cargo lambda watch':>20}")
print(f"{'requests/s, 64 connections':28}{gi['rps']:>16.0f}{ci['rps']:>20.0f}")
print(f"{'  of which 2xx':28}{gi['ok']:>9}/{gi['total']:<6}{ci['ok']:>13}/{ci['total']:<6}")
print(f"{'p50 at 200 req/s (ms)':28}{gi['p50_ms']:>16.3f}{ci['p50_ms']:>20.3f}")
print(f"{'p99 at 200 req/s (ms)':28}{gi['p99_ms']:>16.3f}{ci['p99_ms']:>20.3f}")
EOF
