#!/usr/bin/env bash
# The whole path to live on a laptop, against a local AWS emulator (moto), with no AWS account.
#
#   tools/demo.sh run [--state-log FILE]   the full walk (make demo); stops the emulator at the end
#   tools/demo.sh up                       the emulator and the local API Gateway left running, live one
#                                          release behind test; prints the exports and the commands to try (make demo-up)
#   tools/demo.sh down                     stops them (make demo-down)
#   tools/demo.sh build-tools              only the cargo build: promote, the gateway, the guardian and
#                                          every function (make demo runs it while the Python tools
#                                          install; run and up then find it done)
#
# A release is every function of project.json built from one commit and
# published together. The stages are served by `gateway` (the local API Gateway, gateway/),
# running each version's real bootstrap: every move is followed by real requests, and the bad
# release is caught by its own failing traffic (`--fault`), the gateway evaluating the stage's
# alarms with `--time-scale`; no alarm is set by hand.
#
# --state-log FILE appends one JSON line per checkpoint with every function's aliases as the
# emulator holds them, read independently of promote; tests/demo asserts the states the walk
# passes through.
#
# Builds. The gateway runs the bootstraps on this machine, so the demo builds the functions for
# it in the same cargo invocation as promote, the gateway and the guardian: one feature
# resolution, every dependency compiled once (cargo lambda's explicit target compiled them all a
# second time, a minute of a fresh clone's first demo), and the binaries zipped as `bootstrap`.
# The second, newer release is built in a throwaway git worktree of HEAD with the functions'
# minor versions bumped, into the same target directory with the same package selection, so
# that only what changed compiles (the functions, a few seconds).
#
# Environment: DEMO_PROFILE=dev|release chooses the functions' build profile. The default is
# dev; release builds the zips as `make package` ships them, with cargo lambda (which `make
# venv` installs). DEMO_BUILD=tests builds as `cargo test --workspace` does (every target): the
# features then resolve as in the test build, which `make test` has just made, instead of a
# second time (the AWS SDK rebuilt, minutes on 2 cores). The emulator only ever listens on
# 127.0.0.1 and the demo exports dummy credentials and a loopback endpoint, so it cannot reach a
# real account.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Builds go where cargo puts them (CARGO_TARGET_DIR if set); the demo's own state stays in ./target.
target=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")
work=$root/target/demo
moto_dir=$work/moto
gateway_dir=$work/gateway
zips=$work/zips
# A 60 s alarm period is a second in the demo, and the guardian's schedule ticks as often.
time_scale=${DEMO_TIME_SCALE:-60}
python=$root/.venv/bin/python
lib=$root/tools/demo_lib.py
export PATH=$target/debug:$root/.venv/bin:$PATH

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold='' dim='' off=''; fi
# Each step says when it starts, in seconds since the demo did.
step() { printf '\n%s==> %s%s %s[%d s]%s\n' "$bold" "$*" "$off" "$dim" "$SECONDS" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
run() { show "$*"; "$@"; }
die() { echo "tools/demo.sh: $*" >&2; exit 1; }
py() { "$python" "$lib" "$@"; }

state_log=
background=()
worktree=

remove_worktree() {
  if [[ -n $worktree && -d $worktree ]]; then
    git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
    git worktree prune >/dev/null 2>&1 || true
  fi
  worktree=
}

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  for pid in "${background[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  stop_gateway
  remove_worktree
  tools/moto.sh stop "$moto_dir" || true
  exit "$code"
}

