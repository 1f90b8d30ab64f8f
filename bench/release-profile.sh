#!/usr/bin/env bash
# Compares release-profile settings for the Lambda bootstrap: stripped size, zip size,
# exec-to-first-200 and in-process /build-info latency per variant. Prints a table; asserts
# nothing. Each variant rebuilds everything (~1-2 min on 2 cores) into target/profile-sweep,
# leaving the shared target/ alone. How the figures were used: see the [profile.release]
# comment in the root Cargo.toml.
#   bench/release-profile.sh            all variants
#   bench/release-profile.sh z s        only the named ones
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results release-profile "$@" # its figures also go to bench/RESULTS.md, section release-profile
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="$root/target/profile-sweep"
runs=${STARTUP_RUNS:-20}

# name: opt-level lto codegen-units panic (strip is always "symbols": debug info is never shipped)
declare -A variants=(
  [defaults]='3 false 16 unwind'
  [o3-fat]='3 fat 1 abort'
  [s-fat]='s fat 1 abort'
  [z-fat]='z fat 1 abort'
  [s-thin]='s thin 1 abort'
  [s-fat-unwind]='s fat 1 unwind'
)
order=(defaults o3-fat s-fat z-fat s-thin s-fat-unwind)
[[ $# -gt 0 ]] && order=("$@")

# The client side of the startup bench needs no optimisation: build it once in dev.
cargo bench -p app --bench startup --profile dev --no-run 2>/dev/null
startup_bench=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/startup-* | grep -v '\.d$' | head -1)

printf '%-14s %-4s %-5s %-4s %-7s %12s %12s %14s %14s %14s\n' \
  variant opt lto cgu panic stripped_B zip_B startup_med startup_max build_info_med
for name in "${order[@]}"; do
  read -r opt lto cgu panic <<<"${variants[$name]}"
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt CARGO_PROFILE_RELEASE_LTO=$lto \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=$cgu CARGO_PROFILE_RELEASE_PANIC=$panic \
    CARGO_PROFILE_RELEASE_STRIP=symbols
  cargo build --release -p app --bin app --quiet
  bin="$CARGO_TARGET_DIR/release/app"
  stripped=$(stat -c %s "$bin")
  zipped=$(python3 -c 'import io,sys,zipfile
b=io.BytesIO(); z=zipfile.ZipFile(b,"w",zipfile.ZIP_DEFLATED); z.write(sys.argv[1],"bootstrap"); z.close(); print(len(b.getvalue()))' "$bin")
  startup=$(APP_BIN="$bin" STARTUP_RUNS=$runs "$startup_bench" | grep '^startup')
  med=$(sed -E 's/.*median=([^ ]+).*/\1/' <<<"$startup")
  max=$(sed -E 's/.*max=([^ ]+).*/\1/' <<<"$startup")
  lat=$(cargo bench -p app --bench handler --quiet 2>/dev/null | grep '^lambda' | sed -E 's/.*median=([^ ]+).*/\1/')
  printf '%-14s %-4s %-5s %-4s %-7s %12s %12s %14s %14s %14s\n' \
    "$name" "$opt" "$lto" "$cgu" "$panic" "$stripped" "$zipped" "$med" "$max" "$lat"
done
unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS \
  CARGO_PROFILE_RELEASE_PANIC CARGO_PROFILE_RELEASE_STRIP
