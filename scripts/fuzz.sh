#!/usr/bin/env bash
# Fuzzes the status endpoint with cargo-fuzz (libFuzzer): fuzz/fuzz_targets/
# request.rs builds an http::Request from arbitrary bytes (method, path and
# query, version, X-Api-Key / Authorization / Accept and other headers) and
# sends it through StatusLayer with tower's oneshot, asserting no panic, an
# answer within 5 s, the documented path matching, well-formed answers
# (status codes, Cache-Control, 405 + Allow, empty HEAD bodies, JSON that
# parses, Prometheus lines, a first SSE event) and no API key echoed.
#
#   scripts/fuzz.sh                     # 60 s (20 s when CI=true)
#   FUZZ_SECONDS=600 scripts/fuzz.sh    # longer
#
# Settings (environment):
#   FUZZ_SECONDS    how long libFuzzer runs (default 60; 20 when CI=true)
#   FUZZ_SANITIZER  address | none (default address; none when CI=true: the
#                   crate forbids unsafe code, the build is ~30 % shorter
#                   and the run ~5x faster)
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes) to
# rustc; RUSTC_BOOTSTRAP=1 makes the machine's stable toolchain accept them,
# so no nightly toolchain is needed. cargo-fuzz itself is installed with
# `cargo install --locked cargo-fuzz` when missing.
#
# The corpus grows in fuzz/corpus/request (kept between runs, not
# committed); a crash is written to fuzz/artifacts/request/ and reproduced
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run request fuzz/artifacts/request/<file>`.
# Prints `RESULT fuzz executions=N seconds=S` on success.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ]; then
    FUZZ_SECONDS=${FUZZ_SECONDS:-20}
    FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
else
    FUZZ_SECONDS=${FUZZ_SECONDS:-60}
    FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
fi
TARGET=request

case "$FUZZ_SECONDS" in
    '' | *[!0-9]*) echo "fuzz.sh: FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    cargo install --locked cargo-fuzz
fi
echo "fuzz.sh: $(cargo fuzz --version), $(rustc --version)"

# Nightly-only flags on the stable toolchain.
export RUSTC_BOOTSTRAP=1

start=$(date +%s)
echo "fuzz.sh: building fuzz target '$TARGET' (sanitizer: $FUZZ_SANITIZER)"
cargo fuzz build "$TARGET" --sanitizer "$FUZZ_SANITIZER"
echo "fuzz.sh: built in $(( $(date +%s) - start )) s"

LOG=$(mktemp "${TMPDIR:-/tmp}/tower-status-fuzz.XXXXXX")
trap 'rm -f "$LOG"' EXIT

echo "fuzz.sh: running '$TARGET' for $FUZZ_SECONDS s"
set +e
# -timeout: an input running longer than 10 s is reported as a hang;
# `timeout` bounds the whole run in case libFuzzer itself does not stop.
timeout --kill-after=10 $(( FUZZ_SECONDS + 120 )) \
    cargo fuzz run "$TARGET" --sanitizer "$FUZZ_SANITIZER" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 >"$LOG" 2>&1
rc=$?
set -e

# The last status line (`#N DONE ...`, or the last pulse before a crash).
grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$LOG" | tail -n 1 || true
executions=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$LOG" | tail -n 1)
if [ -z "$executions" ]; then
    executions=$(grep -E '^#[0-9]+' "$LOG" | tail -n 1 | sed -E 's/^#([0-9]+).*/\1/')
fi
grep -E '^stat::' "$LOG" || true

if [ "$rc" -ne 0 ]; then
    echo "fuzz.sh: FAILED (exit $rc) after ${executions:-?} executions; the end of libFuzzer's output:" >&2
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$LOG" | tail -n 80 >&2
    ls fuzz/artifacts/"$TARGET"/ 2>/dev/null | sed 's|^|fuzz.sh: artifact fuzz/artifacts/'"$TARGET"'/|' >&2 || true
    exit "$rc"
fi
if [ -z "$executions" ] || [ "$executions" -eq 0 ]; then
    echo "fuzz.sh: FAILED: libFuzzer ran no input" >&2
    tail -n 40 "$LOG" >&2
    exit 1
fi
echo "fuzz.sh: $executions executions in $FUZZ_SECONDS s, no failure (sanitizer: $FUZZ_SANITIZER)"
echo "RESULT fuzz executions=$executions seconds=$FUZZ_SECONDS sanitizer=$FUZZ_SANITIZER"