start_emulator() {
  [[ -x $python ]] || die "the project's virtualenv is missing; run 'make demo' (or tools/venv.sh --demo) first"
  tools/moto.sh stop "$moto_dir" >/dev/null 2>&1 || true
  step "Starting a local AWS emulator (moto) on 127.0.0.1"
  endpoint=$(tools/moto.sh start "$moto_dir")
  echo "moto_server listening on $endpoint"
  # Dummy credentials and the loopback endpoint, whatever the caller's environment holds.
  eval "$(tools/moto.sh env "$moto_dir")"
  unset AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

# environments/ with 2 s bakes and 1 s polls (tools/demo_lib.py says why that is allowed).
demo_environments() {
  local dir=$work/environments
  rm -rf "$dir"
  py environments "$dir"
  export PROMOTE_ENVIRONMENTS=$dir
}

seed() {
  step "Creating the stack as Terraform would, derived from ${PROMOTE_ENVIRONMENTS#"$root"/}"
  show "tools/seed.py --endpoint $endpoint --environments ${PROMOTE_ENVIRONMENTS#"$root"/} --versions 1"
  "$python" tools/seed.py --endpoint "$endpoint" --environments "$PROMOTE_ENVIRONMENTS" --versions 1 >"$work/seed.json"
  "$python" - "$work/seed.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"functions {', '.join(s['functions'])} (version 1 of each published), REST API {s['rest_api_id']}")
for name, st in s["stages"].items():
    tables = f"  table: {', '.join(st['tables'])}" if st.get("tables") else ""
    print(f"  stage {name:<5} -> alias {st['alias']:<5} {st['invoke_url']}{tables}")
    print(f"        alarms: {', '.join(st['alarms'] + st.get('function_alarms', []))}")
EOF
}

checkpoint() { # NAME
  [[ -z $state_log ]] || py checkpoint "$1" "$state_log"
}

# The local API Gateway in front of the emulator's stages, on PORT (0: any free port).
start_gateway() { # PORT [gateway options...]; sets gateway_url
  local port=$1
  shift
  mkdir -p "$gateway_dir"
  show "gateway --listen 127.0.0.1:$port --artifacts ${zips#"$root"/} --time-scale $time_scale $*"
  : >"$gateway_dir/out"
  nohup gateway --listen "127.0.0.1:$port" --environments "$PROMOTE_ENVIRONMENTS" --artifacts "$zips" \
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

# One request as curl shows it (the venv's Python prints the same where curl is missing).
curl_() { # METHOD URL [BODY]
  local method=$1 url=$2 body=${3:-}
  if [[ $method == PUT ]]; then
    show "curl -s -X PUT -H 'Content-Type: application/json' -d '$body' -w '%{http_code} x-app-version: %header{x-app-version}\n' $url"
    if command -v curl >/dev/null; then
      curl -s -X PUT -H 'Content-Type: application/json' -d "$body" -w '%{http_code} x-app-version: %header{x-app-version}\n' "$url"
    else py request PUT "$url" "$body"; fi
  elif [[ $url == */build-info ]]; then
    show "curl -s $url"
    if command -v curl >/dev/null; then curl -s "$url"; echo; else py request GET "$url" | sed 's/ x-app-version: .*//'; fi
  else
    show "curl -s -w ' x-app-version: %header{x-app-version}\n' $url"
    if command -v curl >/dev/null; then curl -s -w ' x-app-version: %header{x-app-version}\n' "$url"; else py request GET "$url"; fi
  fi
}

# Every function of STAGE answering from the version its alias names: app's /build-info, a PUT
# then a GET of the birthday API (on the stage's own table) and, on live, a note, an image and
# its copy (in live's buckets), and an upload that file-metadata summarises (the traffic shows
# them on every stage).
show_stage() { # STAGE
  py wait-served "$gateway_url" "$1" || true
  curl_ GET "$gateway_url/$1/build-info"
  curl_ PUT "$gateway_url/$1/hello/ada" '{"dateOfBirth":"1990-07-05"}'
  curl_ GET "$gateway_url/$1/hello/ada"
  if [[ $1 == live ]]; then py objects "$gateway_url" "$1"; fi
}

alarm_states() { # STAGE -> "NAME STATE" per alarm of the stage that is not OK, or nothing
  "$python" - "$1" <<'EOF'
import boto3, sys
for a in boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"app-{sys.argv[1]}-")["MetricAlarms"]:
    if a["StateValue"] != "OK":
        print(a["AlarmName"], a["StateValue"], a["StateReason"][:120])
EOF
}

# Until every alarm of STAGE is OK again (no failing requests any more): promote refuses to
# start a rollout while one fires.
wait_alarms_ok() { # STAGE
  show "waiting for every alarm of $1 to return to OK (no failing requests any more)"
  local states
  for _ in $(seq 1 120); do
    states=$(alarm_states "$1")
    [[ -z $states ]] && { echo "every alarm of $1 is OK"; return 0; }
    sleep 0.5
  done
  die "alarms of $1 did not return to OK: $states"
}

stop_background() {
  kill "${background[@]}" 2>/dev/null || true
  wait "${background[@]}" 2>/dev/null || true
  background=()
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

profile() {
  case ${DEMO_PROFILE:-dev} in
  dev | release) echo "${DEMO_PROFILE:-dev}" ;;
  *) die "DEMO_PROFILE=${DEMO_PROFILE} is not a build profile the demo knows: use dev (the default) or release" ;;
  esac
}

