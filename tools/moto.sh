#!/usr/bin/env bash
# Starts or stops a local moto_server (the AWS emulator) on 127.0.0.1 and a free port.
#
#   tools/moto.sh start [STATE_DIR]   starts it, waits until it answers, prints the endpoint URL
#   tools/moto.sh stop  [STATE_DIR]   stops the one started from STATE_DIR
#   tools/moto.sh env   [STATE_DIR]   prints the export lines for the AWS SDK / CLI / promote
#
# STATE_DIR (default target/moto) holds the pid, port and log. Only loopback is ever bound,
# and the printed environment carries dummy credentials, never real ones.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-$root/target/moto}
moto=${MOTO_SERVER:-$root/.venv/bin/moto_server}
python=$root/.venv/bin/python

die() { echo "tools/moto.sh: $*" >&2; exit 1; }

running() { [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case $cmd in
start)
  [[ -x $moto ]] || die "moto_server not found at $moto; run tools/venv.sh (or make venv) first"
  mkdir -p "$dir"
  if running; then
    echo "http://127.0.0.1:$(cat "$dir/port")"
    exit 0
  fi
  for _ in 1 2 3 4 5; do
    # A free port is picked by the OS; a race with another process is retried.
    port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # No AWS_* from the caller: a stray AWS_PROFILE makes moto answer 500.
    unset_aws=()
    for v in $(compgen -e); do [[ $v == AWS_* ]] && unset_aws+=(-u "$v"); done
    nohup env "${unset_aws[@]}" "$moto" -H 127.0.0.1 -p "$port" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    echo "$port" >"$dir/port"
    for _ in $(seq 1 100); do
      if ! running; then break; fi
      # The venv's Python rather than curl, which a bare machine may lack.
      if "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then
        echo "http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.1
    done
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  done
  die "moto_server did not start; see $dir/log"
  ;;
stop)
  if running; then
    pid=$(cat "$dir/pid")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid" "$dir/port"
  ;;
env)
  running || die "no moto_server running from $dir; run tools/moto.sh start first"
  region=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("region") or "us-east-1")' \
    "${PROMOTE_ENVIRONMENTS:-$root/environments}/project.json")
  # Every AWS_* variable set now (profiles, AWS_ENDPOINT_URL_LAMBDA, real keys...) is dropped.
  aws_vars=$(compgen -e | grep '^AWS_' | tr '\n' ' ' || true)
  echo "unset AWS_PROFILE AWS_DEFAULT_PROFILE $aws_vars"
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$dir/port") AWS_REGION=$region AWS_DEFAULT_REGION=$region AWS_EC2_METADATA_DISABLED=true"
  echo "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing"
  ;;
*)
  echo "usage: tools/moto.sh start|stop|env [STATE_DIR]" >&2
  exit 2
  ;;
esac
