"""The original module's calls, with its names, arguments and defaults, against the server."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pytest

import pgcache
from conftest import connection_args, run


@pytest.fixture
def tables(pg):
    run(
        pg,
        "DROP TABLE IF EXISTS eventos, usuarios",
        'CREATE TABLE eventos (id bigserial PRIMARY KEY, "timestamp" timestamptz NOT NULL, valor float8)',
        "INSERT INTO eventos (\"timestamp\", valor) SELECT timestamptz '2024-01-01' + g * interval '1 minute', g "
        "FROM generate_series(1, 1000) g",
        "CREATE TABLE usuarios (id serial PRIMARY KEY, nome text NOT NULL, idade int)",
        "INSERT INTO usuarios (nome, idade) VALUES ('Ana', 30), ('Bruno', 41)",
    )


def test_the_original_calls(tables, pg, tmp_path):
    cache = str(tmp_path / ".cache")
    pgcache.init_database(**connection_args(), min_conn=1, max_conn=10, cache_dir=cache)
    db = pgcache.get_db()

    df = db.execute_incremental_query(
        query='SELECT * FROM eventos ORDER BY "timestamp"', order_column="timestamp", use_cache=True
    )
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 1000 and list(df.columns) == ["id", "timestamp", "valor"]

    total = db.execute_query("SELECT COUNT(*) AS total FROM usuarios", use_cache=True)
    assert int(total["total"][0]) == 2
    older = db.execute_query("SELECT nome FROM usuarios WHERE idade > %s ORDER BY nome", params=(35,))
    assert list(older["nome"]) == ["Bruno"]

    assert db.execute_non_query("INSERT INTO usuarios (nome) VALUES (%s)", params=("João",)) == 1
    # The simple cache still answers the old count; without it the server does.
    assert int(db.execute_query("SELECT COUNT(*) AS total FROM usuarios")["total"][0]) == 2
    fresh = db.execute_query("SELECT COUNT(*) AS total FROM usuarios", use_cache=False)
    assert int(fresh["total"][0]) == 3

    run(pg, "INSERT INTO eventos (\"timestamp\", valor) VALUES ('2024-02-01', -1)")
    df = db.execute_incremental_query(
        query='SELECT * FROM eventos ORDER BY "timestamp"', order_column="timestamp"
    )
    assert len(df) == 1001 and df["valor"].iloc[-1] == -1

    stats = db.get_cache_stats()
    assert {"total_files", "total_size_mb", "total_records", "cache_dir", "entries"} <= set(stats)
    assert stats["total_files"] == 3
    assert stats["total_records"] == 1001 + 1 + 1
    assert os.path.samefile(stats["cache_dir"], cache)

    assert db.clear_cache(pattern="usuarios") == 2
    assert db.get_cache_stats()["total_files"] == 1
    db.clear_cache()
    assert db.get_cache_stats()["total_files"] == 0
    db.close()
    with pytest.raises(pgcache.InterfaceError):
        db.execute_query("SELECT 1")


def test_dollar_placeholders_and_the_python_style_api(tables, db):
    r = db.query("SELECT nome FROM usuarios WHERE idade = $1", (30,))
    assert isinstance(r, pgcache.Result) and r.origin == "stored" and r.columns == ["nome"]
    again = db.query("SELECT nome FROM usuarios WHERE idade = $1", [30])
    assert again.origin == "hit" and again.to_arrow().column("nome").to_pylist() == ["Ana"]
    # %s and $1 spell the same statement: one entry.
    assert db.query("SELECT nome FROM usuarios WHERE idade = %s", (30,)).origin == "hit"
    inc = db.incremental_query("SELECT * FROM eventos", "id")
    assert inc.refresh_report["full"] and inc.num_rows == 1000
    assert db.incremental_query("SELECT * FROM eventos", "id").refresh_report["rows_from_database"] <= 1000


def test_results_are_shared_not_copied(db):
    r = db.query("SELECT g AS n, g * 0.5::float8 AS x FROM generate_series(1, 100000) g")
    first, second = r.to_arrow(), pa.table(r)
    a = first.column("x").chunk(0).buffers()[1]
    b = second.column("x").chunk(0).buffers()[1]
    assert a.address == b.address  # both read the engine's buffer
    pl = pytest.importorskip("polars")
    frame = r.to_polars()
    assert isinstance(frame, pl.DataFrame) and frame.height == 100000
    assert frame["x"].sum() == pytest.approx(sum(g * 0.5 for g in range(1, 100001)))
    assert pl.DataFrame(r).shape == (100000, 2)  # the PyCapsule interface directly


def test_percent_s_in_literals_and_double_percent(db):
    df = db.execute_query("SELECT '%s' AS lit, 7 %% 3 AS m, %s::text AS p -- %s", params=("x",))
    assert (df["lit"][0], int(df["m"][0]), df["p"][0]) == ("%s", 1, "x")
    assert pgcache.numbered_placeholders("SELECT %s, '%s'") == "SELECT $1, '%s'"
    # Without params the statement stays as written, as psycopg2 leaves it.
    assert db.execute_query("SELECT 7 % 3 AS m")["m"][0] == 1


def test_progress_is_reported_only_when_asked(db, capsys, monkeypatch):
    import pgcache._progress

    calls = []
    sql = "SELECT g, repeat('x', 50) AS pad FROM generate_series(1, 2000000) g"
    r = db.query(sql, use_cache=False, progress=lambda rows, nbytes: calls.append((rows, nbytes)))
    assert r.num_rows == 2000000
    assert calls and calls[-1][0] > 0 and calls[-1][1] > 0
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    db.query(sql, use_cache=False)
    assert capsys.readouterr().err == ""
    # The bar waits DELAY seconds before it draws: set it so this machine's speed cannot
    # decide the outcome, once to "always" and once to "never within a load".
    monkeypatch.setattr(pgcache._progress, "DELAY", 0)
    db.query(sql, use_cache=False, progress=True)
    assert "rows" in capsys.readouterr().err
    monkeypatch.setattr(pgcache._progress, "DELAY", 3600)
    db.query(sql, use_cache=False, progress=True)
    assert capsys.readouterr().err == ""
