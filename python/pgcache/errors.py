"""The exceptions pgcache raises: one hierarchy under :class:`Error`, with the DB-API names
psycopg2 users know, keeping what the server said (SQLSTATE, severity, detail, hint).

::

    Error
    ├── InterfaceError           misuse: a closed Db, get_db() before init_database()
    │   └── ConfigError          settings that do not parse or make no sense
    ├── DatabaseError            anything about the database
    │   ├── OperationalError     connection refused or lost, pool exhausted, SQLSTATE 08, 53, 57 ...
    │   │   └── StatementTimeout statement_timeout reached (SQLSTATE 57014)
    │   ├── ProgrammingError     bad SQL, missing table or column (SQLSTATE 42 ...)
    │   │   ├── ParameterError   a value that cannot be passed, or the wrong number of them
    │   │   └── IncrementalError an ordering column or incremental mode that cannot work
    │   ├── DataError            a value the server or Arrow cannot hold (SQLSTATE 22)
    │   ├── IntegrityError       constraint violations (SQLSTATE 23)
    │   ├── InternalError        SQLSTATE 24, 25, XX ...
    │   └── NotSupportedError    SQLSTATE 0A
    ├── CacheError               reading or writing the cache directory, a locked entry
    ├── LimitExceeded            a row, byte or quota limit
    └── Denied                   the policy refuses the statement
"""

from __future__ import annotations

from typing import Optional

__all__ = [
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


class Error(Exception):
    """Base of every pgcache exception.

    Attributes are ``None`` unless the server reported the error.

    Attributes:
        sqlstate: The SQLSTATE code, e.g. ``"42P01"`` (also ``pgcode``, as in psycopg2).
        severity: ``ERROR``, ``FATAL`` ...
        detail: The server's detail message.
        hint: The server's hint.
        position: One-based character position in the statement.
        query: The statement, shortened.
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: Optional[str] = None,
        severity: Optional[str] = None,
        detail: Optional[str] = None,
        hint: Optional[str] = None,
        position: Optional[int] = None,
        query: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.severity = severity
        self.detail = detail
        self.hint = hint
        self.position = position
        self.query = query

    @property
    def pgcode(self) -> Optional[str]:
        """The SQLSTATE code, under psycopg2's name."""
        return self.sqlstate


class InterfaceError(Error):
    """The library was used in a way that cannot work (a closed Db, no init_database())."""


class ConfigError(InterfaceError):
    """Settings that do not parse or make no sense."""


class DatabaseError(Error):
    """An error about the database."""


class OperationalError(DatabaseError):
    """The database could not be reached or stopped the statement (connection, pool, limits)."""


class StatementTimeout(OperationalError):
    """The statement ran past statement_timeout (SQLSTATE 57014)."""


class ProgrammingError(DatabaseError):
    """The statement is wrong: bad SQL, a missing table or column, several statements."""


class ParameterError(ProgrammingError, TypeError):
    """A parameter that cannot be passed, or not one value per placeholder."""


class IncrementalError(ProgrammingError):
    """An incremental query that cannot be kept: ordering column missing, NULL or of a type
    that cannot order, a lookback in the wrong unit, a mode refused for this table."""


class DataError(DatabaseError):
    """A value the server refused (SQLSTATE 22) or that Arrow cannot hold exactly."""


class IntegrityError(DatabaseError):
    """A constraint was violated (SQLSTATE 23)."""


class InternalError(DatabaseError):
    """The server reported an internal or transaction-state error."""


class NotSupportedError(DatabaseError):
    """The server does not support the feature (SQLSTATE 0A)."""


class CacheError(Error):
    """Reading or writing the cache directory failed, or an entry stayed locked too long."""


class LimitExceeded(Error):
    """A limit on rows, bytes or the cache size was reached."""


class Denied(Error, PermissionError):
    """The policy does not allow the statement."""
