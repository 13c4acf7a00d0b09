"""Ties and late commits through Python: no row lost, none doubled."""

from __future__ import annotations

import psycopg2

from conftest import URL, run


def ids(db, sql, column):
    return db.incremental_query(sql, column).to_arrow().column("id").to_pylist()


def test_ties_at_the_watermark_are_neither_lost_nor_doubled(pg, db):
    run(
        pg,
        "DROP TABLE IF EXISTS empates",
        "CREATE TABLE empates (id int PRIMARY KEY, ts timestamptz NOT NULL)",
        "INSERT INTO empates SELECT g, timestamptz '2024-01-01' + (g / 10) * interval '1 s' FROM generate_series(1, 95) g",
    )
    sql = "SELECT id, ts FROM empates"
    assert sorted(ids(db, sql, "ts")) == list(range(1, 96))
    # More rows with the same timestamp as the stored maximum, and later ones.
    run(pg, "INSERT INTO empates SELECT g, timestamptz '2024-01-01' + (g / 10) * interval '1 s' FROM generate_series(96, 130) g")
    got = ids(db, sql, "ts")
    assert sorted(got) == list(range(1, 131)) and len(got) == len(set(got))
    assert ids(db, sql, "ts") == got


def test_a_late_commit_is_picked_up(pg, db):
    run(
        pg,
        "DROP TABLE IF EXISTS tardios",
        "CREATE TABLE tardios (id bigserial PRIMARY KEY, v text)",
        "INSERT INTO tardios (v) SELECT 'a' FROM generate_series(1, 10)",
    )
    sql = "SELECT id, v FROM tardios"
    assert len(ids(db, sql, "id")) == 10
    late = psycopg2.connect(URL)
    try:
        with late.cursor() as cur:
            cur.execute("INSERT INTO tardios (v) VALUES ('late')")  # takes id 11, not committed
        run(pg, "INSERT INTO tardios (v) VALUES ('early')")  # id 12, committed
        assert ids(db, sql, "id") == list(range(1, 11)) + [12]
        late.commit()
    finally:
        late.close()
    assert ids(db, sql, "id") == list(range(1, 13))
