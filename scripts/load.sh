#!/usr/bin/env bash
# Throughput under wrk on loopback: an axum hello-world bare and behind
# StatusLayer, then /status (20 cached checks) against the bare hello route.
#
#   scripts/load.sh
#
# Two servers (benches/load_server.rs, built with the bench profile) run
# side by side, one bare and one layered, each a current-thread tokio
# runtime pinned to core 0; wrk is pinned to core 1 (when taskset and two
# cores are there). Each phase runs ROUNDS rounds; a round measures both
# sides back to back, in alternating order, and the ratio of the round is
# layered / bare. The medians of the throughputs and of the per-round ratios
# are printed, with lines starting `RESULT` for scripts. Each run also
# reads the server's CPU time (/proc/PID/stat) and prints CPU microseconds
# per request, and the ratio bare / layered of those: the same measure as
# the throughput ratio while the server's core is saturated, and steadier
# when other processes share the machine.
#
# Two pairings, each printing its own table and RESULT line:
#   - sequential: a round runs wrk on one server, then on the other (the
#     order alternates), each with the server's core to itself;
#   - concurrent: a round runs both wrk at once, both servers sharing core 0
#     (and both wrk core 1), so the scheduler gives each server half the core
#     and whatever slows the machine during the round slows both alike. The
#     throughput ratio is then the inverse of the cost ratio, without the
#     drift between back-to-back runs that makes sequential rounds differ by
#     5 % and more on a shared virtual machine. The table also shows how busy
#     the servers kept their core: below ~95 %, wrk was the bottleneck and
#     only the CPU ratio is meaningful.
#
# Phases:
#   1. pass-through: wrk on / of each server (target: median ratio >= 0.98);
#   2. status: wrk on /status of the layered server (20 checks cached for an
#      hour, so every answer is built from cached results) against / of the
#      bare server (target: median ratio >= 0.5).
#
# Settings (environment): ROUNDS (5), DURATION seconds per wrk run (5),
# CONNECTIONS (32), THREADS wrk threads (1), PORT_BARE and PORT_LAYERED
# (0: each server binds a port the system picks and reports it), SERVER_CORE
# (0), WRK_CORE (1), PHASES
# ("pass-through status"), PAIRINGS ("sequential concurrent"),
# LAYERED_MODE (layered): the load_server mode of
# the second server, e.g. `LAYERED_MODE=outer` (StatusLayer around the whole
# router), `LAYERED_MODE=floor PHASES=pass-through` (a minimal layer: what
# any layer costs under axum), `identity` (a layer that does nothing), `wrap`
# (a layer that only forwards the body) or `LAYERED_MODE=bare
# PHASES=pass-through` (an A/A run: the method's own noise). Only 127.0.0.1 is used.
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT_BARE=${PORT_BARE:-0}
PORT_LAYERED=${PORT_LAYERED:-0}
SERVER_CORE=${SERVER_CORE:-0}
WRK_CORE=${WRK_CORE:-1}
PHASES=${PHASES:-pass-through status}
LAYERED_MODE=${LAYERED_MODE:-layered}
PAIRINGS=${PAIRINGS:-sequential concurrent}

command -v wrk >/dev/null 2>&1 || { echo "load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# --- the server binary ----------------------------------------------------

if ! grep -Eq '^[[:space:]]*name[[:space:]]*=[[:space:]]*"load_server"' Cargo.toml; then
    cat >&2 <<'EOF'
load.sh: Cargo.toml has no bench target `load_server` with `harness = false`;
add:

[[bench]]
name = "load_server"
harness = false
EOF
    exit 1
fi

echo "building benches/load_server.rs (bench profile)"
BIN=$(cargo bench --no-run --bench load_server --message-format=json 2>/dev/null |
    grep '"executable":"[^"]*load_server' |
    sed -E 's/.*"executable":"([^"]*)".*/\1/' | tail -n 1)
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "load.sh: could not build or find the load_server binary" >&2
    cargo bench --no-run --bench load_server >&2
    exit 1
fi
echo "server: $BIN"

# --- pinning --------------------------------------------------------------

PIN_SERVER=()
PIN_WRK=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "$SERVER_CORE")
    PIN_WRK=(taskset -c "$WRK_CORE")
    echo "pinning: servers on core $SERVER_CORE, wrk on core $WRK_CORE"
else
    echo "pinning: none (taskset missing or fewer than 2 cores)"
fi

# --- servers --------------------------------------------------------------

PIDS=()
LOGS=$(mktemp -d)
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$LOGS"
}
trap cleanup EXIT INT TERM

