#!/usr/bin/env bash
# The whole path to live on a laptop, against a local AWS emulator (moto), with no AWS account.
#
#   tools/demo.sh run [--state-log FILE]   the full walk (make demo); stops the emulator at the end
#   tools/demo.sh up                       the emulator and the local API Gateway left running, live one
#                                          release behind test; prints the exports and the commands to try (make demo-up)
#   tools/demo.sh down                     stops them (make demo-down)
#   tools/demo.sh build-tools              only builds promote and the gateway (make demo runs it
#                                          while the Python tools install; run and up then find it done)
#
# The stages are served by `gateway` (the local API Gateway, gateway/): every move is followed
# by a real request, and the bad release is caught by its own failing traffic (`--fault`), the
# gateway evaluating the stage's alarms with `--time-scale`; no alarm is set by hand.
#
# --state-log FILE appends one JSON line per checkpoint with every alias as the emulator holds
# it, read independently of promote; tests/demo asserts the states the walk passes through.
#
# Environment: DEMO_PROFILE=dev|release chooses the app build profile. The default is dev: the
# gateway runs the bootstrap on this machine, where optimizing it buys nothing the demo shows,
# and a fresh clone's optimized builds took 70 s of the 5 minutes a first demo may take;
# release builds the zip as `make package` ships it. DEMO_BUILD=tests builds promote and the gateway
# as `cargo test --workspace` does (every target): the features then resolve as in the test
# build, which `make test` has just made, instead of a second time (the AWS SDK rebuilt,
# two minutes on 2 cores). The emulator only ever listens on 127.0.0.1 and
# the demo exports dummy credentials and a loopback endpoint, so it cannot reach a real account.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Builds go where cargo puts them (CARGO_TARGET_DIR if set); the demo's own state stays in ./target.
target=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")
work=$root/target/demo
moto_dir=$work/moto
gateway_dir=$work/gateway
# A 60 s alarm period evaluates every 2 s in the demo.
time_scale=${DEMO_TIME_SCALE:-30}
python=$root/.venv/bin/python
export PATH=$target/debug:$root/.venv/bin:$PATH

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold='' dim='' off=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
run() { show "$*"; "$@"; }
die() { echo "tools/demo.sh: $*" >&2; exit 1; }

state_log=
background=()
worktree=

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_gateway
  if [[ -n $worktree && -d $worktree ]]; then
    git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
    git worktree prune >/dev/null 2>&1 || true
  fi
  tools/moto.sh stop "$moto_dir" || true
  exit "$code"
}

