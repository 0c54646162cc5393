#!/bin/bash
# The analysis side by side with the reference implementation's analyzer
# (pandas + matplotlib) on the same logs: about a million lines in the
# reference's format, made by clocklab's simulator and exported with
# `clocklab export --format reference`.
#
#   scripts/bench-reference.sh [REFERENCE_ANALYZER] [REPETITIONS]
#
# REFERENCE_ANALYZER is the reference's `analyze_logs.py` (its repository is
# public: https://github.com/catherinesyeh/cs262-logical-clocks, the file is
# `system/analyze_logs.py`); it may also be given as REFERENCE_ANALYZER=<path>.
# REPETITIONS (default 5) is how many times each command runs; the table
# gives the medians. Needs python3 with pandas and matplotlib, GNU time
# (/usr/bin/time) and a release build (cargo build --release);
# CLOCKLAB=<path> runs another build. WORK=<folder> keeps the logs and the
# outputs there (default: a temporary folder, removed at the end).
#
# The reference reads `logs/<run>/process_<id>.log` under its working
# folder and writes `figures/`; it runs in a scratch folder whose `logs` is
# the exported experiment. It writes no space-time diagrams, so the
# like-for-like comparison is `clocklab analyze --no-diagrams`; the default
# `clocklab analyze` (with a diagram page per run) is measured on both
# forms too.
#
# Two forms of the same logs are measured. The export's ("export"): every
# field clocklab wrote (the sender and clock of each processed message, the
# microsecond `Timestamp`), which the reference's regex reads past and from
# which clocklab also pairs every message and counts concurrent events. And
# the reference's own ("own"): each line as the reference itself writes it
# (`Processed message` naming no sender, a port without a host, no
# `Timestamp`: about 100 bytes a line), on which both analyzers work out
# what the reference's logs allow and clocklab says the causality cannot be
# told.
set -eu

fail() {
    echo "bench-reference: $*" >&2
    exit 2
}

reference=${1:-${REFERENCE_ANALYZER:-}}
repetitions=${2:-5}
[ -n "$reference" ] || fail "no reference analyzer given (the path of analyze_logs.py, as an argument or REFERENCE_ANALYZER)"
[ -f "$reference" ] || fail "reference analyzer not found: $reference"
command -v python3 >/dev/null || fail "python3 not found"
python3 -c 'import pandas, matplotlib' 2>/dev/null || fail "python3 cannot import pandas and matplotlib (pip install pandas matplotlib)"
[ -x /usr/bin/time ] || fail "GNU time (/usr/bin/time) not found"
case $repetitions in '' | *[!0-9]* | 0) fail "repetitions must be a positive whole number, not '$repetitions'" ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
clocklab=${CLOCKLAB:-"$root/target/release/clocklab"}
[ -x "$clocklab" ] || fail "no clocklab build at $clocklab (cargo build --release)"
reference=$(cd "$(dirname "$reference")" && pwd)/$(basename "$reference")

if [ -n "${WORK:-}" ]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

# The data: one experiment of 3 machines, 5 runs of 16,400 simulated
# seconds at rates drawn from 1..=6, seed 1: 1,002,389 lines in the
# reference's format (about 150 MB with clocklab's microsecond timestamps, which
# the reference's regex ignores).
cat > "$work/config.toml" <<'EOF'
runtime = "sim"

[[experiments]]
name = "exp"
machines = 3
max_clock_rate = 6
max_event_num = 10
runs = 5
duration = 16400
EOF
rm -rf "$work/sim" "$work/logs"
"$clocklab" run --runtime sim --config "$work/config.toml" --seed 1 --no-analyze --out "$work/sim" >/dev/null
"$clocklab" export "$work"/sim/*/exp --format reference --out "$work/logs" 2>/dev/null
lines=$(cat "$work"/logs/exp/run_*/process_*.log | wc -l)
bytes=$(cat "$work"/logs/exp/run_*/process_*.log | wc -c)

