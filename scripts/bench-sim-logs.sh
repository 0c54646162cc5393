#!/bin/bash
# The simulator writing text logs, two builds side by side: alternating runs
# of `clocklab bench --logs` (3 machines x 10 virtual hours, Lamport, seed 42:
# 324,012 lines, 50 MB), so that both builds see the same state of the
# computer and its disk.
#
#   scripts/bench-sim-logs.sh BEFORE AFTER [PAIRS] [FOLDER]
#
# BEFORE and AFTER are clocklab binaries (release builds); PAIRS (default 15)
# is how many runs each makes; FOLDER (default: a temporary folder on the
# disk of /tmp, removed at the end) is where the logs go: give a folder on
# tmpfs (/dev/shm/...) to leave the disk out. Prints each run, then per
# build the medians of the wall time, the simulation thread's CPU time and
# every thread's CPU time (a build that prints only the first CPU figure
# ran on one thread, so the two are the same), the wall lines/s at the
# median, and the median of the paired ratios AFTER / BEFORE.
#
# Needs bash, awk and sort.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BEFORE AFTER [PAIRS] [FOLDER]" >&2
  exit 2
fi
before=$1
after=$2
pairs=${3:-15}
folder=${4:-}
for bin in "$before" "$after"; do
  if [ ! -x "$bin" ]; then
    echo "$0: $bin: not an executable clocklab" >&2
    exit 2
  fi
done
if ! [[ "$pairs" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: PAIRS: $pairs: not a whole number from 1" >&2
  exit 2
fi
if [ -z "$folder" ]; then
  folder=$(mktemp -d)
  trap 'rm -rf "$folder"' EXIT
fi
mkdir -p "$folder"

lines=324012
results=$(mktemp)
trap 'rm -f "$results"; [ -n "${4:-}" ] || rm -rf "$folder"' EXIT

for pair in $(seq "$pairs"); do
  for build in before after; do
    bin=$before
    [ "$build" = after ] && bin=$after
    rm -rf "$folder/bench"
    out=$("$bin" bench --machines 3 --duration 36000 --clocks lamport --logs "$folder")
    wall=$(echo "$out" | awk '/^  wall/ {print $2}')
    thread=$(echo "$out" | awk '/^  cpu/ {print $2; exit}')
    every=$(echo "$out" | awk '/every thread/ {print $2}')
    echo "$pair $build $wall $thread ${every:-$thread}" | tee -a "$results"
  done
done
rm -rf "$folder/bench"

median() {
  sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
echo
printf '%-7s %-10s %-12s %-12s %s\n' build "wall (s)" "thread (s)" "every (s)" "wall lines/s"
for build in before after; do
  wall=$(awk -v b=$build '$2 == b {print $3}' "$results" | median)
  thread=$(awk -v b=$build '$2 == b {print $4}' "$results" | median)
  every=$(awk -v b=$build '$2 == b {print $5}' "$results" | median)
  printf '%-7s %-10s %-12s %-12s %.2f million\n' $build "$wall" "$thread" "$every" \
    "$(awk -v w="$wall" -v l=$lines 'BEGIN {print l / w / 1e6}')"
done
wall_ratio=$(awk '$2 == "before" {b[$1] = $3} $2 == "after" {print $3 / b[$1]}' "$results" | median)
every_ratio=$(awk '$2 == "before" {b[$1] = $5} $2 == "after" {print $5 / b[$1]}' "$results" | median)
faster=$(awk '$2 == "before" {b[$1] = $3} $2 == "after" && $3 < b[$1] {n++} END {print n + 0}' "$results")
echo "after / before, median of the pairs: wall $wall_ratio (faster in $faster of $pairs), every thread's CPU $every_ratio"
