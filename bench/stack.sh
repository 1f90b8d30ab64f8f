# Sourced by the bench scripts that need the whole local stack: release-like binaries, moto
# seeded from environments/, the `app` published as versions, and the gateway serving them.
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap it sets.
#
#   stack_build             builds app, gateway, promote (profile gwbench); sets $bin
#   stack_moto              starts and seeds moto; sets $endpoint and the AWS_* environment
#   stack_publish NAME [X]  zips the app (X: an extra file, a distinct version); prints the version
#   stack_gateway ARGS...   starts the gateway; sets $gateway_url
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$root/.venv/bin/python
[[ -x $python ]] || { echo "bench: run tools/venv.sh first (moto lives in .venv)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
stack_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$root/tools/moto.sh" stop "$work/moto" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stack_cleanup EXIT

stack_build() {
  # Release settings without fat LTO: the shipped code generation, minutes less to link on
  # two cores.
  local profile=gwbench
  echo "== cargo build --profile $profile -p app -p gateway -p promote" >&2
  cargo build --quiet --profile "$profile" \
    --config "profile.$profile.inherits=\"release\"" --config "profile.$profile.lto=\"off\"" \
    --config "profile.$profile.codegen-units=16" -p app -p gateway -p promote >&2
  bin=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/$profile
}

stack_moto() {
  local envs=${1:-$root/environments}
  endpoint=$("$root/tools/moto.sh" start "$work/moto")
  eval "$("$root/tools/moto.sh" env "$work/moto")"
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  "$python" "$root/tools/seed.py" --endpoint "$endpoint" --versions 1 --environments "$envs" >/dev/null
}

stack_publish() {
  "$python" - "$bin/app" "$work/$1" "${2:-}" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
info.external_attr = 0o755 << 16
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(info, open(sys.argv[1], "rb").read())
    if sys.argv[3]:
        z.writestr("release.txt", sys.argv[3])
PY
  "$bin/promote" --output json publish --zip "$work/$1" |
    "$python" -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.strip()][-1]["version"])'
}

stack_gateway() {
  "$bin/gateway" --listen 127.0.0.1:0 "$@" >"$work/gateway.out" 2>"$work/gateway.err" &
  pids+=($!)
  for _ in $(seq 1 100); do [[ -s $work/gateway.out ]] && break; sleep 0.1; done
  gateway_url=$(sed -n 's/^listening on //p' "$work/gateway.out")
  [[ -n $gateway_url ]] || { cat "$work/gateway.err" >&2; exit 1; }
}