start_emulator() {
  [[ -x $python ]] || die "the project's virtualenv is missing; run 'make demo' (or tools/venv.sh) first"
  tools/moto.sh stop "$moto_dir" >/dev/null 2>&1 || true
  step "Starting a local AWS emulator (moto) on 127.0.0.1"
  endpoint=$(tools/moto.sh start "$moto_dir")
  echo "moto_server listening on $endpoint"
  # Dummy credentials and the loopback endpoint, whatever the caller's environment holds.
  eval "$(tools/moto.sh env "$moto_dir")"
  unset AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

seed() {
  step "Creating the stack as Terraform would, derived from $1"
  show "tools/seed.py --endpoint $endpoint --environments ${1#"$root"/} --versions 1"
  "$python" tools/seed.py --endpoint "$endpoint" --environments "$1" --versions 1 >"$work/seed.json"
  "$python" - "$work/seed.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"function {s['function_name']} (version 1 published), REST API {s['rest_api_id']}")
for name, st in s["stages"].items():
    print(f"  stage {name:<5} -> alias {st['alias']:<5} {st['invoke_url']}  alarms: {', '.join(st['alarms'])}")
EOF
}

# Every alias as moto holds it, for the test to check the states the walk passes through.
checkpoint() {
  [[ -n $state_log ]] || return 0
  "$python" - "$1" "$state_log" "$2" <<'EOF'
import json, sys, boto3
name, path, function = sys.argv[1:4]
lam = boto3.client("lambda")
aliases = {}
for a in lam.list_aliases(FunctionName=function)["Aliases"]:
    weights = ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights")) or {}
    aliases[a["Name"]] = {"version": a["FunctionVersion"], "weights": weights, "description": a.get("Description", "")}
with open(path, "a") as f:
    f.write(json.dumps({"checkpoint": name, "aliases": aliases}) + "\n")
EOF
}

# Short bakes and polls so the walk takes well under two minutes; everything else as configured.
# Bakes that short end before any real alarm window could: the copy says so with the override
# the environments check requires (test_fixture_short_bakes), never set in environments/.
demo_environments() {
  local dir=$work/environments
  rm -rf "$dir" && mkdir -p "$dir" && cp -r environments/. "$dir/"
  "$python" - "$dir" <<'EOF'
import json, pathlib, sys
for f in pathlib.Path(sys.argv[1]).glob("*.json"):
    if f.name == "project.json":
        continue
    d = json.loads(f.read_text())
    d["poll_interval_seconds"] = 1
    d["test_fixture_short_bakes"] = True
    # moto runs no Lambda code, so there are no per-version metrics to judge: the demo's
    # canary is judged by its alarms (promote/tests/it_judge.rs shows the metrics judge).
    d["analysis"] = {"sources": ["alarms"]}
    s = d["strategy"]
    if s["type"] == "canary":
        for step in s["steps"]:
            step["bake_seconds"] = 2
    else:
        s["bake_seconds"] = 1
    f.write_text(json.dumps(d, indent=2) + "\n")
EOF
  echo "$dir"
}

# The local API Gateway in front of the emulator's stages, on PORT (0: any free port).
start_gateway() { # ENVIRONMENTS PORT [gateway options...]; sets gateway_url
  local envs=$1 port=$2
  shift 2
  mkdir -p "$gateway_dir"
  local zips=("$work"/app-*.zip)
  show "gateway --listen 127.0.0.1:$port --environments ${envs#"$root"/} --artifacts ${zips[*]#"$root"/} --time-scale $time_scale $*"
  : >"$gateway_dir/out"
  nohup gateway --listen "127.0.0.1:$port" --environments "$envs" --artifacts "${zips[@]}" \
    --time-scale "$time_scale" "$@" >"$gateway_dir/out" 2>"$gateway_dir/log" &
  echo $! >"$gateway_dir/pid"
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$gateway_dir/out" && break
    kill -0 "$(cat "$gateway_dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  gateway_url=$(sed -n 's/^listening on //p' "$gateway_dir/out")
  [[ -n $gateway_url ]] || die "the gateway did not start; see $gateway_dir/log"
  echo "gateway listening on $gateway_url"
}

stop_gateway() {
  [[ -f $gateway_dir/pid ]] || return 0
  local pid
  pid=$(cat "$gateway_dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$gateway_dir/pid"
}

# GET <gateway>/STAGE/build-info, as curl shows it (the venv's Python where curl is missing).
curl_info() { # STAGE
  local url=$gateway_url/$1/build-info
  # The gateway re-reads the aliases every 250 ms: wait (at most 3 s) until it serves the
  # version the stage's alias names now, then show the request.
  "$python" - "$url" "$work/seed.json" "$1" <<'EOF' || true
import boto3, json, sys, time, urllib.request
url, seed, alias = sys.argv[1:4]
fn = json.load(open(seed))["function_name"]
want = boto3.client("lambda").get_alias(FunctionName=fn, Name=alias)["FunctionVersion"]
deadline = time.time() + 3
while time.time() < deadline:
    try:
        if json.load(urllib.request.urlopen(url, timeout=2))["lambda"]["function_version"] == want:
            break
    except Exception:
        pass
    time.sleep(0.05)
EOF
  show "curl -s $url"
  if command -v curl >/dev/null; then curl -s "$url"; else
    "$python" -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode(), end="")' "$url"
  fi
  echo
}

# Requests to a stage until SIGTERM (or N sent), tallied by status and serving version into
# OUT_FILE. Run as `traffic ... &`: python is exec'd, so $! is the process to stop.
traffic() { # STAGE OUT_FILE [N]
  exec "$python" -c '
import collections, json, signal, sys, time, urllib.error, urllib.request
url, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
tally = collections.Counter()
def dump(*_):
    with open(out, "w") as f:
        json.dump({f"{k[0]} {k[1]}": v for k, v in tally.items()}, f)
    sys.exit(0)
signal.signal(signal.SIGTERM, dump)
sent = 0
while not limit or sent < limit:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            tally[(r.status, "version " + json.load(r)["lambda"]["function_version"])] += 1
    except urllib.error.HTTPError as e:
        tally[(e.code, "error")] += 1
    sent += 1
    if not limit:
        time.sleep(0.02)
dump()
' "$gateway_url/$1/build-info" "$2" "${3:-0}"
}

show_tally() { # FILE
  "$python" - "$1" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
total = sum(t.values())
for k, v in sorted(t.items()):
    print(f"  {k:<16} {v:>5}  ({100 * v / total:.1f}%)")
print(f"  {'total':<16} {total:>5}")
EOF
}

alarm_state() { # NAME -> "STATE<TAB>reason"
  aws cloudwatch describe-alarms --alarm-names "$1" --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
}

# On a terminal cargo shows its own progress; elsewhere (CI, the tests) one line says what is
# built and about how long it takes, then cargo runs quietly.
cargo_progress() { # WHAT cargo-args...
  local what=$1
  shift
  if [[ -t 2 ]]; then
    run cargo "$@"
  else
    echo "$what"
    run cargo -q "$@"
  fi
}

build_tools() {
  local what="building promote and the gateway: a fresh clone compiles ~300 crates (about 3 minutes on 2 cores), later runs take seconds"
  if [[ ${DEMO_BUILD:-} == tests ]]; then
    cargo_progress "$what" build --workspace --all-targets
  else
    cargo_progress "$what" build -p promote -p gateway
  fi
}

build_app() { # SRC_DIR OUT_ZIP
  local profile_flag=
  case ${DEMO_PROFILE:-dev} in
  dev) ;;
  release) profile_flag=--release ;;
  *) die "DEMO_PROFILE=${DEMO_PROFILE} is not a build profile the demo knows: use dev (the default) or release" ;;
  esac
  # Removed first so that a failed build cannot pass off the previous zip as this one.
  rm -f "$target/lambda/app/bootstrap.zip"
  show "cargo lambda build $profile_flag -p app --output-format zip"
  if [[ -t 2 ]]; then
    (cd "$1" && CARGO_TARGET_DIR=$target cargo lambda build $profile_flag -p app --output-format zip || true)
  else
    (cd "$1" && CARGO_TARGET_DIR=$target cargo lambda build $profile_flag -p app --output-format zip 2>&1 |
      grep --line-buffered -vE '^\s+(Compiling|Downloaded|Downloading) ' || true)
  fi
  [[ -f $target/lambda/app/bootstrap.zip ]] || die "cargo lambda build produced no zip"
  cp "$target/lambda/app/bootstrap.zip" "$2"
}

