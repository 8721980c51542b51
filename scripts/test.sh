#!/usr/bin/env bash
# The project's single test command: installs what the tests need when it is
# missing, then runs formatting, lints, tests and docs, stopping at the first
# failure.
#
#   scripts/test.sh
#
# System tools (nats-server, prometheus, wrk) are installed with apt-get,
# only those not already on PATH, with sudo only when not root; on a system
# without apt-get the script says what is missing and goes on.
set -euo pipefail

cd "$(dirname "$0")/.."

section() {
    printf '\n==== %s ====\n' "$*"
}

# --- system tools ---------------------------------------------------------

# Commands the tests use; each comes from the Debian package of the same name.
SYSTEM_TOOLS=(nats-server prometheus wrk)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

install_system_tools() {
    local missing=() cmd
    for cmd in "${SYSTEM_TOOLS[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "already installed: ${SYSTEM_TOOLS[*]}"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "WARNING: ${missing[*]} not found, and this system has no apt-get." >&2
        echo "         Install them with your package manager; tests that need them will fail." >&2
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "ERROR: ${missing[*]} not found; not root and no sudo to install them." >&2
        return 1
    fi
    echo "installing with apt-get: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# rustfmt and clippy; only rustup can add them.
install_rust_components() {
    local component
    for component in rustfmt clippy; do
        local sub=${component#rust}  # rustfmt -> fmt, clippy -> clippy
        cargo "$sub" --version >/dev/null 2>&1 && continue
        if command -v rustup >/dev/null 2>&1; then
            rustup component add "$component"
        else
            echo "ERROR: cargo $sub is missing and rustup is not available to add $component." >&2
            return 1
        fi
    done
}

# Python tools, once a step needs one (none does yet). For example:
#
# install_python_tool() {  # PEP 668 systems (Debian 12) refuse a plain --user install
#     command -v "$1" >/dev/null 2>&1 && return 0
#     python3 -m pip install --user "$1" ||
#         python3 -m pip install --user --break-system-packages "$1"
#     export PATH="$HOME/.local/bin:$PATH"
# }
# install_python_tool schemathesis

# schemathesis, for the OpenAPI conformance test (tests/openapi.rs), which
# fails without it. Version 4 has no `python3 -m schemathesis`: its module
# entry point is `schemathesis.cli`.
schemathesis_installed() {
    st --version >/dev/null 2>&1 ||
        schemathesis --version >/dev/null 2>&1 ||
        python3 -m schemathesis.cli --version >/dev/null 2>&1
}

install_schemathesis() {
    if schemathesis_installed; then
        echo "already installed: schemathesis"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "ERROR: schemathesis is missing and there is no python3 to install it with." >&2
        return 1
    fi
    echo "installing with pip: schemathesis"
    # PEP 668 systems (Debian 12) refuse a plain install outside a venv.
    python3 -m pip install --quiet schemathesis ||
        python3 -m pip install --quiet --user --break-system-packages schemathesis
    export PATH="$HOME/.local/bin:$PATH"
    schemathesis_installed
}

section "install: system tools and Rust components"
install_system_tools
install_rust_components
install_schemathesis

# --- checks ---------------------------------------------------------------

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

section "cargo test (the default feature set)"
cargo test

section "cargo test --all-features"
cargo test --all-features

# In CI, or when FUZZ_SECONDS is set: a short libFuzzer run of the request
# fuzzer (cargo-fuzz on stable via RUSTC_BOOTSTRAP=1; see RELIABILITY.md).
if [ "${CI:-}" = "true" ] || [ -n "${FUZZ_SECONDS:-}" ]; then
    section "scripts/fuzz.sh (FUZZ_SECONDS=${FUZZ_SECONDS:-20})"
    FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
fi

section "cargo doc --no-deps --all-features (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

section "all checks passed"