# What one cargo invocation builds: promote, the gateway, the guardian and (dev profile) every
# function, for this machine. The same selection builds the second release (features resolve
# the same, so nothing but the functions compiles again).
selection() {
  if [[ ${DEMO_BUILD:-} == tests ]]; then
    echo --workspace --all-targets
  elif [[ $(profile) == release ]]; then
    echo -p promote -p gateway -p guardian
  else
    local package sel="-p promote -p gateway -p guardian"
    for package in $(packages); do sel+=" -p $package"; done
    echo "$sel"
  fi
}

# The system's python3: build-tools runs while the project's virtualenv is still installing.
functions() { python3 -c 'import json,sys; print(" ".join(f["name"] for f in json.load(open(sys.argv[1]))["functions"]))' "$root/environments/project.json"; }
packages() { python3 -c 'import json,sys; print(" ".join(f["package"] for f in json.load(open(sys.argv[1]))["functions"]))' "$root/environments/project.json"; }

build_tools() {
  profile >/dev/null
  # shellcheck disable=SC2046 # the selection is words
  cargo_progress "building promote, the gateway, the guardian and the functions: a fresh clone compiles ~350 crates (about 3 minutes on 2 cores), later runs take seconds" \
    build $(selection)
}

# Every function's binary of this tree zipped as `bootstrap` into zips/<function>-N.zip.
zip_release() { # N
  local function package
  read -r -a fns <<<"$(functions)"
  read -r -a pkgs <<<"$(packages)"
  for i in "${!fns[@]}"; do
    function=${fns[$i]} package=${pkgs[$i]}
    if [[ $(profile) == release ]]; then
      [[ -f $target/lambda/$package/bootstrap.zip ]] || die "cargo lambda build produced no zip for $package"
      cp "$target/lambda/$package/bootstrap.zip" "$zips/$function-$1.zip"
    else
      py zip "$target/debug/$package" "$zips/$function-$1.zip"
    fi
    echo "  ${zips#"$root"/}/$function-$1.zip: $(py stamp "$zips/$function-$1.zip")"
  done
}

# The functions of the tree in DIR (this one or the next release's worktree), built for this
# machine with the same selection as build_tools, or with cargo lambda for DEMO_PROFILE=release.
build_functions() { # DIR
  local bins=() package
  for package in $(packages); do bins+=(--bin "$package"); done
  if [[ $(profile) == release ]]; then
    command -v cargo-lambda >/dev/null ||
      die "DEMO_PROFILE=release builds the zips with cargo lambda: run 'make venv' (or tools/venv.sh --no-checkov) first"
    for package in $(packages); do
      # Removed first so that a failed build cannot pass off the previous zip as this one.
      rm -f "$target/lambda/$package/bootstrap.zip"
      show "cargo lambda build --release -p $package --output-format zip"
      (cd "$1" && CARGO_TARGET_DIR=$target cargo lambda build --release -p "$package" --output-format zip 2>&1 |
        grep --line-buffered -vE '^\s+(Compiling|Downloaded|Downloading) ' || true)
    done
  elif [[ $1 != "$root" ]]; then
    local sel
    sel=$(selection)
    # Features must resolve as in this tree's build. The test build's --all-targets takes in
    # dev-dependencies; so does --examples, which adds only the (unchanged, fresh) examples.
    [[ ${DEMO_BUILD:-} == tests ]] && sel="--workspace --examples"
    # shellcheck disable=SC2086 # the selection is words
    show "cargo build $sel ${bins[*]}"
    # shellcheck disable=SC2086
    (cd "$1" && CARGO_TARGET_DIR=$target cargo build -q $sel "${bins[@]}")
  fi
}

# Release 1 from this working tree, release 2 from a throwaway worktree of HEAD with every
# function's minor version bumped: two real releases, the second newer.
build_releases() {
  rm -rf "$zips" && mkdir -p "$zips"
  step "Release 1: every function of this working tree ($(functions)), zipped as bootstrap"
  build_functions "$root"
  zip_release 1

  step "Release 2: the functions' minor versions bumped in a throwaway git worktree of HEAD"
  worktree=$work/next-release
  rm -rf "$worktree"; git worktree prune
  run git worktree add --quiet --detach "$worktree" HEAD
  local package
  for package in $(packages); do
    "$python" - "$worktree" "$package" <<'EOF'
import json, pathlib, re, subprocess, sys
wt, package = pathlib.Path(sys.argv[1]), sys.argv[2]
meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
                                 cwd=wt, capture_output=True, check=True).stdout)