stamp_of() { # ZIP -> "app 0.1.0 <sha>"
  "$python" - "$1" <<'EOF'
import re, sys, zipfile
data = zipfile.ZipFile(sys.argv[1]).read("bootstrap")
m = re.search(rb"@@build-stamp@@(.*?)@@end@@", data)
print(m.group(1).decode() if m else "no build stamp")
EOF
}

publish() { # ZIP -> version number on stdout
  show "promote publish --zip ${1#"$root"/}" >&2
  promote --output json publish --zip "$1" | "$python" -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.strip()][-1]["version"])'
}

# app-1.zip from this working tree, app-2.zip from a throwaway worktree with the app's minor
# version bumped: two real releases, the second newer.
build_releases() {
  rm -f "$work"/app-*.zip
  step "Building the function from this working tree"
  build_app "$root" "$work/app-1.zip"
  echo "build stamp: $(stamp_of "$work/app-1.zip")"

  step "Building a second, newer release: the app's minor version bumped in a throwaway git worktree"
  worktree=$work/next-release
  rm -rf "$worktree"; git worktree prune
  run git worktree add --quiet --detach "$worktree" HEAD
  "$python" - "$worktree/app/Cargo.toml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
def bump(m):
    major, minor, _ = m.group(2).split(".")
    return f'{m.group(1)}{major}.{int(minor) + 1}.0"'
open(p, "w").write(re.sub(r'^(version = ")([0-9]+\.[0-9]+\.[0-9]+)"', bump, s, count=1, flags=re.M))
EOF
  git -C "$worktree" -c user.name=demo -c user.email=demo@localhost commit --quiet --no-verify -am "demo: next release"
  build_app "$worktree" "$work/app-2.zip"
  echo "build stamp: $(stamp_of "$work/app-2.zip")"
  git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
  git worktree prune >/dev/null 2>&1 || true
  worktree=
}

