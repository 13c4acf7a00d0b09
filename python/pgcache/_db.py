"""The :class:`Db` handle, and the original module's ``init_database`` / ``get_db``."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from ._pgcache import Engine
from ._progress import Bar, ProgressArg
from ._result import Result
from .errors import InterfaceError

if TYPE_CHECKING:
    import pandas

Params = Optional[Sequence[Any]]
PathLike = Union[str, "os.PathLike[str]"]


class Db:
    """A connection pool and a cache directory, shared with the ``pgcache`` command line and
    plugins that use the same directory.

    Settings rise in priority: defaults < ``config`` (or ``./pgcache.toml``) < the environment
    (``DATABASE_URL``, ``PGHOST`` ``PGPORT`` ``PGUSER`` ``PGPASSWORD`` ``PGDATABASE``,
    ``PGCACHE_DIR``) < ``url`` < the keyword arguments.

    Safe to share between threads: every call releases the GIL while it waits for the database
    or the disk, and concurrent calls share the pool and the cache (one fetch per entry).

    Statements take ``$1, $2 ...`` placeholders or, as psycopg2, ``%s`` (with ``%%`` for a
    literal ``%``), and a tuple or list of values.

    Example::

        with pgcache.Db("postgres://analyst@db/tracking", cache_dir=".cache") as db:
            df = db.incremental_query("SELECT * FROM eventos", "id").to_pandas()
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        host: Optional[str] = None,
        port: Optional[int] = None,
        dbname: Optional[str] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        min_conn: Optional[int] = None,
        max_conn: Optional[int] = None,
        cache_dir: Optional[PathLike] = None,
        config: Optional[PathLike] = None,
        statement_timeout: Optional[float] = None,
        connect: bool = True,
    ) -> None:
        self._engine = Engine(
            url,
            host=host,
            port=None if port is None else int(port),
            dbname=dbname,
            user=user,
            password=password,
            min_conn=min_conn,
            max_conn=max_conn,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            config=None if config is None else os.fspath(config),
            statement_timeout=statement_timeout,
            connect=connect,
        )

    # The Python-style API.

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        use_cache: bool = True,
        max_age: Optional[float] = None,
        progress: ProgressArg = False,
    ) -> Result:
        """Runs ``sql`` through the cache: a stored result is returned without the database
        (when the parameters are typed, not ``str``); a missing one is fetched and stored.

        Args:
            sql: One SELECT (VALUES, TABLE, set operations).
            params: Values for ``$n`` or ``%s``.
            use_cache: False asks the database and leaves the cache alone.
            max_age: Seconds after which a stored result counts as missing.
            progress: True shows a progress bar for loads longer than half a second; a
                callable gets ``(rows, bytes)`` instead.
        """
        with Bar(progress, "pgcache query") as bar:
            native = self._engine.query(
                sql, params, use_cache=use_cache, max_age=max_age, progress=bar.callback
            )
        return Result(native)

    def incremental_query(
        self,
        sql: str,
        order_column: str,
        params: Params = None,
        *,
        use_cache: bool = True,
        lookback: Union[timedelta, int, None] = None,
        xmin: bool = False,
        progress: ProgressArg = False,
    ) -> Result:
        """Runs ``sql`` as an incremental query: the first call fetches everything, later
        calls only the rows past the stored watermark of ``order_column``, never losing or
        doubling a row (ties, late commits). Rows come ascending in ``order_column``.

        Args:
            sql: One SELECT whose result only grows.
            order_column: A column of the result (integer, numeric, date, timestamp, text).
            params: Values for ``$n`` or ``%s``.
            use_cache: False fetches everything, ordered, and stores nothing.
            lookback: Re-read this window below the maximum on each refresh: a ``timedelta``
                for time columns, an ``int`` for numbers.
            xmin: xmin mode (``SELECT xmin, * FROM t`` ordered by the key): also picks up
                updates.
            progress: As for :meth:`query`.
        """
        with Bar(progress, "pgcache incremental") as bar:
            native = self._engine.incremental_query(
                sql,
                order_column,
                params,
                use_cache=use_cache,
                lookback=lookback,
                xmin=xmin,
                progress=bar.callback,
            )
        return Result(native)

    def execute(self, sql: str, params: Params = None) -> int:
        """Runs one INSERT, UPDATE, DELETE or MERGE in its own transaction; returns the rows it
        affected. Never cached."""
        return self._engine.execute(sql, params)

    def clear_cache(self, pattern: Optional[str] = None) -> int:
        """Removes the cache entries whose name or query contains ``pattern`` (all when
        ``None``); returns how many. Only entries pgcache created are touched."""
        return self._engine.clear_cache(pattern)

    def cache_stats(self) -> Dict[str, Any]:
        """``total_files``, ``total_size_mb``, ``total_records``, ``cache_dir`` and
        ``entries`` (one dict per entry: name, query, mode, order_column, rows, bytes, parts,
        watermark, safe, created, refreshed, hits)."""
        return json.loads(self._engine.cache_stats_json())

    def close(self) -> None:
        """Closes the pool. Calls after this raise :class:`~pgcache.errors.InterfaceError`."""
        self._engine.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._engine.closed

    @property
    def cache_dir(self) -> str:
        """The cache directory."""
        return os.fspath(self._engine.cache_dir)

    def __enter__(self) -> "Db":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<pgcache.Db cache_dir={self.cache_dir!r} {state}>"

    # The original module's API, with its names, arguments and defaults.

    def execute_query(
        self, query: str, params: Params = None, use_cache: bool = True, progress: ProgressArg = False
    ) -> "pandas.DataFrame":
        """The original ``execute_query``: :meth:`query` as a pandas DataFrame."""
        return self.query(query, params, use_cache=use_cache, progress=progress).to_pandas()

    def execute_incremental_query(
        self,
        query: str,
        order_column: str,
        params: Params = None,
        use_cache: bool = True,
        progress: ProgressArg = False,
    ) -> "pandas.DataFrame":
        """The original ``execute_incremental_query``: :meth:`incremental_query` as a pandas
        DataFrame."""
        result = self.incremental_query(
            query, order_column, params, use_cache=use_cache, progress=progress
        )
        return result.to_pandas()

    def execute_non_query(self, query: str, params: Params = None) -> int:
        """The original ``execute_non_query``: :meth:`execute`."""
        return self.execute(query, params)

    def get_cache_stats(self) -> Dict[str, Any]:
        """The original ``get_cache_stats``: :meth:`cache_stats`."""
        return self.cache_stats()


_default: Optional[Db] = None
_default_lock = threading.Lock()


def init_database(
    host: Optional[str] = None,
    port: Optional[int] = None,
    dbname: Optional[str] = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    min_conn: int = 1,
    max_conn: int = 10,
    cache_dir: PathLike = ".cache",
) -> Db:
    """The original ``init_database``: makes the process's :class:`Db` (closing the previous
    one) and returns it. Unset connection fields come from ``DATABASE_URL`` and the ``PG*``
    variables, as libpq's do."""
    global _default
    db = Db(
        host=host,
        port=port,
        dbname=dbname,
        user=user,
        password=password,
        min_conn=min_conn,
        max_conn=max_conn,
        cache_dir=cache_dir,
    )
    with _default_lock:
        previous, _default = _default, db
    if previous is not None:
        previous.close()
    return db


def get_db() -> Db:
    """The original ``get_db``: the :class:`Db` made by :func:`init_database`."""
    with _default_lock:
        db = _default
    if db is None:
        raise InterfaceError("the database is not initialised: call init_database() first")
    return db
