"""Database access for the analysts' notebooks and scripts: a psycopg2 connection pool,
results as pandas DataFrames, cached as Parquet files in ``cache_dir``; incremental queries
fetch only the rows past the last cached value of their ordering column.

This is the reference implementation of the module pgcache replaces (psycopg2 + pandas),
kept for the migration test and the benchmark. Its documented use:

Example::

    from database import init_database, get_db
    init_database(host=HOST, port=PORT, dbname=DBNAME, user=USER, password=PASSWORD,
                  min_conn=1, max_conn=10, cache_dir=".cache")
    db = get_db()

    # Every event; later calls fetch only the events after the last cached timestamp.
    df = db.execute_incremental_query(query="SELECT * FROM eventos ORDER BY timestamp",
                                      order_column="timestamp", use_cache=True)
    total = db.execute_query("SELECT COUNT(*) AS total FROM usuarios", use_cache=True)
    adults = db.execute_query("SELECT nome, idade FROM usuarios WHERE idade >= %s ORDER BY nome",
                              params=(18,))

    # Writes are never cached.
    inserted = db.execute_non_query("INSERT INTO usuarios (nome) VALUES (%s)", params=("João",))
    db.execute_non_query("INSERT INTO eventos (timestamp, tipo) VALUES (%s, %s)",
                         params=(datetime(2030, 1, 1, tzinfo=timezone.utc), "login"))
    df = db.execute_incremental_query(query="SELECT * FROM eventos ORDER BY timestamp",
                                      order_column="timestamp", use_cache=True)

    stats = db.get_cache_stats()  # total_files, total_size_mb, total_records, cache_dir
    db.clear_cache(pattern="usuarios")
    after_clear = db.get_cache_stats()
    db.clear_cache()
    db.close()
"""

from __future__ import annotations

import glob
import hashlib
import os
from typing import Any, Dict, Optional, Sequence

import pandas as pd
import psycopg2
import psycopg2.pool
import pyarrow.parquet as pq


class Database:
    """A psycopg2 pool and a Parquet cache directory."""

    def __init__(self, host, port, dbname, user, password, min_conn, max_conn, cache_dir):
        self.pool = psycopg2.pool.ThreadedConnectionPool(
            min_conn, max_conn, host=host, port=port, dbname=dbname, user=user, password=password
        )
        self.cache_dir = cache_dir
        os.makedirs(cache_dir, exist_ok=True)

    def _cache_path(self, query: str, params: Optional[Sequence[Any]], kind: str) -> str:
        key = hashlib.md5(f"{kind}|{query}|{params!r}".encode()).hexdigest()[:12]
        return os.path.join(self.cache_dir, f"cache_{key}.parquet")

    def _fetch(self, query: str, params: Optional[Sequence[Any]]) -> pd.DataFrame:
        conn = self.pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
                columns = [d[0] for d in cur.description]
            conn.commit()
        finally:
            self.pool.putconn(conn)
        return pd.DataFrame(rows, columns=columns)

    def execute_query(self, query: str, params=None, use_cache: bool = True) -> pd.DataFrame:
        """Runs a SELECT; with use_cache, a result stored earlier is read from Parquet."""
        path = self._cache_path(query, params, "simple")
        if use_cache and os.path.exists(path):
            return pd.read_parquet(path)
        df = self._fetch(query, params)
        if use_cache:
            df.to_parquet(path, index=False)
        return df

    def execute_incremental_query(
        self, query: str, order_column: str, params=None, use_cache: bool = True
    ) -> pd.DataFrame:
        """Runs a SELECT whose rows only grow: the first call stores everything, later calls
        fetch the rows whose order_column is past the last cached value and append them."""
        path = self._cache_path(query, params, "incremental")
        if not (use_cache and os.path.exists(path)):
            df = self._fetch(query, params)
            if use_cache:
                df.to_parquet(path, index=False)
            return df
        cached = pd.read_parquet(path)
        if cached.empty:
            last = None
        else:
            last = cached[order_column].max()
            last = last.to_pydatetime() if hasattr(last, "to_pydatetime") else last
            last = last.item() if hasattr(last, "item") else last
        if last is None:
            new = self._fetch(query, params)
        else:
            delta = (
                f'SELECT * FROM ({query}) AS q WHERE "{order_column}" > %s '
                f'ORDER BY "{order_column}"'
            )
            new = self._fetch(delta, tuple(params or ()) + (last,))
        df = pd.concat([cached, new], ignore_index=True) if len(new) else cached
        df.to_parquet(path, index=False)
        return df

    def execute_non_query(self, query: str, params=None) -> int:
        """Runs an INSERT, UPDATE or DELETE and commits; returns the rows affected."""
        conn = self.pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                count = cur.rowcount
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            self.pool.putconn(conn)
        return count

    def clear_cache(self, pattern: Optional[str] = None) -> int:
        """Removes the cache files (those whose name contains pattern, if given)."""
        removed = 0
        for path in glob.glob(os.path.join(self.cache_dir, "cache_*.parquet")):
            if pattern is None or pattern in os.path.basename(path) or self._query_of(path, pattern):
                os.remove(path)
                removed += 1
        return removed

    def _query_of(self, path: str, pattern: str) -> bool:
        # The original matched on the file name only; the query is not stored in the file.
        return False

    def get_cache_stats(self) -> Dict[str, Any]:
        """total_files, total_size_mb, total_records and cache_dir."""
        files = glob.glob(os.path.join(self.cache_dir, "cache_*.parquet"))
        size = sum(os.path.getsize(f) for f in files)
        records = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        return {
            "total_files": len(files),
            "total_size_mb": round(size / (1024 * 1024), 2),
            "total_records": records,
            "cache_dir": self.cache_dir,
        }

    def close(self) -> None:
        """Closes every pooled connection."""
        self.pool.closeall()


_db: Optional[Database] = None


def init_database(host=None, port=None, dbname=None, user=None, password=None,
                  min_conn=1, max_conn=10, cache_dir=".cache") -> Database:
    """Creates the module's Database."""
    global _db
    _db = Database(host, port, dbname, user, password, min_conn, max_conn, cache_dir)
    return _db


def get_db() -> Database:
    """The Database made by init_database."""
    if _db is None:
        raise RuntimeError("call init_database() first")
    return _db