cmd_run() {
  while (($#)); do
    case $1 in
    --state-log) state_log=$(realpath -m "$2"); shift 2 ;;
    *) die "unknown option $1 (usage: tools/demo.sh run [--state-log FILE])" ;;
    esac
  done
  [[ -z $state_log ]] || : >"$state_log"
  mkdir -p "$work"
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  start_emulator
  local envs
  envs=$(demo_environments)
  export PROMOTE_ENVIRONMENTS=$envs
  show "export PROMOTE_ENVIRONMENTS=${envs#"$root"/}   # environments/ with 1-2 s bakes and 1 s polls, for the demo"
  seed "$envs"
  local function
  function=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["function_name"])' "$work/seed.json")
  checkpoint seeded "$function"

  step "Building promote and the local API Gateway (dev profile)"
  build_tools

  build_releases

  local walk_start=$SECONDS
  step "Publishing both builds as immutable Lambda versions"
  local v1 v2
  v1=$(publish "$work/app-1.zip")
  v2=$(publish "$work/app-2.zip")
  echo "published: version $v1 ($(stamp_of "$work/app-1.zip")), version $v2 ($(stamp_of "$work/app-2.zip"))"
  checkpoint published "$function"

  step "The local API Gateway serves the stages: each version runs its own bootstrap from its zip"
  start_gateway "$envs" 0
  local port=${gateway_url##*:}

  step "Baseline: version $v1 walks the whole path (dev, test, then the live canary plan)"
  run promote deploy --stage dev --version "$v1"
  curl_info dev
  run promote deploy --stage test
  curl_info test
  run promote canary --stage live
  curl_info live
  checkpoint baseline "$function"

  step "The new release (version $v2) goes to dev, then is promoted to test"
  run promote deploy --stage dev --version "$v2"
  curl_info dev
  run promote deploy --stage test
  curl_info test
  checkpoint test-on-new "$function"

  step "Canary on live: 10% of live traffic to version $v2, alarms watched for the bake"
  run promote canary --stage live --weight 10
  run promote status
  checkpoint canary-10 "$function"
  show "400 requests to $gateway_url/live/build-info"
  (traffic live "$work/split.json" 400)
  echo "observed split:"
  show_tally "$work/split.json"

  step "A bad release: the gateway now fails half of version $v2's invocations, as a crashing build would"
  stop_gateway
  start_gateway "$envs" "$port" --fault "$v2:0.5"
  local alarm
  alarm=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["live"]["alarms"][0])' "$work/seed.json")
  echo "live traffic flows in the background; the gateway evaluates $alarm over the requests it served"
  traffic live "$work/bad.json" &
  background+=($!)
  local code=0
  run promote canary --stage live --bake 60s || code=$?
  [[ $code == 4 ]] || die "expected promote to roll back with exit code 4, got $code"
  echo "promote exited with code 4: rolled back"
  # The traffic stops once the alarm has been seen firing (promote may have acted on the
  # per-version metrics a moment before it).
  local state=
  for _ in $(seq 1 60); do
    state=$(alarm_state "$alarm")
    [[ $state == ALARM* ]] && break
    sleep 0.5
  done
  kill "${background[@]}" 2>/dev/null || true
  wait "${background[@]}" 2>/dev/null || true
  background=()
  echo "live traffic during the bad canary:"
  show_tally "$work/bad.json"
  show "aws cloudwatch describe-alarms --alarm-names $alarm   (state and reason, set by the gateway)"
  echo "$state"
  [[ $state == ALARM* ]] || die "alarm $alarm did not fire from the failing requests: $state"
  run promote status
  curl_info live
  checkpoint rolled-back "$function"

  step "The fault is fixed (the gateway runs without --fault); once the alarm clears, the whole live plan runs again, to 100%"
  stop_gateway
  start_gateway "$envs" "$port"
  show "waiting for $alarm to return to OK (no failing requests any more)"
  for _ in $(seq 1 120); do
    state=$(alarm_state "$alarm")
    [[ $state == OK* ]] && break
    sleep 0.5
  done
  echo "$state"
  [[ $state == OK* ]] || die "alarm $alarm did not return to OK: $state"
  traffic live "$work/good.json" &
  background+=($!)
  # The alias note records the rollback: the same version goes out again only with --retry.
  run promote canary --stage live --retry
  kill "${background[@]}" 2>/dev/null || true
  wait "${background[@]}" 2>/dev/null || true
  background=()
  echo "live traffic during the plan:"
  show_tally "$work/good.json"
  run promote status
  curl_info live
  checkpoint live-complete "$function"

  step "Done: version $v2 serves 100% of live ($((SECONDS - walk_start)) s from publish to here). The emulator and the gateway are stopped now; 'make demo-up' keeps them running."
}

