#!/usr/bin/env bash
# Creates or refreshes the project's Python tool environments from the pinned requirement files.
# .venv holds moto, cargo-lambda, ziglang, linters and pytest; .venv-checkov holds checkov,
# whose dependency pins conflict with moto's. A stamp of each requirements file skips reinstalling.
# --release installs only the release build's tools into .venv, hash-locked
# (tools/requirements-release.txt): what builds a release artifact is exactly what was reviewed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

ensure() {
  local dir=$1 req=$2
  shift 2
  local stamp="$dir/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x "$dir/bin/python" && -f "$stamp" && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  echo "tools/venv.sh: installing $(basename "$req") into ${dir#"$root"/}" >&2
  [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" -r "$req"
  echo "$want" >"$stamp"
}

if [[ ${1:-} == --release ]]; then
  ensure "$root/.venv" "$root/tools/requirements-release.txt" --require-hashes --no-deps
  exit 0
fi
ensure "$root/.venv" "$root/tools/requirements.txt"
if [[ ${1:-} != --no-checkov ]]; then
  ensure "$root/.venv-checkov" "$root/tools/requirements-checkov.txt"
fi
