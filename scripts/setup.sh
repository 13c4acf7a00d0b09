#!/usr/bin/env bash
# Prepares a fresh machine for building, testing and running pgcache. Idempotent.
#  - the wasm32-wasip2 Rust target (plugins are built for it);
#  - Python readers for the interop test, in target/pyenv, and what building and testing the
#    Python package needs (python/requirements-dev.txt);
#  - a reachable PostgreSQL (DATABASE_URL, default the local server as user postgres),
#    starting the local cluster if it is down.
# With --no-python the Python readers (needed only by the tests) are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python=yes
[ "${1:-}" = --no-python ] && python=no

if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
fi

if [ "$python" = yes ] && [ ! -x target/pyenv/bin/python ]; then
    mkdir -p target
    python3 -m venv target/pyenv
fi
if [ "$python" = yes ] && ! target/pyenv/bin/python -c "import pyarrow, polars, duckdb" 2>/dev/null; then
    target/pyenv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
if [ "$python" = yes ] && ! target/pyenv/bin/python -c "import maturin, pytest, pandas, tqdm, psycopg2" 2>/dev/null; then
    target/pyenv/bin/pip install --quiet --disable-pip-version-check -r python/requirements-dev.txt
fi

scripts/ensure-postgres.sh
