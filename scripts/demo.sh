#!/usr/bin/env bash
# The main job: build pgcache and the example plugin, make sure the demo table `eventos`
# exists, then run the plugin twice over it: a full load into the cache, and, after new
# positions arrive, an incremental refresh that fetches only those.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-python
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PGCACHE_DIR="${PGCACHE_DIR:-target/demo-cache}"

cargo build --release --locked -j2 --bin pgcache
cargo build --release --locked -j2 --target wasm32-wasip2 --manifest-path guest-example/Cargo.toml \
    --target-dir target/guest-example
pgcache=target/release/pgcache
plugin=target/guest-example/wasm32-wasip2/release/eventos-report.wasm

scripts/eventos.sh ensure "${DEMO_ROWS:-200000}"
# Plugins never run as the global login: the demo's plugin logs in as a role that may read
# eventos and nothing more.
export PGCACHE_PLUGIN_ROLE="${PGCACHE_PLUGIN_ROLE:-pgcache_demo}"
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -v role="$PGCACHE_PLUGIN_ROLE" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('GRANT SELECT ON eventos TO %I', :'role') \gexec
SQL
"$pgcache" clear eventos >/dev/null

timed() {
    local start end
    start=$(date +%s%N)
    "$@"
    end=$(date +%s%N)
    awk -v ns="$((end - start))" 'BEGIN { printf "  (whole run, compilation included: %.3f s)\n", ns / 1e9 }'
}

echo "== run 1: the plugin loads eventos into the cache"
timed "$pgcache" run "$plugin"
echo
echo "== 1000 new positions arrive"
scripts/eventos.sh append 1000
echo
echo "== run 2: the plugin refreshes; only the new rows come from the database"
timed "$pgcache" run "$plugin"
