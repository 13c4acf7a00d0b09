#!/usr/bin/env bash
# The main job: build pgcache, make sure the demo table `eventos` exists, and load it into the
# cache incrementally twice, showing the full load and then the refresh after new rows.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-python
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PGCACHE_DIR="${PGCACHE_DIR:-target/demo-cache}"
cargo build --release --locked -j2 --bin pgcache
pgcache=target/release/pgcache

scripts/eventos.sh ensure "${DEMO_ROWS:-200000}"
query='SELECT * FROM eventos'

echo "== run 1: $query, incremental on id"
PGCACHE_LOG=info "$pgcache" query "$query" --incremental id --format csv -o /dev/null
echo "== 1000 new positions arrive"
scripts/eventos.sh append 1000
echo "== run 2: only the new rows are fetched"
PGCACHE_LOG=info "$pgcache" query "$query" --incremental id --format csv -o /dev/null
"$pgcache" stats
