#!/usr/bin/env bash
# Makes sure PostgreSQL answers at DATABASE_URL (default: the local server as user postgres),
# starting the local cluster when it is down.
set -euo pipefail
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

ready() { pg_isready -q -d "$DATABASE_URL" 2>/dev/null; }

if ! ready; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        version="$(ls /etc/postgresql | sort -V | tail -n 1)"
        echo "PostgreSQL is not answering; starting cluster $version/main" >&2
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    for _ in $(seq 1 60); do
        ready && break
        sleep 0.5
    done
fi
if ! ready; then
    echo "PostgreSQL is not reachable at $DATABASE_URL" >&2
    exit 1
fi
