#!/usr/bin/env bash
# Installs the few system commands the tests run that neither Rust nor Python bring: jq, curl,
# unzip and file (the workflow scripts tests/static runs, tools/smoke-test.sh, tools/moto.sh),
# and Debian's chromium, in which crates/probe's test renders the `promote probe --plot` page.
# Called by `make venv`, so by `make test` and `make demo`. Checks with `command -v` and does
# nothing, silently, when all are there; otherwise installs only the missing ones with apt-get
# (as root, or through passwordless sudo). Without apt-get or root it says what to install.
set -euo pipefail

# command -> Debian package
declare -A package=([jq]=jq [curl]=curl [unzip]=unzip [file]=file [chromium]=chromium)
commands=(jq curl unzip file chromium)

missing=()
for cmd in "${commands[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package[$cmd]}")
done
((${#missing[@]} == 0)) && exit 0

say() { echo "tools/system-deps.sh: $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "missing ${missing[*]}, and there is no apt-get here: install them with your package manager"
  exit 1
fi
sudo=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "missing ${missing[*]}: run  sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

say "installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
# A bare machine has no package lists yet; this path only runs when something is missing.
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for cmd in "${commands[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || {
    say "apt-get finished but '$cmd' is still not on PATH"
    exit 1
  }
done
