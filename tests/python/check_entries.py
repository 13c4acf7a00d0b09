"""Reads pgcache entries as they sit on disk with pyarrow, polars and DuckDB, and compares
them with what pgcache returned.

Usage: check_entries.py EXPECTED.json

EXPECTED.json holds a list of entries: {"path", "rows", "sort", "columns": [{"name",
"type", "values"}]} where "type" is the pyarrow type string and "values" are canonical:
numbers, exact decimal text, integer microseconds or days for times and dates, hex for
binary, [months, days, microseconds] for intervals, lists for lists.
Exits non-zero with a message naming the entry, reader, column and row on any difference.
"""

import json
import sys
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def canonical(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return "NaN" if value != value else value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return [value["months"], value["days"], value["microseconds"]]
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def column_values(array):
    t = array.type
    if pa.types.is_timestamp(t) or pa.types.is_time64(t):
        array = pc.cast(array, pa.int64())
    elif pa.types.is_date32(t):
        array = pc.cast(array, pa.int32())
    return [canonical(v) for v in array.to_pylist()]


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def check_pyarrow(entry):
    table = ds.dataset(entry["path"], format="parquet").to_table()
    if entry["sort"]:
        table = table.sort_by(entry["sort"])
    if table.num_rows != entry["rows"]:
        fail(f"pyarrow: {entry['path']}: {table.num_rows} rows, expected {entry['rows']}")
    for column in entry["columns"]:
        name = column["name"]
        actual_type = str(table.schema.field(name).type)
        if actual_type != column["type"]:
            fail(f"pyarrow: {entry['path']}: column {name} has type {actual_type}, expected {column['type']}")
        values = column_values(table.column(name).combine_chunks())
        for row, (got, want) in enumerate(zip(values, column["values"])):
            if got != want:
                fail(f"pyarrow: {entry['path']}: column {name}, row {row}: {got!r} != {want!r}")


def check_polars(entry):
    frame = pl.read_parquet(entry["path"] + "/*.parquet")
    if frame.height != entry["rows"]:
        fail(f"polars: {entry['path']}: {frame.height} rows, expected {entry['rows']}")
    names = [c["name"] for c in entry["columns"]]
    if frame.columns != names:
        fail(f"polars: {entry['path']}: columns {frame.columns}, expected {names}")
    for column in entry["columns"]:
        dtype = frame.schema[column["name"]]
        if column["type"] == "timestamp[us, tz=UTC]" and dtype != pl.Datetime("us", "UTC"):
            fail(f"polars: {entry['path']}: {column['name']} is {dtype}")
        if column["type"].startswith("decimal128") and not isinstance(dtype, pl.Decimal):
            fail(f"polars: {entry['path']}: {column['name']} is {dtype}")
    if entry["sort"]:
        got = frame.sort(entry["sort"])[entry["sort"]].to_list()
        want = next(c["values"] for c in entry["columns"] if c["name"] == entry["sort"])
        if got != want:
            fail(f"polars: {entry['path']}: {entry['sort']} values differ")


def check_duckdb(entry):
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{entry['path']}/*.parquet')").fetchall()[0][0]
    if count != entry["rows"]:
        fail(f"duckdb: {entry['path']}: {count} rows, expected {entry['rows']}")


def main():
    with open(sys.argv[1]) as f:
        entries = json.load(f)
    for entry in entries:
        check_pyarrow(entry)
        check_polars(entry)
        check_duckdb(entry)
    print(f"{len(entries)} entries read identically by pyarrow {pa.__version__}, "
          f"polars {pl.__version__}, duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
