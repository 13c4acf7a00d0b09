#!/usr/bin/env bash
# The test suite, from a fresh clone: set-up, then every test against the real database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo test --workspace --locked -j2 "$@"
