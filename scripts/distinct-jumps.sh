#!/bin/bash
# The analysis and the check on a log with many distinct jump sizes, against
# the same number of lines with every jump 1: peak memory (GNU time's
# maximum resident set size), wall time, and the size of `summary.json` and
# `jumps.csv`.
#
#   scripts/distinct-jumps.sh [N]
#
# N (default 2,000,000) is the number of ticks of machine 1, each with a
# jump size of its own (`cargo run --release --example distinct_jumps`).
# Needs GNU time (/usr/bin/time) and a release build (cargo build --release
# --bins --examples); CLOCKLAB=<path> measures another build of clocklab (an
# older one, for a before and after). WORK=<folder> keeps the logs and the
# outputs there (default: a temporary folder, removed at the end).
set -eu

n=${1:-2000000}
sizes=()
root=$(cd "$(dirname "$0")/.." && pwd)
clocklab=${CLOCKLAB:-$root/target/release/clocklab}
generate=$root/target/release/examples/distinct_jumps
[ -x /usr/bin/time ] || { echo "distinct-jumps: needs GNU time (/usr/bin/time)" >&2; exit 2; }
[ -x "$clocklab" ] && [ -x "$generate" ] || {
    echo "distinct-jumps: build first: cargo build --release --bins --examples" >&2
    exit 2
}
if [ -n "${WORK:-}" ]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

measure() { # label, command...
    local label=$1
    shift
    /usr/bin/time -f "%M %e %x" -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || true
    # GNU time puts "Command exited with non-zero status" first for `check`,
    # which exits 1 on the violations of the made-up log.
    read -r rss seconds code < <(tail -n 1 "$work/time")
    printf '| %s | %s MB | %s s | %s |\n' "$label" "$((rss / 1024))" "$seconds" "$code"
}

echo "clocklab: $clocklab; $n ticks"
echo
echo "| command | peak memory | wall time | exit code |"
echo "| --- | --- | --- | --- |"
for kind in distinct ones; do
    run=$work/$kind/jumps/run_1
    rm -rf "${work:?}/$kind"
    if [ "$kind" = ones ]; then "$generate" "$run" "$n" ones; else "$generate" "$run" "$n"; fi
    measure "analyze --no-diagrams, $kind jumps" "$clocklab" analyze "$work/$kind" --no-diagrams --out "$work/$kind-analysis"
    measure "check, $kind jumps" "$clocklab" check "$work/$kind"
    sizes[${#sizes[@]}]="$kind jumps: summary.json $(stat -c %s "$work/$kind-analysis/summary.json") bytes, jumps.csv $(stat -c %s "$work/$kind-analysis/jumps.csv") bytes"
done
echo
printf '%s\n' "${sizes[@]}"
