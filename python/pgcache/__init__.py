"""pgcache: PostgreSQL query results cached as Parquet and refreshed incrementally, as
pandas DataFrames, pyarrow Tables and polars DataFrames.

The original module's calls work unchanged::

    from pgcache import init_database, get_db
    init_database(host="db", dbname="tracking", user="analyst", password="...", cache_dir=".cache")
    db = get_db()
    df = db.execute_incremental_query(query="SELECT * FROM eventos ORDER BY timestamp",
                                      order_column="timestamp", use_cache=True)

and :class:`Db` offers the same in Python style, returning :class:`Result` objects.
"""

from ._db import Db, get_db, init_database
from ._pgcache import ENGINE_VERSION, numbered_placeholders
from ._result import Result
from .errors import (
    CacheError,
    ConfigError,
    DatabaseError,
    DataError,
    Denied,
    Error,
    IncrementalError,
    IntegrityError,
    InterfaceError,
    InternalError,
    LimitExceeded,
    NotSupportedError,
    OperationalError,
    ParameterError,
    ProgrammingError,
    StatementTimeout,
)

__version__ = ENGINE_VERSION

__all__ = [
    "Db",
    "Result",
    "init_database",
    "get_db",
    "numbered_placeholders",
    "Error",
    "InterfaceError",
    "ConfigError",
    "DatabaseError",
    "OperationalError",
    "StatementTimeout",
    "ProgrammingError",
    "ParameterError",
    "IncrementalError",
    "DataError",
    "IntegrityError",
    "InternalError",
    "NotSupportedError",
    "CacheError",
    "LimitExceeded",
    "Denied",
]
