#!/usr/bin/env bash
# The project's single test command: installs what the tests need when it is
# missing, then runs formatting, lints, tests and docs, stopping at the first
# failure.
#
#   scripts/test.sh
#
# System tools (nats-server, prometheus, wrk, chromium, Node.js and npm, and
# the PostgreSQL, MariaDB and Redis servers the dependency checks' tests
# start) are installed with apt-get, only those not already on PATH, with sudo only
# when not root; on a system without apt-get the script says what is
# missing and goes on. The browser tests' driver (playwright-core, pinned
# in tests/browser/package-lock.json) is installed with `npm ci`.
set -euo pipefail

cd "$(dirname "$0")/.."

section() {
    printf '\n==== %s ====\n' "$*"
}

# --- system tools ---------------------------------------------------------

# Commands the tests use, as COMMAND:DEBIAN_PACKAGE.
SYSTEM_TOOLS=(nats-server:nats-server prometheus:prometheus wrk:wrk chromium:chromium node:nodejs
    initdb:postgresql mariadbd:mariadb-server redis-server:redis-server)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Is COMMAND there? On PATH, or where Debian puts servers off a user's PATH
# (/usr/sbin, and PostgreSQL's versioned /usr/lib/postgresql/N/bin, where
# the tests look too).
have_command() {
    command -v "$1" >/dev/null 2>&1 && return 0
    [ -x "/usr/sbin/$1" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}

# Installs the packages of those of the COMMAND:PACKAGE pairs given whose
# command is not there.
install_system_tools() {
    local missing=() pair
    for pair in "$@"; do
        have_command "${pair%%:*}" || missing+=("${pair#*:}")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "already installed: ${*%%:*}"
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

# playwright-core, as pinned by tests/browser/package-lock.json, unless
# that version is already there.
install_browser_driver() {
    local dir=tests/browser want have
    want=$(sed -n '/"node_modules\/playwright-core"/,/}/s/.*"version": "\(.*\)".*/\1/p' "$dir/package-lock.json")
    have=
    if [ -f "$dir/node_modules/playwright-core/package.json" ]; then
        have=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$dir/node_modules/playwright-core/package.json" | head -n1)
    fi
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
        echo "already installed: playwright-core $have"
        return 0
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 20 ]; then
        echo "ERROR: playwright-core needs Node.js 20 or later; node is $(node --version)." >&2
        return 1
    fi
    echo "installing with npm ci: playwright-core $want"
    npm ci --prefix "$dir" --no-audit --no-fund
}

section "install: system tools, Rust components, the browser driver"
install_system_tools "${SYSTEM_TOOLS[@]}"
# npm comes with some builds of nodejs (NodeSource's), in its own package
# in Debian's.
install_system_tools npm:npm
install_rust_components
install_schemathesis
install_browser_driver

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