rm -rf "$work/own"
for log in "$work"/logs/exp/run_*/process_*.log; do
    target=$work/own/exp/${log#"$work"/logs/exp/}
    mkdir -p "$(dirname "$target")"
    sed -E -e 's/ \| Timestamp: [^|]*$//' \
        -e 's/^([0-9]+> Event: Processed message) from machine [0-9]+ with clock [0-9]+ /\1 /' \
        -e 's/^([0-9]+> Event: Initialized on )[^ ]*:([0-9]+) /\1\2 /' \
        -e 's/^([0-9]+> Event: Connected to machine [0-9]+) at [^ ]*:([0-9]+) /\1 on port \2 /' \
        "$log" > "$target"
done
own_lines=$(cat "$work"/own/exp/run_*/process_*.log | wc -l)
own_bytes=$(cat "$work"/own/exp/run_*/process_*.log | wc -c)
# Every line of the reference's own form has the reference's four fields
# and no other, and events in its wording.
shape='^[0-9]+> Event: (Initialized on [0-9]+ with clock rate [0-9]+|Connected to machine [0-9]+ on port [0-9]+|Internal event|Sent message to machine [0-9]+|Processed message|Stopped) \| System Time: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \| Logical Clock: [0-9]+ \| Queue Length: [0-9]+$'
if grep -qvE "$shape" "$work"/own/exp/run_*/process_*.log; then
    fail "a line in the reference's own form is not in its wording: $(grep -hvE "$shape" "$work"/own/exp/run_*/process_*.log | head -n 1)"
fi

# The reference's scratch folders: its script, and its logs folder.
for form in export own; do
    mkdir -p "$work/reference-$form"
    cp "$reference" "$work/reference-$form/analyze_logs.py"
done
ln -sfn "$work/logs/exp" "$work/reference-export/logs"
ln -sfn "$work/own/exp" "$work/reference-own/logs"

# Runs "$@" (in the current folder) once under GNU time; prints "wall_s
# max_rss_kib", the wall clock read to the millisecond around it (GNU time
# gives hundredths of a second, too coarse for a fifth of a second).
measure() {
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" \
        || fail "failed: $* ($(tail -n 1 "$work/stderr.txt"))"
    end=$(date +%s%N)
    echo "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }') $(cat "$work/time.txt")"
}

# The median of the numbers on standard input.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

: > "$work/results.txt"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for repetition in $(seq 1 "$repetitions"); do
    # Alternating, so that a slower moment of the machine falls on all of them.
    (cd "$work/reference-export" && rm -rf figures && echo "reference $(measure python3 analyze_logs.py)") >> "$work/results.txt"
    rm -rf "$work/analysis"
    echo "no_diagrams $(measure "$clocklab" analyze "$work/logs/exp" --no-diagrams --out "$work/analysis")" >> "$work/results.txt"
    rm -rf "$work/analysis"
    echo "default $(measure "$clocklab" analyze "$work/logs/exp" --out "$work/analysis")" >> "$work/results.txt"
    (cd "$work/reference-own" && rm -rf figures && echo "own_reference $(measure python3 analyze_logs.py)") >> "$work/results.txt"
    rm -rf "$work/analysis"
    echo "own_no_diagrams $(measure "$clocklab" analyze "$work/own/exp" --no-diagrams --out "$work/analysis")" >> "$work/results.txt"
    rm -rf "$work/analysis"
    echo "own_default $(measure "$clocklab" analyze "$work/own/exp" --out "$work/analysis")" >> "$work/results.txt"
done

wall() { awk -v k="$1" '$1 == k { print $2 }' "$work/results.txt" | median; }
rss_mib() { awk -v k="$1" '$1 == k { print $3 / 1024 }' "$work/results.txt" | median; }
max_rss_mib() { awk -v k="$1" '$1 == k { print $3 / 1024 }' "$work/results.txt" | sort -g | tail -n 1; }

echo "Logs: 5 runs of 3 machines; $repetitions repetitions of each command, alternating; medians."
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average before: $load_before"
echo "Versions: $(python3 --version 2>&1), pandas $(python3 -c 'import pandas; print(pandas.__version__)'), matplotlib $(python3 -c 'import matplotlib; print(matplotlib.__version__)'), $("$clocklab" --version)"

# The table of one form of the logs: its reference key, then its clocklab keys.
table() {
    local reference_key=$1 key label w ratio
    shift
    local reference_wall
    reference_wall=$(wall "$reference_key")
    echo
    echo "| analysis | wall (median) | peak memory (median / largest) | reference wall / its wall |"
    echo "| --- | --- | --- | --- |"
    for key in "$reference_key" "$@"; do
        case $key in
            *reference) label="reference \`analyze_logs.py\` (pandas)" ;;
            *no_diagrams) label="\`clocklab analyze --no-diagrams\`" ;;
            *default) label="\`clocklab analyze\` (with diagrams)" ;;
        esac
        w=$(wall "$key")
        ratio=$(awk -v r="$reference_wall" -v w="$w" 'BEGIN { printf "%.1fx", r / w }')
        printf '| %s | %.3f s | %.1f MiB / %.1f MiB | %s |\n' "$label" "$w" "$(rss_mib "$key")" "$(max_rss_mib "$key")" "$ratio"
    done
    # Each repetition's ratio: the reference and clocklab run one after the
    # other, so a slower moment of the machine falls on both.
    local ratios goal
    echo
    for key in "$@"; do
        case $key in
            *no_diagrams) label="\`--no-diagrams\`" goal=75 ;;
            *default) label="the default (with diagrams)" goal=40 ;;
        esac
        ratios=$(awk -v r_key="$reference_key" -v c_key="$key" '$1 == r_key { r = $2 } $1 == c_key { printf "%.2f\n", r / $2 }' "$work/results.txt" | sort -g)
        echo "Reference wall / $label wall, repetition by repetition: median $(echo "$ratios" | median)x, from $(echo "$ratios" | head -n 1)x to $(echo "$ratios" | tail -n 1)x; $(echo "$ratios" | awk -v goal=$goal '$1 >= goal' | wc -l) of $repetitions at ${goal}x or more."
    done
}

echo
echo "The export's logs (every field clocklab wrote): $lines lines, $((bytes / 1000000)) MB."
table reference no_diagrams default
echo
echo "The same logs in the reference's own form (its four fields only): $own_lines lines, $((own_bytes / 1000000)) MB."
table own_reference own_no_diagrams own_default
echo
echo "Every measurement (wall s, peak RSS KiB):"
sed 's/^/  /' "$work/results.txt"
