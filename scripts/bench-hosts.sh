#!/bin/bash
# The real runtime's CPU per machine-tick and per message, measured on 4
# hosts x 25 machines (network namespaces of this computer, each with its
# own address on a bridge, through the `netns` launcher), and what that
# projects for a host of N cores.
#
#   sudo scripts/bench-hosts.sh [DURATION_S] [MAX_RATE]
#
# Three runs of 100 machines, rates drawn from 1..=MAX_RATE (default 100),
# the same seed: for DURATION_S seconds (default 20) where every tick that
# takes no message sends (max_event_num 3: 1.33 messages a send tick), the
# same where few do (max_event_num 30), and that for twice as long. Each
# run's CPU time (user + system, of every process: the orchestrator, the
# agents and the machines, which all wait for their children) is GNU
# time's; its ticks and messages are `clocklab check`'s, which must hold.
# CPU = fixed + a x ticks + b x messages gives a (per machine-tick) and b
# (per message, its send and its receive).
#
# Needs root (it makes and removes the namespaces), iproute2, GNU time
# (/usr/bin/time) and a release build (cargo build --release --bin
# clocklab); CLOCKLAB=<path> measures another build. WORK=<folder> keeps the
# results there (default: a temporary folder, removed at the end).
set -eu

duration=${1:-20}
max_rate=${2:-100}
root=$(cd "$(dirname "$0")/.." && pwd)
clocklab=${CLOCKLAB:-$root/target/release/clocklab}
[ "$(id -u)" = 0 ] || { echo "bench-hosts: needs root (it makes network namespaces)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-hosts: needs GNU time (/usr/bin/time)" >&2; exit 2; }
command -v ip >/dev/null || { echo "bench-hosts: needs ip (apt-get install iproute2)" >&2; exit 2; }
[ -x "$clocklab" ] || { echo "bench-hosts: build first: cargo build --release --bin clocklab" >&2; exit 2; }
if [ -n "${WORK:-}" ]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
fi

bridge=clbr-bench
cleanup() {
    for i in 1 2 3 4; do ip netns del "clocklab-bench-$i" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$work"
ip link add "$bridge" type bridge
ip link set "$bridge" up
: > "$work/hosts.toml"
for i in 1 2 3 4; do
    ns=clocklab-bench-$i
    ip netns add "$ns"
    ip link add "clv-bench$i" type veth peer name eth0 netns "$ns"
    ip link set "clv-bench$i" master "$bridge"
    ip link set "clv-bench$i" up
    ip netns exec "$ns" ip addr add "10.231.250.$i/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    printf '[[hosts]]\nname = "%s"\naddress = "10.231.250.%s"\nmachines = 25\nlauncher = "netns"\nworkdir = "%s/host-%s"\n\n' \
        "$ns" "$i" "$work" "$i" >> "$work/hosts.toml"
done

echo "clocklab $("$clocklab" --version | awk '{print $2}'), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "4 namespace hosts x 25 machines, rates 1..=${max_rate}"
printf '%-6s %-10s %-10s %10s %10s %9s %9s  %s\n' events seconds status ticks messages "cpu s" "wall s" "worst lateness p99 / max (us)"
n=0
for plan in "3 $duration" "30 $duration" "30 $((2 * duration))"; do
    read -r events seconds <<< "$plan"
    n=$((n + 1))
    out=$work/run$n
    if ! /usr/bin/time -f "%U %S %e" -o "$work/time-$n" "$clocklab" run --hosts "$work/hosts.toml" \
        --experiment baseline --runs 1 --machines 100 --duration "$seconds" --max-clock-rate "$max_rate" \
        --max-event-num "$events" --seed 100 --no-analyze --out "$out" > "$work/run-$n.txt" 2>&1; then
        tail -5 "$work/run-$n.txt" >&2
        exit 1
    fi
    results=$(ls -d "$out"/*/)
    "$clocklab" check "$results" > "$work/check-$n.txt" 2>&1 || { cat "$work/check-$n.txt" >&2; exit 1; }
    line=$(grep -m1 ' events, ' "$work/check-$n.txt")
    ticks=$(echo "$line" | sed -E 's/.* ([0-9,]+) ticks.*/\1/; s/,//g')
    messages=$(echo "$line" | sed -E 's/.* ([0-9,]+) messages.*/\1/; s/,//g')
    read -r user sys wall < "$work/time-$n"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
    status=$(sed -nE 's/.*"status": "([a-z]+)".*/\1/p' "$results"/baseline/run_1/manifest.json | head -1)
    lateness=$(grep -m1 'tick lateness' "$work/run-$n.txt" | sed -E 's/.*worst p99 ([0-9]+) us, max ([0-9]+) us.*/\1 \/ \2/')
    printf '%-6s %-10s %-10s %10s %10s %9s %9s  %s\n' "$events" "$seconds" "$status" "$ticks" "$messages" "$cpu" "$wall" "$lateness"
    echo "$ticks $messages $cpu" >> "$work/fit"
done

# c + a x T + b x M = CPU for the three runs (Cramer's rule): c is what a run
# costs whatever it does (starting 100 processes, their 9,900 connections,
# the drain).
awk '
{ t[NR] = $1; m[NR] = $2; c[NR] = $3 }
function det(a1, b1, c1, a2, b2, c2, a3, b3, c3) {
    return a1 * (b2 * c3 - b3 * c2) - b1 * (a2 * c3 - a3 * c2) + c1 * (a2 * b3 - a3 * b2)
}
END {
    d = det(1, t[1], m[1], 1, t[2], m[2], 1, t[3], m[3])
    fixed = det(c[1], t[1], m[1], c[2], t[2], m[2], c[3], t[3], m[3]) / d
    a = det(1, c[1], m[1], 1, c[2], m[2], 1, c[3], m[3]) / d * 1e6
    b = det(1, t[1], c[1], 1, t[2], c[2], 1, t[3], c[3]) / d * 1e6
    printf "fixed CPU a run: %.1f s; CPU per machine-tick: %.1f us; per message (sent and received): %.1f us\n", fixed, a, b
    printf "projected machines a host of N cores holds, its cores fully used, each machine at one rate\n"
    printf "(ticks of max_event_num 10: 0.4 messages each; at most 100 machines a host):\n"
    printf "%-8s", "cores"
    split("1 10 100 1000", rates, " ")
    for (r = 1; r <= 4; r++) printf " %12s", "rate " rates[r]
    printf "\n"
    split("2 8 32 128", cores, " ")
    for (k = 1; k <= 4; k++) {
        printf "%-8s", cores[k]
        for (r = 1; r <= 4; r++) printf " %12d", cores[k] * 1e6 / (rates[r] * (a + 0.4 * b))
        printf "\n"
    }
}' "$work/fit"
