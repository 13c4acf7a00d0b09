#!/usr/bin/env bash
# The test suite, from a fresh clone: set-up, then every test against the real database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# The tests start the pgcache binary (CLI, run, serve): cargo builds a package's binaries for
# its own integration tests only, and the host package has none, so build it first.
cargo build --workspace --locked -j2 --bins
# --no-fail-fast: one failing test binary never hides the others.
cargo test --workspace --locked -j2 --no-fail-fast "$@"
# The Python package: built from source into target/pyenv (again only when its sources or the
# engine's changed), then its tests against the same server.
scripts/python.sh install
target/pyenv/bin/python -m pytest -q python/tests
