#!/usr/bin/env bash
# Soak test: the axum example (examples/axum.rs, release build) under wrk
# load on 127.0.0.1 for SOAK_SECONDS, sampling every SAMPLE_SECONDS the
# server's resident memory (VmRSS from /proc/PID/status), the latency of
# GET /status (curl's time_total) and one second of GET /status/watch
# (Server-Sent Events: watchers start and stop all along), into a CSV.
#
#   scripts/soak.sh                      # 600 s (30 s when CI=true)
#   SOAK_SECONDS=60 scripts/soak.sh
#
# wrk (one thread, CONNECTIONS connections) cycles through pass-through
# routes (200 and 404), /status, /status?format=ietf, /status/live,
# /status/ready and an unknown component, so the recorder, the report and
# the probes all run the whole time.
#
# Fails (exit 1) when:
#   - RSS grows from the baseline (the first sample after WARMUP_SECONDS) by
#     more than RSS_MAX_GROWTH_PCT percent (20) or more than
#     RSS_MAX_GROWTH_MIB MiB (10), whichever is smaller;
#   - any sampled GET /status is not answered 200;
#   - GET /status takes longer than MAX_LATENCY_SECONDS (2) once;
#   - the server dies, or wrk reports socket errors other than timeouts.
#
# Settings (environment): SOAK_SECONDS (600; 30 with CI=true),
# SAMPLE_SECONDS (5), WARMUP_SECONDS (30, at most a third of SOAK_SECONDS),
# PORT (38090), CONNECTIONS (16), RSS_MAX_GROWTH_PCT (20),
# RSS_MAX_GROWTH_MIB (10), MAX_LATENCY_SECONDS (2), SOAK_CSV (default
# target/soak/soak-<date>.csv). Only 127.0.0.1 is used; the server and wrk
# are killed on exit, whatever the exit.
# Prints `RESULT soak ...` with the figures.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ]; then
    SOAK_SECONDS=${SOAK_SECONDS:-30}
else
    SOAK_SECONDS=${SOAK_SECONDS:-600}
fi
SAMPLE_SECONDS=${SAMPLE_SECONDS:-5}
WARMUP_SECONDS=${WARMUP_SECONDS:-30}
if [ "$WARMUP_SECONDS" -gt $(( SOAK_SECONDS / 3 )) ]; then
    WARMUP_SECONDS=$(( SOAK_SECONDS / 3 ))
fi
PORT=${PORT:-38090}
CONNECTIONS=${CONNECTIONS:-16}
RSS_MAX_GROWTH_PCT=${RSS_MAX_GROWTH_PCT:-20}
RSS_MAX_GROWTH_MIB=${RSS_MAX_GROWTH_MIB:-10}
MAX_LATENCY_SECONDS=${MAX_LATENCY_SECONDS:-2}
mkdir -p target/soak
SOAK_CSV=${SOAK_CSV:-target/soak/soak-$(date +%Y%m%d-%H%M%S).csv}
BASE="http://127.0.0.1:$PORT"

for tool in wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "soak.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

# --- the server -----------------------------------------------------------

echo "soak.sh: building examples/axum.rs (release)"
cargo build --release --example axum
BIN=target/release/examples/axum
[ -x "$BIN" ] || { echo "soak.sh: $BIN was not built" >&2; exit 1; }

SERVER_PID=
WRK_PID=
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tower-status-soak.XXXXXX")
cleanup() {
    local pid
    for pid in "$WRK_PID" "$SERVER_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            # Bounded wait, then KILL.
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s -o /dev/null -m 1 "$BASE/" 2>/dev/null; then
    echo "soak.sh: something already answers on 127.0.0.1:$PORT; set PORT" >&2
    exit 1
fi

STATUS_ADDR="127.0.0.1:$PORT" "$BIN" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null -m 1 "$BASE/status/live" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak.sh: the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -s -o /dev/null -m 1 "$BASE/status/live" || { echo "soak.sh: the server did not start in 10 s" >&2; exit 1; }
echo "soak.sh: server pid $SERVER_PID on $BASE"

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0
}

# --- load -----------------------------------------------------------------

