"""The original module (psycopg2 + pandas) against pgcache's Python package, side by side:
`execute_incremental_query` over `pgcache_bench.eventos`, a full load of N rows and a refresh
after 10 000 new rows, each timed in its own process with its peak memory (RSS).

    target/pyenv/bin/python python/bench/compare.py --rows 1000000 [--out FILE]

Builds the table with scripts/eventos.sh (schema pgcache_bench) and puts it back to N rows
after each contender, so both see the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QUERY = "SELECT * FROM pgcache_bench.eventos ORDER BY id"
NEW_ROWS = 10_000
URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def child(tool: str, cache_dir: str) -> None:
    """One call in this process; prints seconds, rows and peak RSS as JSON."""
    import urllib.parse

    parts = urllib.parse.urlsplit(URL)
    args = dict(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
        user=urllib.parse.unquote(parts.username or "postgres"),
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        min_conn=1,
        max_conn=10,
        cache_dir=cache_dir,
    )
    if tool == "original":
        sys.path.insert(0, os.path.join(ROOT, "python", "tests", "original"))
        from database import get_db, init_database
    else:
        from pgcache import get_db, init_database
    init_database(**args)
    db = get_db()
    started = time.perf_counter()
    if tool == "pgcache-arrow":
        df = db.incremental_query(QUERY, "id").to_arrow()
    else:
        df = db.execute_incremental_query(query=QUERY, order_column="id", use_cache=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": len(df), "peak_mb": peak_mb}))
    db.close()


def measure(tool: str, cache_dir: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", tool, "--cache", cache_dir],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql(sql: str) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", URL, "-c", sql], check=True)


def eventos(*args: str) -> None:
    env = dict(os.environ, PGOPTIONS=os.environ.get("PGOPTIONS", "") + " -c search_path=pgcache_bench")
    subprocess.run([os.path.join(ROOT, "scripts", "eventos.sh"), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "pgcache-python-bench.md"))
    parser.add_argument("--child")
    parser.add_argument("--cache")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cache)
        return

    psql("CREATE SCHEMA IF NOT EXISTS pgcache_bench")
    eventos("load", str(args.rows))
    results = {}
    for tool in ("original", "pgcache", "pgcache-arrow"):
        with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as cache:
            full = measure(tool, cache)
            eventos("append", str(NEW_ROWS))
            refresh = measure(tool, cache)
        assert full["rows"] == args.rows and refresh["rows"] == args.rows + NEW_ROWS, (full, refresh)
        results[tool] = (full, refresh)
        psql(f"DELETE FROM pgcache_bench.eventos WHERE id > {args.rows}")
        psql(f"SELECT setval('pgcache_bench.eventos_id_seq', {args.rows})")

    (of, orf), (pf, prf) = results["original"], results["pgcache"]
    (af, arf) = results["pgcache-arrow"]
    lines = [
        f"execute_incremental_query over {args.rows} rows of eventos (11 columns), to a pandas DataFrame:",
        "",
        "| what | original (psycopg2 + pandas) | pgcache | pgcache faster / smaller |",
        "| --- | --- | --- | --- |",
        f"| full load, time | {of['seconds']:.2f} s | {pf['seconds']:.2f} s | {of['seconds'] / pf['seconds']:.1f}x |",
        f"| full load, peak RSS of the process | {of['peak_mb']:.0f} MB | {pf['peak_mb']:.0f} MB | {of['peak_mb'] / pf['peak_mb']:.1f}x |",
        f"| refresh after {NEW_ROWS} new rows, time | {orf['seconds']:.2f} s | {prf['seconds']:.3f} s | {orf['seconds'] / prf['seconds']:.1f}x |",
        f"| refresh, peak RSS of the process | {orf['peak_mb']:.0f} MB | {prf['peak_mb']:.0f} MB | {orf['peak_mb'] / prf['peak_mb']:.1f}x |",
        "",
        "The same with `pgcache.Db.incremental_query(...).to_arrow()` (a pyarrow Table, no pandas):",
        "",
        "| what | original (psycopg2 + pandas) | pgcache, pyarrow Table | pgcache faster / smaller |",
        "| --- | --- | --- | --- |",
        f"| full load, time | {of['seconds']:.2f} s | {af['seconds']:.2f} s | {of['seconds'] / af['seconds']:.1f}x |",
        f"| full load, peak RSS of the process | {of['peak_mb']:.0f} MB | {af['peak_mb']:.0f} MB | {of['peak_mb'] / af['peak_mb']:.1f}x |",
        f"| refresh after {NEW_ROWS} new rows, time | {orf['seconds']:.2f} s | {arf['seconds']:.3f} s | {orf['seconds'] / arf['seconds']:.1f}x |",
        f"| refresh, peak RSS of the process | {orf['peak_mb']:.0f} MB | {arf['peak_mb']:.0f} MB | {orf['peak_mb'] / arf['peak_mb']:.1f}x |",
    ]
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
