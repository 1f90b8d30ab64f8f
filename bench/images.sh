#!/usr/bin/env bash
# The image function's cost: time and peak memory to make both copies (200 and 75 pixels wide)
# of a 12-megapixel JPEG and a 1-megapixel PNG, with our code (functions/images, example
# `copies`, built with the measure profile: the shipped code generation without fat LTO) and
# with vipsthumbnail (libvips, the engine under the seed's `sharp`), side by side in one run.
# Each measurement is one process reading the file and writing the copies, timed by GNU time:
# wall and CPU (user + sys) medians of RUNS runs, and the largest peak RSS. vipsthumbnail
# makes one copy per run, so its figure is the two runs of a pair. Goal (issue 22): within
# twice libvips' time, peak under 256 MiB (the function runs at Lambda's 512 MB).
#   bench/images.sh            RUNS=7 by default
# Installs libvips-tools and time with apt-get when missing (bench only: no test needs them).
set -euo pipefail
source "$(dirname "$0")/results.sh"
bench_results images "$@" # its figures also go to bench/RESULTS.md, section images
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-7}

need=()
command -v vipsthumbnail >/dev/null 2>&1 || need+=(libvips-tools)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]} > 0)); then
  sudo=()
  ((EUID == 0)) || sudo=(sudo -n)
  echo "bench/images.sh: installing ${need[*]} with apt-get" >&2
  if ! { "${sudo[@]}" apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "bench/images.sh: could not install ${need[*]}; run  sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

echo "building functions/images (example copies, profile measure)" >&2
cargo build --profile measure -p images --example copies --quiet
copies="$root/target/measure/examples/copies"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$copies" --sample 4000x3000 "$work/photo.jpg"
"$copies" --sample 1000x1000 "$work/graphic.png"

# One timed run of "$@": prints "wall cpu peak_kib".
timed() {
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>&1
  awk '{ printf "%s %.3f %s\n", $1, $2 + $3, $4 }' "$work/time"
}

# measure COMMAND...: RUNS runs; prints "median_wall median_cpu max_peak_kib".
measure() {
  local i
  for ((i = 0; i < runs; i++)); do "$@"; done >"$work/runs"
  median() { cut -d' ' -f"$1" "$work/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  echo "$(median 1) $(median 2) $(cut -d' ' -f3 "$work/runs" | sort -n | tail -1)"
}

ours() { timed "$copies" "$1" "$work/ours"; }
vips() { # both copies: two runs, times added, the larger peak
  local a b
  a=$(timed vipsthumbnail "$1" -s 200 -o "$work/v_200.${1##*.}")
  b=$(timed vipsthumbnail "$1" -s 75 -o "$work/v_75.${1##*.}")
  echo "$a $b" | awk '{ printf "%.2f %.3f %d\n", $1 + $4, $2 + $5, ($3 > $6 ? $3 : $6) }'
}

vips_version=$(vipsthumbnail --vips-version 2>/dev/null | awk '{ print $2 }' | cut -d- -f1)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "| image | engine | wall (median) | CPU (median) | peak RSS | wall, CPU vs libvips |"
echo "| --- | --- | --- | --- | --- | --- |"
for input in photo.jpg graphic.png; do
  case $input in
    photo.jpg) label="JPEG 4000x3000 ($(($(stat -c %s "$work/$input") / 1024)) KiB)" ;;
    graphic.png) label="PNG 1000x1000 ($(($(stat -c %s "$work/$input") / 1024)) KiB)" ;;
  esac
  read -r v_wall v_cpu v_peak < <(measure vips "$work/$input")
  read -r o_wall o_cpu o_peak < <(measure ours "$work/$input")
  ratio=$(awk -v ow="$o_wall" -v vw="$v_wall" -v o="$o_cpu" -v v="$v_cpu" \
    'BEGIN { printf "%.2fx, %.2fx", (vw > 0 ? ow / vw : 0), (v > 0 ? o / v : 0) }')
  echo "| $label | ours (image crate) | $o_wall s | $o_cpu s | $(mib "$o_peak") MiB | $ratio |"
  echo "| $label | vipsthumbnail $vips_version | $v_wall s | $v_cpu s | $(mib "$v_peak") MiB | 1x, 1x |"
done
echo
echo "Both copies of each image per measurement, $runs runs each; CPU is user + sys. The inputs are made by the example (waves under noise, a camera's JPEG quality 92). libvips runs once per copy and decodes the JPEG at reduced scale (shrink-on-load); ours decodes once at full size and averages areas."
