#!/usr/bin/env bash
# Makes sure PostgreSQL answers at DATABASE_URL (default: the local server as user postgres),
# starting the local cluster when it is down, and that it allows prepared transactions
# (max_prepared_transactions > 0; on the local cluster it is set and the cluster restarted).
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

# Prepared transactions (two-phase commit) must be available: the tests prove that a
# transaction which prepares between two refreshes is waited for. The setting needs a restart,
# which this script does only for the local cluster.
prepared="$(psql -X -A -t -q -d "$DATABASE_URL" -c 'SHOW max_prepared_transactions' 2>/dev/null || echo unknown)"
if [ "$prepared" = 0 ]; then
    # The local cluster is the one whose data directory the server reports.
    cluster=""
    if command -v pg_lsclusters >/dev/null 2>&1; then
        datadir="$(psql -X -A -t -q -d "$DATABASE_URL" -c 'SHOW data_directory' 2>/dev/null || true)"
        cluster="$(pg_lsclusters -h 2>/dev/null | awk -v d="$datadir" 'd != "" && $6 == d { print $1 " " $2; exit }')"
    fi
    if [ -n "$cluster" ]; then
        read -r version name <<<"$cluster"
        echo "max_prepared_transactions is 0; setting it to 16 and restarting cluster $version/$name" >&2
        psql -X -q -d "$DATABASE_URL" -c 'ALTER SYSTEM SET max_prepared_transactions = 16'
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" restart
        for _ in $(seq 1 60); do
            ready && break
            sleep 0.5
        done
        if ! ready; then
            echo "PostgreSQL did not come back at $DATABASE_URL after the restart" >&2
            exit 1
        fi
    else
        echo "warning: max_prepared_transactions is 0 at $DATABASE_URL, which is not the local cluster;" \
             "the prepared-transaction tests will fail (set it above 0 and restart that server)" >&2
    fi
fi
