#!/usr/bin/env bash
# Creates or refreshes the project's Python tool environments from the pinned requirement files.
# .venv holds moto, cargo-lambda, ziglang, linters and pytest; .venv-checkov holds checkov,
# whose dependency pins conflict with moto's. A stamp of each requirements file skips reinstalling.
#   tools/venv.sh                .venv and .venv-checkov (make venv, make test)
#   tools/venv.sh --no-checkov   .venv only
#   tools/venv.sh --demo         .venv with only what the demo runs (tools/requirements-demo.txt)
#   tools/venv.sh --release      .venv with only the release build's tools, hash-locked
#                                (tools/requirements-release.txt): what builds a release
#                                artifact is exactly what was reviewed
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

# The stamp covers requirements-demo.txt too, which requirements.txt includes.
digest() { cat "$1" "$root/tools/requirements-demo.txt" | sha256sum | cut -d' ' -f1; }
fresh() { # DIR REQ
  [[ -x "$1/bin/python" && -f "$1/.$(basename "$2" .txt).sha256" && $(cat "$1/.$(basename "$2" .txt).sha256") == $(digest "$2") ]]
}

ensure() { # DIR REQ [PIP OPTIONS]
  local dir=$1 req=$2
  shift 2
  fresh "$dir" "$req" && return 0
  echo "tools/venv.sh: installing $(basename "$req") into ${dir#"$root"/}" >&2
  [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" -r "$req"
  digest "$req" >"$dir/.$(basename "$req" .txt).sha256"
}

case ${1:-} in
--release) ensure "$root/.venv" "$root/tools/requirements-release.txt" --require-hashes --no-deps ;;
--demo)
  # The full set, once installed, holds the demo's.
  fresh "$root/.venv" "$root/tools/requirements.txt" || ensure "$root/.venv" "$root/tools/requirements-demo.txt"
  ;;
--no-checkov) ensure "$root/.venv" "$root/tools/requirements.txt" ;;
*)
  ensure "$root/.venv" "$root/tools/requirements.txt"
  ensure "$root/.venv-checkov" "$root/tools/requirements-checkov.txt"
  ;;
esac
