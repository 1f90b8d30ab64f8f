#!/usr/bin/env bash
# The function's figures, printed and never asserted (targets from issue 2 in brackets):
#   stripped bootstrap size [<= 2.5 MiB] and zip size [<= 1 MiB], as `make package` builds them;
#   exec-to-first-200 of the local server, median and max over STARTUP_RUNS (default 25) [median <= 10 ms];
#   peak RSS [<= 10 MiB]; in-process latency of /build-info through the handler.
# Usage: bench/app.sh   (or `make bench`). Needs .venv (tools/venv.sh) for cargo-lambda and zig.
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results app "$@" # its figures also go to bench/RESULTS.md, section app
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
if ! command -v cargo-lambda >/dev/null; then
  echo "bench/app.sh: cargo-lambda is not on PATH; run tools/venv.sh first (or use make bench)" >&2
  exit 1
fi

echo "== cargo lambda build --release -p app --output-format zip" >&2
cargo lambda build --release -p app --output-format zip >&2
zip=target/lambda/app/bootstrap.zip
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' "$zip" "$work"
bootstrap=$work/bootstrap
chmod +x "$bootstrap"

mib() { awk -v b="$1" 'BEGIN { printf "%d B (%.2f MiB)", b, b / 1048576 }'; }
echo "bootstrap (stripped): $(mib "$(stat -c %s "$bootstrap")")"
echo "bootstrap.zip:        $(mib "$(stat -c %s "$zip")")"
echo "build stamp markers in bootstrap: $(grep -c @@build-stamp@@ "$bootstrap" || true)" \
  "($(grep -ao '@@build-stamp@@[^@]*@@end@@' "$bootstrap" | head -1))"

# The startup client needs no optimisation (dev profile); the server is the shipped bootstrap.
echo "== startup and RSS of the bootstrap (local server mode)" >&2
APP_BIN="$bootstrap" STARTUP_RUNS="${STARTUP_RUNS:-25}" \
  cargo bench --quiet -p app --bench startup --profile dev 2>/dev/null
echo "== in-process latency (bench profile = release settings)" >&2
cargo bench --quiet -p app --bench handler 2>/dev/null
