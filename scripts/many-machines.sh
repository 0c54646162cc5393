#!/bin/sh
# Runs of many machines in the real runtime, checked: every machine's exact
# tick count, every message received, and the tick lateness.
#
#   scripts/many-machines.sh [DURATION_S] [MACHINES...]
#
# Defaults: 60 s, 3 then 64 then 100 machines, rates drawn from 1..=1000,
# seed = the number of machines. CLOCKLAB=<path> runs another build of
# clocklab (for a comparison; the configuration is a file, which every build
# reads). Needs a release build of the checker:
# cargo build --release --example check_run
set -eu
duration=${1:-60}
[ $# -gt 0 ] && shift
machines=${*:-3 64 100}
root=$(cd "$(dirname "$0")/.." && pwd)
clocklab=${CLOCKLAB:-"$root/target/release/clocklab"}
check="$root/target/release/examples/check_run"
out=$(mktemp -d)
for n in $machines; do
    printf 'machines = %d\nmax_clock_rate = 1000\nruns = 1\nduration = %s\n' "$n" "$duration" > "$out/$n.toml"
    echo "== $n machines, rates up to 1000/s, $duration s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f "wall %e s, user %U s, system %S s" \
        "$clocklab" run --config "$out/$n.toml" --seed "$n" --no-analyze --out "$out/$n" 2>&1 \
        | grep -v '^tick lateness over' || true
    "$check" "$out/$n"/*/experiment/run_1 || true
done
rm -rf "$out"
