#!/usr/bin/env bash
# The whole path to live on a laptop, against a local AWS emulator (moto), with no AWS account.
#
#   tools/demo.sh run [--state-log FILE]   the full walk (make demo); stops the emulator at the end
#   tools/demo.sh up                       a seeded emulator left running, and the exports to use it (make demo-up)
#   tools/demo.sh down                     stops it (make demo-down)
#
# --state-log FILE appends one JSON line per checkpoint with every alias as the emulator holds
# it, read independently of promote; tests/demo asserts the states the walk passes through.
#
# Environment: DEMO_PROFILE=release|dev chooses the app build profile (default release, as
# shipped; the test uses dev to save CI minutes). The emulator only ever listens on 127.0.0.1 and
# the demo exports dummy credentials and a loopback endpoint, so it cannot reach a real account.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Builds go where cargo puts them (CARGO_TARGET_DIR if set); the demo's own state stays in ./target.
target=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")
work=$root/target/demo
moto_dir=$work/moto
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

build_app() { # SRC_DIR OUT_ZIP
  local profile_flag=--release
  [[ ${DEMO_PROFILE:-release} == dev ]] && profile_flag=
  # Removed first so that a failed build cannot pass off the previous zip as this one.
  rm -f "$target/lambda/app/bootstrap.zip"
  (cd "$1" && show "cargo lambda build $profile_flag -p app --output-format zip" &&
    CARGO_TARGET_DIR=$target cargo lambda build $profile_flag -p app --output-format zip 2>&1 |
      grep --line-buffered -vE '^\s+(Compiling|Downloaded|Downloading) ' || true)
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

  step "Building promote (dev profile)"
  run cargo build -q -p promote

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

  local walk_start=$SECONDS
  step "Publishing both builds as immutable Lambda versions"
  local v1 v2
  v1=$(publish "$work/app-1.zip")
  v2=$(publish "$work/app-2.zip")
  echo "published: version $v1 ($(stamp_of "$work/app-1.zip")), version $v2 ($(stamp_of "$work/app-2.zip"))"
  checkpoint published "$function"

  step "Baseline: version $v1 walks the whole path (dev, test, then the live canary plan)"
  run promote deploy --stage dev --version "$v1"
  run promote deploy --stage test
  run promote canary --stage live
  checkpoint baseline "$function"

  step "The new release (version $v2) goes to dev, then is promoted to test"
  run promote deploy --stage dev --version "$v2"
  run promote deploy --stage test
  checkpoint test-on-new "$function"

  step "Canary on live: 10% of live traffic to version $v2, alarms watched for the bake"
  run promote canary --stage live --weight 10
  run promote status
  checkpoint canary-10 "$function"

  step "The canary continues; an alarm fires during the bake and promote takes the traffic back"
  local alarm
  alarm=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["live"]["alarms"][0])' "$work/seed.json")
  (
    sleep 4
    aws cloudwatch set-alarm-state --alarm-name "$alarm" --state-value ALARM \
      --state-reason "demo: Errors on alias live above threshold"
  ) &
  background+=($!)
  show "aws cloudwatch set-alarm-state --alarm-name $alarm --state-value ALARM   (in 4 s, in the background)"
  local code=0
  run promote canary --stage live --bake 30s || code=$?
  wait "${background[@]}" 2>/dev/null || true
  background=()
  [[ $code == 4 ]] || die "expected promote to roll back with exit code 4, got $code"
  echo "promote exited with code 4: rolled back"
  run promote status
  checkpoint rolled-back "$function"

  step "The alarm clears; the whole live plan runs again, to 100%"
  run aws cloudwatch set-alarm-state --alarm-name "$alarm" --state-value OK --state-reason "demo: recovered"
  # The alias note records the rollback: the same version goes out again only with --retry.
  run promote canary --stage live --retry
  run promote status
  checkpoint live-complete "$function"

  step "Done: version $v2 serves 100% of live ($((SECONDS - walk_start)) s from publish to here). The emulator is stopped now; 'make demo-up' keeps one running."
}

cmd_up() {
  mkdir -p "$work"
  start_emulator
  seed environments
  step "Building promote (dev profile)"
  run cargo build -q -p promote
  step "The emulator keeps running. To use it from this shell:"
  tools/moto.sh env "$moto_dir"
  echo "export PATH=$target/debug:\$PATH"
  echo
  echo "then try: promote status; stop it with 'make demo-down'."
}

cmd_down() {
  tools/moto.sh stop "$moto_dir"
  echo "emulator stopped"
}

case ${1:-} in
run) shift; cmd_run "$@" ;;
up) cmd_up ;;
down) cmd_down ;;
*) echo "usage: tools/demo.sh run [--state-log FILE] | up | down" >&2; exit 2 ;;
esac
