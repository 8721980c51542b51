#!/usr/bin/env bash
# Checks the served OpenAPI document against the real endpoint: runs the
# OpenAPI tests alone (tests/openapi.rs), including schemathesis against a
# live axum server, with their output shown.
#
#   scripts/schemathesis.sh [extra cargo test arguments]
#
# Needs the schemathesis CLI (`st`, `schemathesis` or
# `python3 -m schemathesis.cli`; scripts/test.sh installs it); set
# SCHEMATHESIS to another command to use that one.
set -euo pipefail

cd "$(dirname "$0")/.."

exec cargo test --all-features --test openapi "$@" -- --nocapture
