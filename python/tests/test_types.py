"""The type table through Python: what each PostgreSQL type becomes in pyarrow and pandas,
and Python parameter values of every kind."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pyarrow as pa

from conftest import run

UTC = dt.timezone.utc


def test_the_type_table(pg, db):
    run(
        pg,
        "DROP TABLE IF EXISTS tipos",
        "DROP TYPE IF EXISTS humor",
        "CREATE TYPE humor AS ENUM ('ok', 'bad')",
        """CREATE TABLE tipos (b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
            n numeric(10,3), nf numeric, t text, v varchar(5), bytes bytea, d date, tm time,
            ts timestamp, tz timestamptz, iv interval, u uuid, j jsonb, e humor, ip inet,
            arr int4[], o oid)""",
        """INSERT INTO tipos VALUES (true, 2, 4, 8, 1.5, 2.25, 12.345, 3.14159265358979323846,
            'texto', 'abc', '\\x0102', '2024-01-05', '10:30:00.5', '2024-01-05 10:00',
            '2024-01-05 10:00+00', '1 mon 2 days 00:00:03', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
            '{"k": [1, 2]}', 'ok', '10.0.0.1', '{1,NULL,3}', 42)""",
        "INSERT INTO tipos (b) VALUES (NULL)",
    )
    t = db.query("SELECT * FROM tipos ORDER BY b NULLS LAST").to_arrow()
    want = {
        "b": pa.bool_(), "i2": pa.int16(), "i4": pa.int32(), "i8": pa.int64(),
        "f4": pa.float32(), "f8": pa.float64(), "n": pa.decimal128(10, 3), "nf": pa.string(),
        "t": pa.string(), "v": pa.string(), "bytes": pa.binary(), "d": pa.date32(),
        "tm": pa.time64("us"), "ts": pa.timestamp("us"), "tz": pa.timestamp("us", "UTC"),
        "iv": pa.month_day_nano_interval(), "u": pa.binary(16), "j": pa.string(),
        "e": pa.string(), "ip": pa.string(), "arr": pa.list_(pa.int32()), "o": pa.uint32(),
    }
    assert {f.name: f.type for f in t.schema} == want
    row = t.to_pylist()[0]
    assert row["n"] == decimal.Decimal("12.345") and row["nf"] == "3.14159265358979323846"
    assert row["bytes"] == b"\x01\x02" and row["d"] == dt.date(2024, 1, 5)
    assert row["tm"] == dt.time(10, 30, 0, 500000)
    assert row["ts"] == dt.datetime(2024, 1, 5, 10, 0)
    assert row["tz"] == dt.datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
    assert uuid.UUID(bytes=row["u"]) == uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert row["arr"] == [1, None, 3] and row["o"] == 42 and row["e"] == "ok"
    assert t.schema.field("tz").metadata[b"pgcache.pg_type"] == b"timestamptz"
    assert t.to_pylist()[1]["i4"] is None
    df = db.query("SELECT * FROM tipos ORDER BY b NULLS LAST").to_pandas()
    assert str(df["tz"].dtype) == "datetime64[us, UTC]" and df["i8"][0] == 8


def test_python_parameters_of_every_kind(db):
    values = (
        None, True, 7, 2**70, 1.25, "texto", b"\x00\xff", dt.datetime(2024, 1, 5, 10, 0),
        dt.datetime(2024, 1, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
        dt.date(2024, 1, 5), dt.time(23, 59, 59, 1), dt.timedelta(days=2, seconds=3),
        decimal.Decimal("-12.50"), uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        {"a": [1, "x"]}, [1, 2, None],
    )
    sql = (
        "SELECT %s::int4 AS nul, %s::bool AS b, %s::int8 AS i, %s::numeric AS big, %s::float8 AS f, "
        "%s::text AS t, %s::bytea AS by, %s::timestamp AS ts, %s::timestamptz AS tz, %s::date AS d, "
        "%s::time AS tm, %s::interval AS iv, %s::numeric AS n, %s::uuid AS u, %s::jsonb AS j, "
        "%s::int4[] AS a"
    )
    row = db.query(sql, values, use_cache=False).to_arrow().to_pylist()[0]
    assert row["nul"] is None and row["b"] is True and row["i"] == 7
    assert row["big"] == str(2**70) and row["f"] == 1.25 and row["t"] == "texto"
    assert row["by"] == b"\x00\xff" and row["ts"] == dt.datetime(2024, 1, 5, 10, 0)
    assert row["tz"] == dt.datetime(2024, 1, 5, 13, 0, tzinfo=UTC)
    assert row["d"] == dt.date(2024, 1, 5) and row["tm"] == dt.time(23, 59, 59, 1)
    assert row["n"] == "-12.50" and uuid.UUID(bytes=row["u"]).hex.startswith("a0eebc99")
    assert row["j"] == '{"a": [1, "x"]}' and row["a"] == [1, 2, None]
    # A typed hit needs no server; text parameters are read by the server as the column's type.
    assert db.query("SELECT %s::date AS d", ("Jan 5 2024",)).to_arrow()["d"][0].as_py() == dt.date(2024, 1, 5)
    assert db.query("SELECT x FROM unnest(%s::text[]) x WHERE x = ANY(%s)", (["a", 'b"c'], ['b"c'])).num_rows == 1
