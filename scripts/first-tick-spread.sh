#!/bin/bash
# Machines started by hand, one after another: how far apart their first
# ticks are. Three machines, started 0.3 s apart, several trials.
#
#   scripts/first-tick-spread.sh [TRIALS]
#
# Needs a release build (cargo build --release) and GNU date; CLOCKLAB=<path>
# runs another build (for a comparison).
set -eu
trials=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
clocklab=${CLOCKLAB:-"$root/target/release/clocklab"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Microseconds since the epoch of the first tick in a log.
first_tick_us() {
    local stamp
    stamp=$(grep -m1 -E '> Event: (Internal event|Sent message|Processed message)' "$1" \
        | sed -E 's/.*\| Timestamp: ([^ |]+).*/\1/')
    date -u -d "$stamp" +%s%6N
}
for trial in $(seq 1 "$trials"); do
    base=$((20000 + (RANDOM % 20000)))
    dir="$work/$trial"
    mkdir -p "$dir"
    printf '{"host": "127.0.0.1", "ports": [%d, %d, %d], "duration": 2}\n' \
        "$base" $((base + 1)) $((base + 2)) > "$dir/config.json"
    for id in 1 2 3; do
        "$clocklab" machine "$id" --config "$dir/config.json" --out "$dir/logs" --seed "$trial" \
            --token "$(printf '%032x' "$trial")" 2>/dev/null &
        sleep 0.3
    done
    wait
    firsts=$(for id in 1 2 3; do first_tick_us "$dir/logs/machine_$id.log"; done | sort -n)
    spread=$(( $(echo "$firsts" | tail -1) - $(echo "$firsts" | head -1) ))
    echo "trial $trial: first ticks $(echo $firsts | tr '\n' ' ')(us since the epoch); spread ${spread} us"
done
