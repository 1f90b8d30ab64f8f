#!/usr/bin/env bash
# Creates or refreshes the project's Python tool environments from the pinned requirement files.
# .venv holds moto, cargo-lambda, ziglang, linters and pytest; .venv-checkov holds checkov,
# whose dependency pins conflict with moto's. A stamp of each requirements file skips reinstalling.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

ensure() {
  local dir=$1 req=$2
  local stamp="$dir/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x "$dir/bin/python" && -f "$stamp" && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  echo "tools/venv.sh: installing $(basename "$req") into ${dir#"$root"/}" >&2
  [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
}

ensure "$root/.venv" "$root/tools/requirements.txt"
if [[ ${1:-} != --no-checkov ]]; then
  ensure "$root/.venv-checkov" "$root/tools/requirements-checkov.txt"
fi
