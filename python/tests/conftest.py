"""Fixtures: a database of the tests' own (`pgcache_pytest` on the server at DATABASE_URL),
a connection for set-up through psycopg2, and a pgcache Db over a fresh cache directory."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Dict, Iterator

import psycopg2
import pytest

import pgcache

BASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TEST_DB = "pgcache_pytest"


def _with_db(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


URL = _with_db(BASE_URL, TEST_DB)


def connection_args() -> Dict[str, Any]:
    """The test database as init_database's keyword arguments."""
    parts = urllib.parse.urlsplit(URL)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "dbname": TEST_DB,
        "user": urllib.parse.unquote(parts.username or "postgres"),
        "password": urllib.parse.unquote(parts.password) if parts.password else None,
    }


@pytest.fixture(scope="session", autouse=True)
def _database() -> None:
    conn = psycopg2.connect(BASE_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DB,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {TEST_DB}")
    conn.close()
    # Only this database: the environment must not point the Db elsewhere.
    os.environ["DATABASE_URL"] = URL


@pytest.fixture
def pg() -> Iterator[Any]:
    """A psycopg2 connection (autocommit) to the test database, for set-up."""
    conn = psycopg2.connect(URL)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def cache_dir(tmp_path: Any) -> str:
    return str(tmp_path / ".cache")


@pytest.fixture
def db(cache_dir: str) -> Iterator[pgcache.Db]:
    with pgcache.Db(URL, cache_dir=cache_dir) as handle:
        yield handle


def run(pg: Any, *statements: str) -> None:
    with pg.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
