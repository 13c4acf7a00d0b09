"""Typed exceptions: one hierarchy under pgcache.Error, keeping the server's SQLSTATE."""

from __future__ import annotations

import pytest

import pgcache
from conftest import URL, run


def test_server_errors_keep_sqlstate_and_class(pg, db):
    with pytest.raises(pgcache.ProgrammingError) as e:
        db.execute_query("SELECT * FROM no_such_table")
    assert e.value.sqlstate == "42P01" and e.value.pgcode == "42P01"
    assert isinstance(e.value, pgcache.DatabaseError) and isinstance(e.value, pgcache.Error)
    assert "no_such_table" in str(e.value) and e.value.severity == "ERROR"

    run(pg, "DROP TABLE IF EXISTS unicos", "CREATE TABLE unicos (id int PRIMARY KEY)")
    db.execute_non_query("INSERT INTO unicos VALUES (%s)", (1,))
    with pytest.raises(pgcache.IntegrityError) as e:
        db.execute_non_query("INSERT INTO unicos VALUES (%s)", (1,))
    assert e.value.sqlstate == "23505" and e.value.detail

    with pytest.raises(pgcache.DataError) as e:
        db.query("SELECT 1 / 0 AS x", use_cache=False)
    assert e.value.sqlstate == "22012"

    with pytest.raises(pgcache.ProgrammingError) as e:
        db.query("SELEC 1")
    assert e.value.sqlstate == "42601"


def test_parameters(db):
    with pytest.raises(pgcache.ParameterError):
        db.query("SELECT $1::int AS a, $2::int AS b", (1,))
    # A text value the server cannot read as the placeholder's type names both.
    with pytest.raises(pgcache.ParameterError) as e:
        db.query("SELECT $1::int AS a", ("x",))
    assert "$1 (int4)" in str(e.value)
    with pytest.raises(pgcache.ParameterError):
        db.query("SELECT %(name)s AS a", {"name": 1})
    with pytest.raises(pgcache.ParameterError):
        db.query("SELECT %s AS a", "not a tuple")
    with pytest.raises(pgcache.ParameterError):
        db.query("SELECT %s AS a", (object(),))
    with pytest.raises(pgcache.ProgrammingError):
        db.query("SELECT 10 % 3 AS a, %s AS b", (1,))
    with pytest.raises(TypeError):  # ParameterError is a TypeError too
        db.query("SELECT %s AS a", (object(),))


def test_incremental_and_policy_errors(pg, db):
    run(pg, "DROP TABLE IF EXISTS inc_err", "CREATE TABLE inc_err (id int, f float8)")
    with pytest.raises(pgcache.IncrementalError):
        db.incremental_query("SELECT * FROM inc_err", "missing")
    with pytest.raises(pgcache.IncrementalError):
        db.incremental_query("SELECT * FROM inc_err", "f")
    with pytest.raises(pgcache.ProgrammingError):
        db.query("SELECT 1; SELECT 2")


def test_connection_and_state_errors(cache_dir):
    with pytest.raises(pgcache.OperationalError):
        pgcache.Db("postgres://postgres@127.0.0.1:1/postgres", cache_dir=cache_dir)
    with pgcache.Db(URL, cache_dir=cache_dir, statement_timeout=0.2) as db:
        with pytest.raises(pgcache.StatementTimeout) as e:
            db.query("SELECT pg_sleep(2) IS NULL AS s", use_cache=False)
        assert e.value.sqlstate == "57014"
        assert isinstance(e.value, pgcache.OperationalError)
    with pytest.raises(pgcache.InterfaceError):
        db.query("SELECT 1")
    with pytest.raises(pgcache.ConfigError):
        pgcache.Db(URL, cache_dir=cache_dir, config="/nonexistent/pgcache.toml")


def test_get_db_before_init_database(monkeypatch):
    monkeypatch.setattr(pgcache._db, "_default", None)
    with pytest.raises(pgcache.InterfaceError):
        pgcache.get_db()
