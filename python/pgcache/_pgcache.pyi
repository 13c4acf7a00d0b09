"""Type hints of the native module (Rust, PyO3)."""

from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

ENGINE_VERSION: str

def numbered_placeholders(sql: str) -> str: ...

class QueryResult:
    @property
    def num_rows(self) -> int: ...
    @property
    def columns(self) -> List[str]: ...
    @property
    def origin(self) -> str: ...
    @property
    def entry_name(self) -> Optional[str]: ...
    @property
    def refresh_report(self) -> Optional[Dict[str, Any]]: ...
    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...
    def __len__(self) -> int: ...

class Engine:
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
        cache_dir: Optional[str] = None,
        config: Optional[str] = None,
        statement_timeout: Optional[float] = None,
        connect: bool = True,
    ) -> None: ...
    def query(
        self,
        sql: str,
        params: Optional[Sequence[Any]] = None,
        *,
        use_cache: bool = True,
        max_age: Optional[float] = None,
        progress: Optional[Callable[[int, int], Any]] = None,
    ) -> QueryResult: ...
    def incremental_query(
        self,
        sql: str,
        order_column: str,
        params: Optional[Sequence[Any]] = None,
        *,
        use_cache: bool = True,
        lookback: Union[timedelta, int, None] = None,
        xmin: bool = False,
        progress: Optional[Callable[[int, int], Any]] = None,
    ) -> QueryResult: ...
    def execute(self, sql: str, params: Optional[Sequence[Any]] = None) -> int: ...
    def clear_cache(self, pattern: Optional[str] = None) -> int: ...
    def cache_stats_json(self) -> str: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def cache_dir(self) -> str: ...
