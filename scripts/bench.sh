#!/usr/bin/env bash
# Runs every performance measurement of the crate and prints a summary:
#
#   scripts/bench.sh
#
#   1. cargo bench --bench overhead    per-request cost of the layer and others
#   2. cargo bench --bench report      cost of answering /status (0/10/100 checks)
#                                      and of each built-in format and probe
#   3. cargo test --release --test alloc -- --nocapture
#                                      allocations per request, bare vs layered
#   4. cargo test --release --test memory -- --nocapture
#                                      RSS before/after 10 million requests
#   5. scripts/load.sh                 wrk throughput, bare vs layered, and /status,
#                                      sequential and concurrent rounds
#      (LOAD_MODES="layered floor outer bare" adds the pass-through comparison
#      of bare with a minimal layer, with StatusLayer around the whole router,
#      and with itself: the method's own noise)
#
# Full logs go to target/bench-logs/ (LOG_DIR). A failing step is reported
# and the others still run; the exit status is non-zero if any failed.
# SKIP="load report" skips steps by name (overhead, report, alloc, memory,
# load). Other engineers' builds skew timings: the load average is printed
# before each step; compare ratios from one run, and re-run when noisy.
set -uo pipefail

cd "$(dirname "$0")/.."

LOG_DIR=${LOG_DIR:-target/bench-logs}
SKIP=${SKIP:-}
mkdir -p "$LOG_DIR"

declare -A STATUS=()
ORDER=()

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }

# run NAME COMMAND...: runs a step, logging to $LOG_DIR/NAME.log
run() {
    local name=$1
    shift
    ORDER+=("$name")
    if [[ " $SKIP " == *" $name "* ]]; then
        STATUS[$name]="skipped"
        return 0
    fi
    printf '\n==== %s: %s (load average %s)\n' "$name" "$*" "$(loadavg)"
    if "$@" 2>&1 | tee "$LOG_DIR/$name.log"; then
        STATUS[$name]="ok"
    else
        STATUS[$name]="FAILED"
    fi
}

echo "machine: $(nproc) cores; $(lscpu 2>/dev/null | grep -m1 'Model name' | sed 's/  */ /g')"
echo "rustc: $(rustc -V)"

run overhead cargo bench --bench overhead
run report cargo bench --bench report
run alloc cargo test --release --test alloc -- --nocapture
run memory cargo test --release --test memory -- --nocapture
run load scripts/load.sh
for mode in ${LOAD_MODES:-layered}; do
    [ "$mode" = layered ] && continue
    run "load-$mode" env LAYERED_MODE="$mode" PHASES=pass-through scripts/load.sh
done

# --- summary --------------------------------------------------------------

log() { [ -f "$LOG_DIR/$1.log" ] && [ "${STATUS[$1]}" != skipped ]; }

printf '\n\n======================== summary ========================\n'
for name in "${ORDER[@]}"; do
    printf '%-9s %s\n' "$name" "${STATUS[$name]}"
done

if log overhead; then
    printf '\n-- overhead (benches/overhead.rs, interleaved medians)\n'
    sed -n '/^1 thread: median/,/^table measured/p' "$LOG_DIR/overhead.log"
fi
if log report; then
    printf '\n-- /status (benches/report.rs, criterion median of the estimate)\n'
    # criterion prints the id, then "time: [low median high]", on one or two lines.
    awk '/^report\// {id = $1} /time:/ && id != "" {
            for (i = 1; i <= NF; i++) if ($i ~ /^\[/) { printf "%-28s %s %s\n", id, $(i + 2), $(i + 3); break }
            id = "" }' "$LOG_DIR/report.log"
    grep -E 'bytes of JSON|cached checks: [0-9]+ bytes' "$LOG_DIR/report.log" || true
fi
if log alloc; then
    printf '\n-- allocations (tests/alloc.rs)\n'
    grep -E 'allocations|test result' "$LOG_DIR/alloc.log" || true
fi
if log memory; then
    printf '\n-- memory (tests/memory.rs)\n'
    grep -E 'requests in|test result' "$LOG_DIR/memory.log" || true
fi
for name in "${ORDER[@]}"; do
    case $name in load*) ;; *) continue ;; esac
    if log "$name"; then
        printf '\n-- wrk (scripts/load.sh, %s)\n' "$name"
        grep -E '^RESULT|^targets' "$LOG_DIR/$name.log" || true
    fi
done
printf '\nlogs: %s/\n' "$LOG_DIR"

for name in "${ORDER[@]}"; do
    [ "${STATUS[$name]}" = FAILED ] && exit 1
done
exit 0