manifest = pathlib.Path(next(p["manifest_path"] for p in meta["packages"] if p["name"] == package))
def bump(m):
    major, minor, _ = m.group(2).split(".")
    return f'{m.group(1)}{major}.{int(minor) + 1}.0"'
manifest.write_text(re.sub(r'^(version = ")([0-9]+\.[0-9]+\.[0-9]+)"', bump, manifest.read_text(), count=1, flags=re.M))
EOF
  done
  # The lock file records the members' versions: updated (offline, nothing else changes) and
  # committed with them, so that the build is of a clean commit.
  (cd "$worktree" && cargo update --workspace --offline --quiet)
  git -C "$worktree" -c user.name=demo -c user.email=demo@localhost commit --quiet --no-verify -am "demo: next release"
  # A file of the worktree with the same bytes as this tree's gets this tree's mtime: cargo then
  # sees it unchanged (it compares mtimes), and compiles only the crates whose files differ.
  "$python" - "$root" "$worktree" <<'EOF'
import filecmp, os, subprocess, sys
root, wt = sys.argv[1:3]
listed = subprocess.run(["git", "ls-files", "-z"], cwd=wt, capture_output=True, check=True).stdout.decode()
for f in filter(None, listed.split("\0")):
    ours, theirs = os.path.join(root, f), os.path.join(wt, f)
    if os.path.isfile(ours) and not os.path.islink(ours) and filecmp.cmp(ours, theirs, shallow=False):
        st = os.stat(ours)
        os.utime(theirs, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF
  build_functions "$worktree"
  zip_release 2
  remove_worktree
  # This tree's binaries are linked again by its next cargo build (the worktree's replaced them).
}

# `promote publish` of every zip of release N: prints "app=2 birthday=2" on stdout (what
# `--release` takes), narrated on stderr.
publish() { # N
  local args=() function
  for function in $(functions); do args+=(--zip "$function=${zips#"$root"/}/$function-$1.zip"); done
  show "promote publish ${args[*]}" >&2
  (cd "$root" && promote publish "${args[@]}")
}

# "app=2 birthday=2" -> "--release app=2 --release birthday=2"
release_flags() { local kv out=(); for kv in $1; do out+=(--release "$kv"); done; echo "${out[*]}"; }
# "app=2 birthday=2" FUNCTION -> 2
version_of() { local kv; for kv in $1; do if [[ ${kv%%=*} == "$2" ]]; then echo "${kv#*=}"; fi; done; }

