#!/usr/bin/env bash
# Smoke test of a deployed stage: GET <url>/build-info until it reports the expected commit and
# Lambda version. Retries because an alias switch reaches every API Gateway worker within
# seconds, not at once.
#
#   tools/smoke-test.sh URL GIT_SHA LAMBDA_VERSION
#
# SMOKE_ATTEMPTS (default 12) and SMOKE_INTERVAL seconds (default 5) bound the wait.
# Exit 0 when /build-info matches, 1 when it never did (the last answer is printed), 2 on bad usage.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 URL GIT_SHA LAMBDA_VERSION" >&2
  exit 2
fi
url=${1%/}
want_sha=$2
want_version=$3
attempts=${SMOKE_ATTEMPTS:-12}
interval=${SMOKE_INTERVAL:-5}

if [[ ! $url =~ ^https?:// ]]; then
  echo "smoke-test: '$url' is not an http(s) URL" >&2
  exit 2
fi
if [[ ! $want_sha =~ ^[0-9a-f]{40}$ ]]; then
  echo "smoke-test: '$want_sha' is not a 40-hex git sha" >&2
  exit 2
fi
if [[ ! $want_version =~ ^[1-9][0-9]*$ ]]; then
  echo "smoke-test: '$want_version' is not a published Lambda version number" >&2
  exit 2
fi

last="(no answer)"
for ((i = 1; i <= attempts; i++)); do
  if body=$(curl --silent --show-error --fail --max-time 10 "$url/build-info" 2>&1); then
    got_sha=$(jq -r '.git.sha // empty' <<<"$body" 2>/dev/null || true)
    got_version=$(jq -r '.lambda.function_version // empty' <<<"$body" 2>/dev/null || true)
    if [[ $got_sha == "$want_sha" && $got_version == "$want_version" ]]; then
      echo "smoke-test: $url/build-info serves $want_sha as version $want_version"
      exit 0
    fi
    last="git.sha=${got_sha:-?} lambda.function_version=${got_version:-?} in: $body"
  else
    last=$body
  fi
  if ((i < attempts)); then
    sleep "$interval"
  fi
done

echo "smoke-test: $url/build-info never reported git.sha=$want_sha and lambda.function_version=$want_version after $attempts attempts; last answer: $last" >&2
exit 1