# What `make demo-up` leaves: the demo's environments and two real releases, every stage
# served from its own zip, live one release behind test, and the mission's commands printed
# ready to paste (also written to target/demo/commands.sh, which tests/demo runs in order).
cmd_up() {
  mkdir -p "$work"
  stop_gateway
  keep=
  trap 'cleanup_up' EXIT
  trap 'exit 130' INT TERM

  start_emulator
  local envs
  envs=$(demo_environments)
  export PROMOTE_ENVIRONMENTS=$envs
  seed "$envs"
  step "Building promote and the local API Gateway (dev profile)"
  build_tools
  build_releases

  step "Publishing both builds as immutable Lambda versions"
  local v1 v2
  v1=$(publish "$work/app-1.zip")
  v2=$(publish "$work/app-2.zip")
  echo "published: version $v1 ($(stamp_of "$work/app-1.zip")), version $v2 ($(stamp_of "$work/app-2.zip"))"

  step "Starting the local API Gateway (it keeps running)"
  start_gateway "$envs" 0

  step "Version $v1 walks the whole path; version $v2 then reaches test, so live is one release behind"
  run promote deploy --stage dev --version "$v1"
  run promote deploy --stage test
  run promote canary --stage live
  run promote deploy --stage dev --version "$v2"
  run promote deploy --stage test
  for stage in dev test live; do curl_info "$stage" >/dev/null; done

  local region
  region=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("region") or "us-east-1")' "$envs/project.json")
  # The environment for a new shell: the emulator, dummy credentials, promote on PATH and the
  # demo's environments (1-2 s bakes, judged by alarms: moto runs no Lambda code of its own).
  cat >"$work/env.sh" <<EOF
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$region AWS_DEFAULT_REGION=$region AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PROMOTE_ENVIRONMENTS=$envs
export PATH=$target/debug:\$PATH
EOF
  cat >"$work/commands.sh" <<EOF
curl -s $gateway_url/dev/build-info     # version $v2, the newer release
curl -s $gateway_url/test/build-info    # version $v2
curl -s $gateway_url/live/build-info    # version $v1: live is one release behind test
promote canary --stage live --weight 10    # version $v2 (from test) to 10% of live, a 2 s bake, the split left in place
promote probe --stage live --url $gateway_url/live --path /build-info --duration 5s    # 50 requests/s, each attributed to its version
promote status
promote rollback --stage live    # live back to 100% version $v1
EOF

  step "The emulator and the gateway keep running. In your shell (or: source ${work#"$root"/}/env.sh):"
  cat "$work/env.sh"
  step "Then the mission's commands, in this order:"
  cat "$work/commands.sh"
  echo
  echo "Stop both with 'make demo-down'."
  keep=1
}

# On success the emulator and the gateway stay up; on any failure nothing is left running.
cleanup_up() {
  local code=$?
  trap - EXIT INT TERM
  if [[ -n $worktree && -d $worktree ]]; then
    git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
    git worktree prune >/dev/null 2>&1 || true
  fi
  if [[ -z $keep ]]; then
    stop_gateway
    tools/moto.sh stop "$moto_dir" || true
  fi
  exit "$code"
}

cmd_down() {
  stop_gateway
  tools/moto.sh stop "$moto_dir"
  rm -f "$work/env.sh" "$work/commands.sh"
  echo "gateway and emulator stopped"
}

case ${1:-} in
run) shift; cmd_run "$@" ;;
up) cmd_up ;;
down) cmd_down ;;
build-tools) build_tools ;;
*) echo "usage: tools/demo.sh run [--state-log FILE] | up | down | build-tools" >&2; exit 2 ;;
esac