# Publishes both releases; sets rel1 and rel2 ("app=2 birthday=2").
publish_releases() {
  step "Publishing both releases: one immutable Lambda version per function each"
  rel1=$(publish 1)
  echo "release 1: $rel1"
  rel2=$(publish 2)
  echo "release 2: $rel2"
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
  demo_environments
  show "export PROMOTE_ENVIRONMENTS=${PROMOTE_ENVIRONMENTS#"$root"/}   # environments/ with 2 s bakes and 1 s polls, for the demo"
  seed
  checkpoint seeded

  step "Building promote, the local API Gateway, the guardian and the functions ($(profile) profile)"
  build_tools
  build_releases

  local walk_start=$SECONDS
  publish_releases
  checkpoint published
  local bad_function=birthday bad
  bad=$(version_of "$rel2" "$bad_function")

  step "The local API Gateway serves every function on every stage: each version runs its own bootstrap from its zip"
  start_gateway 0
  local port=${gateway_url##*:}

  step "Baseline: release 1 ($rel1) walks the whole path (dev, test, then the live canary plan)"
  # shellcheck disable=SC2046 # the flags are words
  run promote deploy --stage dev $(release_flags "$rel1")
  show_stage dev
  run promote deploy --stage test
  show_stage test
  run promote canary --stage live
  show_stage live
  checkpoint baseline

  step "Release 2 ($rel2) goes to dev, then is promoted to test: every function in lockstep"
  # shellcheck disable=SC2046
  run promote deploy --stage dev $(release_flags "$rel2")
  show_stage dev
  run promote deploy --stage test
  show_stage test
  checkpoint test-on-new

  step "Canary on live: 10% of every function's live traffic to release 2, alarms watched for the bake"
  run promote canary --stage live --weight 10
  run promote status --stage live
  checkpoint canary-10
  show "200 requests to each function on $gateway_url/live"
  (exec "$python" "$lib" traffic "$gateway_url" live "$work/split.json" 200)
  echo "observed split:"
  py tally "$work/split.json"

  step "A bad release of ONE function: the gateway fails every invocation of $bad_function version $bad, as a crashing build would"
  stop_gateway
  start_gateway "$port" --fault "$bad_function/$bad:1.0"
  echo "live traffic flows in the background; the gateway evaluates live's alarms over the requests it served"
  "$python" "$lib" traffic "$gateway_url" live "$work/bad.json" &
  background+=($!)
  # Watched from now: an alarm fires, promote rolls back, and the alarm can clear again within
  # the next scaled period, before a look taken after promote exits.
  rm -f "$work/fired.txt"
  "$python" "$lib" watch-alarms live "$work/fired.txt" &
  local watcher=$!
  background+=($watcher)
  local code=0
  run promote canary --stage live --bake 60s || code=$?
  [[ $code == 4 ]] || die "expected promote to roll back with exit code 4, got $code"
  echo "promote exited with code 4: every function of the release rolled back, not only $bad_function"
  echo "live's alarms in ALARM (set by the gateway, from the requests it served):"
  wait "$watcher" 2>/dev/null || true
  [[ -s $work/fired.txt ]] || die "no alarm of live fired from the failing requests"
  cat "$work/fired.txt"
  stop_background
  echo "live traffic during the bad canary:"
  py tally "$work/bad.json"
  run promote status --stage live
  show_stage live
  checkpoint rolled-back

  step "With no promote running: the guardian (its real bootstrap, run by the gateway as EventBridge would) takes the bad canary back"
  stop_gateway
  # --verbose: the guardian's own log lines reach the gateway's log, target/demo/gateway/log.
  start_gateway "$port" --fault "$bad_function/$bad:1.0" --guardian "$target/debug/guardian" --verbose
  wait_alarms_ok live
  # The alias note records the rollback: the same release goes out again only with --retry.
  show "promote canary --stage live --weight 10 --retry --bake 10m &"
  promote canary --stage live --weight 10 --retry --bake 10m >"$work/killed.out" 2>&1 &
  local killed=$!
  background+=("$killed")
  local n_functions split
  n_functions=$(wc -w <<<"$(functions)")
  for _ in $(seq 1 100); do
    split=$(py splits live | wc -l)
    ((split == n_functions)) && break
    kill -0 "$killed" 2>/dev/null || { cat "$work/killed.out"; die "promote canary stopped before the split"; }
    sleep 0.2
  done
  ((split == n_functions)) || die "promote canary never put every function of release 2 at 10%"
  checkpoint guardian-canary
  show "kill -9 $killed   # promote dies mid-bake: no handler runs, the split stays at 10%"
  kill -9 "$killed"
  wait "$killed" 2>/dev/null || true
  background=()
  "$python" "$lib" traffic "$gateway_url" live "$work/guarded.json" &
  background+=($!)
  show "waiting for the split to be taken back, with nothing but the gateway and the guardian running"
  local t0=$EPOCHREALTIME left deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    left=$(py splits live)
    [[ -z $left ]] && break
    sleep 0.25
  done
  stop_background
  if [[ -n $left ]]; then
    echo "still split on live: $left"
    alarm_states live
    die "the guardian did not take every function's split back; see $gateway_dir/log"
  fi
  echo "every function's split taken back $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s after the failing traffic started"
  echo "live traffic while promote was dead:"
  py tally "$work/guarded.json"
  run promote status --stage live
  checkpoint guardian-rolled-back

  step "The fault is fixed (the gateway runs without --fault); once the alarms clear, the whole live plan runs again, to 100%"
  stop_gateway
  start_gateway "$port"
  wait_alarms_ok live
  "$python" "$lib" traffic "$gateway_url" live "$work/good.json" &
  background+=($!)
  run promote canary --stage live --retry
  stop_background
  echo "live traffic during the plan:"
  py tally "$work/good.json"
  run promote status
  show_stage live
  checkpoint live-complete

  step "Done: release 2 ($rel2) serves 100% of live ($((SECONDS - walk_start)) s from publish to here). The emulator and the gateway are stopped now; 'make demo-up' keeps them running."
}

# What `make demo-up` leaves: the demo's environments and two real releases, every stage
# served from its own zips, live one release behind test, and the mission's commands printed
# ready to paste (also written to target/demo/commands.sh, which tests/demo runs in order).
cmd_up() {
  mkdir -p "$work"
  stop_gateway
  keep=
  trap 'cleanup_up' EXIT
  trap 'exit 130' INT TERM

  start_emulator
  demo_environments
  seed
  step "Building promote, the local API Gateway, the guardian and the functions ($(profile) profile)"
  build_tools
  build_releases
  publish_releases

  step "Starting the local API Gateway (it keeps running)"
  start_gateway 0

  step "Release 1 walks the whole path; release 2 then reaches test, so live is one release behind"
  # shellcheck disable=SC2046 # the flags are words
  run promote deploy --stage dev $(release_flags "$rel1")
  run promote deploy --stage test
  run promote canary --stage live
  # shellcheck disable=SC2046
  run promote deploy --stage dev $(release_flags "$rel2")
  run promote deploy --stage test
  for stage in dev test live; do py wait-served "$gateway_url" "$stage"; done

  local region a1 a2 b1 n1 i1 m1 uploads summaries
  region=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("region") or "us-east-1")' "$PROMOTE_ENVIRONMENTS/project.json")
  a1=$(version_of "$rel1" app) a2=$(version_of "$rel2" app) b1=$(version_of "$rel1" birthday)
  n1=$(version_of "$rel1" notes) i1=$(version_of "$rel1" images) m1=$(version_of "$rel1" file-metadata)
  uploads=$("$python" "$lib" bucket live uploads) summaries=$("$python" "$lib" bucket live summaries)
  "$python" "$lib" png "$work/photo.png"
  # The environment for a new shell: the emulator, dummy credentials, promote on PATH and the
  # demo's environments (2 s bakes, judged by the alarms the gateway evaluates).
  cat >"$work/env.sh" <<EOF
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$region AWS_DEFAULT_REGION=$region AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PROMOTE_ENVIRONMENTS=$PROMOTE_ENVIRONMENTS
export PATH=$target/debug:\$PATH
EOF
  cat >"$work/commands.sh" <<EOF
curl -s $gateway_url/dev/build-info     # app version $a2, release 2
curl -s $gateway_url/test/build-info    # app version $a2
curl -s $gateway_url/live/build-info    # app version $a1: live is one release behind test
curl -s -X PUT -H 'Content-Type: application/json' -d '{"dateOfBirth":"1990-07-05"}' -w '%{http_code}\n' $gateway_url/live/hello/nando    # birthday version $b1: 204, stored in table birthday-live
curl -s $gateway_url/live/hello/nando    # birthday version $b1: {"message":"Hello, nando! Your birthday is in N day(s)"}
curl -s -X PUT -H 'Content-Type: text/plain' --data-binary 'remember the milk' -w ' %{http_code}\n' $gateway_url/live/notes/shopping    # notes version $n1: 201 (200 once it exists), shopping.txt in bucket $("$python" "$lib" bucket live notes)
curl -s $gateway_url/live/notes/shopping    # remember the milk
curl -s -F file=@${work#"$root"/}/photo.png -F s3Key=photos/photo.png -w ' %{http_code}\n' $gateway_url/live/images    # images version $i1: 201, the original and its 200 and 75 pixel wide copies
curl -s -o ${work#"$root"/}/photo_75.png -w '%{http_code} %{content_type}\n' $gateway_url/live/images/photos/photo.png_75    # 200 image/png: the 75-pixel copy, read through the API
curl -s --aws-sigv4 "aws:amz:\$AWS_REGION:s3" --user "\$AWS_ACCESS_KEY_ID:\$AWS_SECRET_ACCESS_KEY" -X PUT -H 'Content-Type: text/plain' --data-binary 'hello' \$AWS_ENDPOINT_URL/$uploads/hello.txt    # an upload to live's uploads bucket (signed, as S3 wants): the gateway delivers its event to file-metadata's live alias
for i in \$(seq 50); do curl -sf --aws-sigv4 "aws:amz:\$AWS_REGION:s3" --user "\$AWS_ACCESS_KEY_ID:\$AWS_SECRET_ACCESS_KEY" \$AWS_ENDPOINT_URL/$summaries/hello.txt.json && break; sleep 0.2; done; echo    # file-metadata version $m1's summary of it, which appears within a second or so
promote canary --stage live --weight 10    # release 2 (from test) to 10% of live, every function, a 2 s bake, the split left in place
promote probe --stage live --url $gateway_url/live --path /build-info --duration 5s    # 50 requests/s, each attributed to its version
promote status
promote rollback --stage live    # live back to 100% release 1, every function
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
  remove_worktree
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
