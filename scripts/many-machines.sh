#!/bin/sh
# Runs of many machines in the real runtime, checked: every machine's exact
# tick count, every message received, and the tick lateness.
#
#   scripts/many-machines.sh [DURATION_S] [MACHINES...]
#
# Defaults: 60 s, 3 then 64 then 100 machines, rates drawn from 1..=1000.
# Needs a release build: cargo build --release --example check_run
set -eu
duration=${1:-60}
[ $# -gt 0 ] && shift
machines=${*:-3 64 100}
root=$(cd "$(dirname "$0")/.." && pwd)
clocklab="$root/target/release/clocklab"
check="$root/target/release/examples/check_run"
out=$(mktemp -d)
for n in $machines; do
    echo "== $n machines, rates up to 1000/s, $duration s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f "wall %e s, user %U s, system %S s" \
        "$clocklab" run --experiment baseline --runs 1 --machines "$n" --max-clock-rate 1000 \
        --duration "$duration" --seed "$n" --no-analyze --out "$out/$n" 2>&1 | grep -v '^tick lateness over' || true
    "$check" "$out/$n"/*/baseline/run_1 || true
done
rm -rf "$out"
