"""Query results as pyarrow Tables, pandas and polars DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._pgcache import QueryResult

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow


class Result:
    """The rows of one query, still in Arrow memory (or the cache's Parquet files) until asked
    for. Implements the Arrow PyCapsule interface, so ``pyarrow.table(result)``,
    ``polars.DataFrame(result)`` and DuckDB read it directly.

    Attributes:
        num_rows: Rows in the result.
        columns: Column names, in order.
        origin: ``"hit"`` (from the cache, no database), ``"stored"`` (fetched and stored),
            ``"refreshed"`` (an incremental entry brought up to date), ``"shared"`` (another
            thread refreshed it meanwhile) or ``"uncached"``.
        entry_name: The cache entry (``cache_<hex>``), if cached.
        refresh_report: For incremental queries: ``rows_from_database``, ``rows_from_cache``,
            ``watermark``, ``read_from``, ``safe`` and ``full``.
    """

    __slots__ = ("_native",)

    def __init__(self, native: QueryResult) -> None:
        self._native = native

    @property
    def num_rows(self) -> int:
        return self._native.num_rows

    @property
    def columns(self) -> List[str]:
        return self._native.columns

    @property
    def origin(self) -> str:
        return self._native.origin

    @property
    def entry_name(self) -> Optional[str]:
        return self._native.entry_name

    @property
    def refresh_report(self) -> Optional[Dict[str, Any]]:
        return self._native.refresh_report

    def __len__(self) -> int:
        return len(self._native)

    def __repr__(self) -> str:
        return repr(self._native)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow C stream of the rows (the Arrow PyCapsule interface)."""
        return self._native.__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> "pyarrow.Table":
        """The rows as a ``pyarrow.Table``, sharing the engine's Arrow buffers (no copy)."""
        import pyarrow

        return pyarrow.table(self._native)

    def to_pandas(self, **kwargs: Any) -> "pandas.DataFrame":
        """The rows as a ``pandas.DataFrame`` (``pyarrow.Table.to_pandas(**kwargs)``)."""
        return self.to_arrow().to_pandas(**kwargs)

    def to_polars(self) -> "polars.DataFrame":
        """The rows as a ``polars.DataFrame``, sharing the Arrow buffers where polars' types
        allow (numbers, dates, timestamps)."""
        import polars

        return polars.from_arrow(self.to_arrow(), rechunk=False)  # type: ignore[return-value]