cat >"$WORK/mix.lua" <<'EOF'
local paths = {
  "/", "/users/1", "/users/42", "/", "/status", "/users/7",
  "/status?format=ietf", "/status/live", "/status/ready", "/missing",
  "/status/no-such-component", "/users/not-a-number",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
EOF

echo "soak.sh: wrk -t1 -c$CONNECTIONS -d${SOAK_SECONDS}s on $BASE (mixed paths), sampling every ${SAMPLE_SECONDS}s into $SOAK_CSV"
wrk -t1 -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" --timeout 5s -s "$WORK/mix.lua" "$BASE/" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!

echo "elapsed_s,rss_kib,status_seconds,status_code,watch_events" >"$SOAK_CSV"
start=$(date +%s)
max_samples=$(( SOAK_SECONDS / SAMPLE_SECONDS + 2 ))
samples=0
while [ "$samples" -lt "$max_samples" ] && kill -0 "$WRK_PID" 2>/dev/null; do
    sleep "$SAMPLE_SECONDS"
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak.sh: FAILED: the server died" >&2; cat "$WORK/server.log" >&2; exit 1; }
    elapsed=$(( $(date +%s) - start ))
    rss=$(rss_kib)
    latency_code=$(curl -s -o /dev/null -m 10 -w '%{time_total},%{http_code}' "$BASE/status" || echo "10,000")
    # One second of the event stream: at least the first event.
    events=$(curl -s -N -m 1 "$BASE/status/watch" 2>/dev/null | grep -c '^event: status' || true)
    echo "$elapsed,$rss,$latency_code,$events" >>"$SOAK_CSV"
    samples=$(( samples + 1 ))
done
wait "$WRK_PID" || true
WRK_PID=
kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak.sh: FAILED: the server died" >&2; exit 1; }

echo "--- wrk"
cat "$WORK/wrk.out"
echo "--- samples ($SOAK_CSV)"
column -s, -t <"$SOAK_CSV" 2>/dev/null || cat "$SOAK_CSV"

# --- verdict --------------------------------------------------------------

read -r n min_rss max_rss base_rss last_rss max_lat mean_lat bad_codes no_events < <(
    awk -F, -v warm="$WARMUP_SECONDS" '
        NR == 1 { next }
        {
            n++
            if (min == "" || $2 < min) min = $2
            if ($2 > max) max = $2
            if (base == "" && $1 >= warm) base = $2
            last = $2
            if ($3 > maxlat) maxlat = $3
            sumlat += $3
            if ($4 != 200) bad++
            if ($5 < 1) noev++
        }
        END {
            if (base == "") base = last
            printf "%d %d %d %d %d %.6f %.6f %d %d\n", n, min, max, base, last, maxlat, (n ? sumlat / n : 0), bad, noev
        }' "$SOAK_CSV")

fail=0
if [ "$n" -lt 2 ]; then
    echo "soak.sh: FAILED: only $n samples" >&2
    fail=1
fi
# Samples from the baseline on only: the warm-up may grow freely.
max_after=$(awk -F, -v warm="$WARMUP_SECONDS" 'NR > 1 && $1 >= warm && $2 > m { m = $2 } END { print m + 0 }' "$SOAK_CSV")
growth_kib=$(( max_after - base_rss ))
limit_pct_kib=$(( base_rss * RSS_MAX_GROWTH_PCT / 100 ))
limit_mib_kib=$(( RSS_MAX_GROWTH_MIB * 1024 ))
limit_kib=$(( limit_pct_kib < limit_mib_kib ? limit_pct_kib : limit_mib_kib ))
if [ "$growth_kib" -gt "$limit_kib" ]; then
    echo "soak.sh: FAILED: RSS grew by $growth_kib KiB after warm-up (baseline $base_rss KiB), more than $limit_kib KiB (${RSS_MAX_GROWTH_PCT}% or ${RSS_MAX_GROWTH_MIB} MiB)" >&2
    fail=1
fi
if [ "$bad_codes" -gt 0 ]; then
    echo "soak.sh: FAILED: $bad_codes sampled GET /status were not answered 200" >&2
    fail=1
fi
if awk -v m="$max_lat" -v lim="$MAX_LATENCY_SECONDS" 'BEGIN { exit !(m > lim) }'; then
    echo "soak.sh: FAILED: GET /status took ${max_lat}s, more than ${MAX_LATENCY_SECONDS}s" >&2
    fail=1
fi
if [ "$no_events" -gt 0 ]; then
    echo "soak.sh: FAILED: $no_events samples of /status/watch got no event in 1 s" >&2
    fail=1
fi
socket_errors=$(grep -E 'Socket errors' "$WORK/wrk.out" || true)
if [ -n "$socket_errors" ] && echo "$socket_errors" | grep -Eq '(connect|read|write) [1-9]'; then
    echo "soak.sh: FAILED: wrk: $socket_errors" >&2
    fail=1
fi
requests_per_sec=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.out")

echo "--- result"
echo "samples: $n over ${SOAK_SECONDS}s (warm-up ${WARMUP_SECONDS}s), wrk ${requests_per_sec:-?} requests/s"
echo "RSS KiB: min $min_rss, max $max_rss, baseline $base_rss, last $last_rss, growth after warm-up $growth_kib (limit $limit_kib)"
echo "GET /status seconds under load: max $max_lat, mean $mean_lat"
echo "RESULT soak seconds=$SOAK_SECONDS samples=$n rss_min_kib=$min_rss rss_max_kib=$max_rss rss_baseline_kib=$base_rss rss_growth_kib=$growth_kib status_latency_max_s=$max_lat status_latency_mean_s=$mean_lat rps=${requests_per_sec:-?} csv=$SOAK_CSV"
if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "soak.sh: passed"
