#!/usr/bin/env bash
# The tracking table `eventos` of the benchmark and the demo (same schema and distribution as
# the project's generator).
#   scripts/eventos.sh ensure N   create and fill with N rows if the table is missing
#   scripts/eventos.sh load N     drop, recreate and fill with N rows (ids 1..N)
#   scripts/eventos.sh append N   append N newer rows
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
pq() { psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fill() { pq -v start="$1" -v n="$2" -f "$HERE/eventos/gen_rows.sql" >/dev/null; pq -c "VACUUM (ANALYZE) eventos"; }
case "${1:-}" in
    ensure)
        if [ "$(pq -At -c "SELECT to_regclass('eventos') IS NOT NULL")" != t ]; then
            pq -f "$HERE/eventos/schema.sql"
            fill 1 "${2:?rows}"
        fi ;;
    load)
        pq -f "$HERE/eventos/schema.sql"
        fill 1 "${2:?rows}" ;;
    append)
        start="$(pq -At -c "SELECT coalesce(max(id), 0) + 1 FROM eventos")"
        fill "$start" "${2:?rows}" ;;
    *) echo "usage: $0 ensure|load|append N" >&2; exit 2 ;;
esac
pq -At -c "SELECT count(*) || ' rows in eventos, max id ' || coalesce(max(id), 0) FROM eventos"
