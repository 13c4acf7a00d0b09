#!/usr/bin/env bash
# The benchmark: DESIGN.md section 6, every row measured in one run (see
# tests/src/bin/pgcache-bench.rs). Flags pass through, e.g. --rows 5000000 --runs 3.
# Builds `eventos` in the schema pgcache_bench; writes the table to target/pgcache-bench.md too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# ConnectorX, for the comparison row (not needed by the tests).
target/pyenv/bin/python -c "import connectorx" 2>/dev/null ||
    target/pyenv/bin/pip install --quiet --disable-pip-version-check connectorx==0.4.6
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# The pgcache binary too: the bench starts `pgcache run` and `pgcache serve` processes.
cargo build --release --locked -j2 --bin pgcache
cargo run --release --locked -j2 -p pgcache-tests --bin pgcache-bench -- "$@"
# The Python package against the original module (psycopg2 + pandas), side by side.
scripts/python.sh install
target/pyenv/bin/python python/bench/compare.py