SERVER_PID=
SERVER_PORT=
start_server() { # start_server MODE PORT; sets SERVER_PID, and SERVER_PORT to the port it bound
    local log="$LOGS/server-${#PIDS[@]}.log"
    "${PIN_SERVER[@]}" "$BIN" "$1" "127.0.0.1:$2" >"$log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local i
    for i in $(seq 1 100); do
        # The server prints `listening on 127.0.0.1:PORT (...)` once bound.
        SERVER_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
        if [ -n "$SERVER_PORT" ]; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "load.sh: the $1 server did not start:" >&2
    cat "$log" >&2
    exit 1
}

start_server bare "$PORT_BARE"
PID_BARE=$SERVER_PID
PORT_BARE=$SERVER_PORT
start_server "$LAYERED_MODE" "$PORT_LAYERED"
PID_LAYERED=$SERVER_PID
PORT_LAYERED=$SERVER_PORT

# --- measuring ------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# cpu_ticks PID -> user + system CPU time of the process, in clock ticks
cpu_ticks() {
    # Fields after the parenthesized command name: utime and stime are the 12th and 13th.
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# wrk_run PORT PATH SECONDS PID -> "REQ_PER_S CPU_US_PER_REQUEST"
# The second figure is the server's CPU time (user + system) per request
# over the run: unlike throughput, it does not move when other processes
# take turns on the server's core, so it is the steadier figure on a busy
# machine.
wrk_run() {
    local out t0 t1 r
    out=$(mktemp)
    t0=$(cpu_ticks "$4")
    "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3"s "http://127.0.0.1:$1$2" >"$out"
    t1=$(cpu_ticks "$4")
    r=$(wrk_result "$out" "$2")
    set -- $r "$((t1 - t0))"
    awk -v rps="$1" -v n="$2" -v t="$3" -v hz="$CLK_TCK" \
        'BEGIN {printf "%s %.3f\n", rps, t / hz * 1e6 / n}'
}

# wrk_result FILE PATH -> "REQ_PER_S REQUESTS" of the wrk output in FILE
# (removed after); says so if wrk saw errors, fails if it measured nothing.
wrk_result() {
    local rps requests
    if grep -qE 'Non-2xx|Socket errors' "$1"; then
        echo "load.sh: wrk reported errors on $2: $(grep -E 'Non-2xx|Socket errors' "$1")" >&2
    fi
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$1")
    requests=$(awk '/ requests in / {print $1}' "$1")
    if [ -z "$rps" ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
        echo "load.sh: no throughput from wrk on $2:" >&2
        cat "$1" >&2
        rm -f "$1"
        exit 1
    fi
    rm -f "$1"
    echo "$rps $requests"
}

# wrk_pair PORT_B PATH_B PID_B PORT_L PATH_L PID_L SECONDS
#   -> "B_REQ_PER_S B_CPU_US L_REQ_PER_S L_CPU_US BUSY_PERCENT"
# Both wrk at once; BUSY_PERCENT is the two servers' CPU time over the
# wall time of the round (100 = their shared core never idled).
wrk_pair() {
    local tb0 tl0 tb1 tl1 w0 w1 pb pl outb outl b l
    outb=$(mktemp)
    outl=$(mktemp)
    tb0=$(cpu_ticks "$3")
    tl0=$(cpu_ticks "$6")
    w0=$(date +%s%N)
    "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$7"s "http://127.0.0.1:$1$2" >"$outb" &
    pb=$!
    "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$7"s "http://127.0.0.1:$4$5" >"$outl" &
    pl=$!
    wait "$pb" "$pl"
    w1=$(date +%s%N)
    tb1=$(cpu_ticks "$3")
    tl1=$(cpu_ticks "$6")
    b=$(wrk_result "$outb" "$2")
    l=$(wrk_result "$outl" "$5")
    set -- $b $l
    awk -v rb="$1" -v nb="$2" -v rl="$3" -v nl="$4" -v tb="$((tb1 - tb0))" \
        -v tl="$((tl1 - tl0))" -v hz="$CLK_TCK" -v wall="$((w1 - w0))" \
        'BEGIN {printf "%s %.3f %s %.3f %.1f\n", rb, tb / hz * 1e6 / nb, rl, tl / hz * 1e6 / nl,
            (tb + tl) / hz * 1e9 / wall * 100}'
}

median() { # median < numbers
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

range() { # range < numbers -> "min..max"
    sort -g | sed -n '1p;$p' | paste -sd' ' - | sed 's/ /../'
}

# phase NAME BARE_PATH LAYERED_PATH PAIRING: ROUNDS rounds, prints the table and RESULT line
phase() {
    local name=$1 bare_path=$2 layered_path=$3 pairing=$4
    local b l r ratio cpu_ratio busy=""
    local bare_all=() layered_all=() ratio_all=() cpu_bare_all=() cpu_layered_all=() cpu_ratio_all=()
    echo
    echo "== $name, $pairing: bare $bare_path vs $LAYERED_MODE $layered_path," \
        "$ROUNDS rounds x ${DURATION}s, wrk -t$THREADS -c$CONNECTIONS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    # Warm-up, not counted: connections, caches, the first /status run of the checks.
    wrk_run "$PORT_BARE" "$bare_path" 1 "$PID_BARE" >/dev/null
    wrk_run "$PORT_LAYERED" "$layered_path" 1 "$PID_LAYERED" >/dev/null
    printf '%-6s %12s %12s %7s %10s %10s %7s %s\n' round "bare req/s" "$LAYERED_MODE req/s" ratio \
        "bare CPU" "$LAYERED_MODE CPU" "ratio" "$([ "$pairing" = concurrent ] && echo " busy")"
    printf '%-6s %12s %12s %7s %10s %10s %7s %s\n' "" "" "" "" "us/req" "us/req" "CPU" \
        "$([ "$pairing" = concurrent ] && echo "    %")"
    for r in $(seq 1 "$ROUNDS"); do
        if [ "$pairing" = concurrent ]; then
            b=$(wrk_pair "$PORT_BARE" "$bare_path" "$PID_BARE" \
                "$PORT_LAYERED" "$layered_path" "$PID_LAYERED" "$DURATION")
            set -- $b
            busy=$(printf '%6s' "$5")
        elif [ $((r % 2)) -eq 1 ]; then
            b=$(wrk_run "$PORT_BARE" "$bare_path" "$DURATION" "$PID_BARE")
            l=$(wrk_run "$PORT_LAYERED" "$layered_path" "$DURATION" "$PID_LAYERED")
            set -- $b $l
        else
            l=$(wrk_run "$PORT_LAYERED" "$layered_path" "$DURATION" "$PID_LAYERED")
            b=$(wrk_run "$PORT_BARE" "$bare_path" "$DURATION" "$PID_BARE")
            set -- $b $l
        fi
        ratio=$(awk -v a="$3" -v b="$1" 'BEGIN {printf "%.4f", a / b}')
        # CPU per request, bare over layered: like the throughput ratio when
        # the server is the bottleneck (1.0 = no cost, 0.5 = twice the CPU).
        cpu_ratio=$(awk -v a="$4" -v b="$2" 'BEGIN {printf "%.4f", b / a}')
        bare_all+=("$1")
        layered_all+=("$3")
        ratio_all+=("$ratio")
        cpu_bare_all+=("$2")
        cpu_layered_all+=("$4")
        cpu_ratio_all+=("$cpu_ratio")
        printf '%-6s %12s %12s %7s %10s %10s %7s %s\n' "$r" "$1" "$3" "$ratio" "$2" "$4" "$cpu_ratio" "$busy"
    done
    local mb ml mr mcb mcl mcr
    mb=$(printf '%s\n' "${bare_all[@]}" | median)
    ml=$(printf '%s\n' "${layered_all[@]}" | median)
    mr=$(printf '%s\n' "${ratio_all[@]}" | median)
    mcb=$(printf '%s\n' "${cpu_bare_all[@]}" | median)
    mcl=$(printf '%s\n' "${cpu_layered_all[@]}" | median)
    mcr=$(printf '%s\n' "${cpu_ratio_all[@]}" | median)
    printf '%-6s %12s %12s %7s %10s %10s %7s\n' median "$mb" "$ml" "$mr" "$mcb" "$mcl" "$mcr"
    echo "RESULT $name ($LAYERED_MODE, $pairing): median throughput bare ${mb} req/s, $LAYERED_MODE ${ml} req/s;" \
        "median throughput ratio ${mr} ($(printf '%s\n' "${ratio_all[@]}" | range));" \
        "median CPU-per-request ratio ${mcr} ($(printf '%s\n' "${cpu_ratio_all[@]}" | range); bare ${mcb} us, $LAYERED_MODE ${mcl} us)"
}

echo "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {exit !(l > 0.5)}'; then
    echo "WARNING: the machine is busy (1-minute load average above 0.5): other processes"
    echo "         share the cores the servers and wrk are pinned to; the figures will be noisy."
fi
for pairing in $PAIRINGS; do
    case $pairing in
        sequential | concurrent) ;;
        *) echo "load.sh: unknown pairing $pairing (sequential, concurrent)" >&2; exit 2 ;;
    esac
done
for p in $PHASES; do
    for pairing in $PAIRINGS; do
        case $p in
            pass-through) phase pass-through / / "$pairing" ;;
            status) phase status / /status "$pairing" ;;
            *) echo "load.sh: unknown phase $p" >&2; exit 2 ;;
        esac
    done
done
echo
echo "targets: pass-through ratio >= 0.98; status ratio >= 0.5"
