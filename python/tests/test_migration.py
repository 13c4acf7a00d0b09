"""The original module's documented example, run as written against the original
(psycopg2 + pandas) and with only its import changed against pgcache: the same results."""

from __future__ import annotations

import os
import sys
import textwrap
from datetime import datetime, timezone

from conftest import connection_args, run

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "original"))
import database as original  # noqa: E402


def example() -> str:
    doc = original.__doc__ or ""
    block = doc.split("Example::", 1)[1]
    return textwrap.dedent(block)


def tables(pg):
    run(
        pg,
        "DROP TABLE IF EXISTS eventos, usuarios",
        "CREATE TABLE eventos (id bigserial PRIMARY KEY, timestamp timestamptz NOT NULL, tipo text)",
        "INSERT INTO eventos (timestamp, tipo) SELECT timestamptz '2024-01-01' + g * interval '1 min', "
        "'view' FROM generate_series(1, 500) g",
        "CREATE TABLE usuarios (id serial PRIMARY KEY, nome text NOT NULL, idade int)",
        "INSERT INTO usuarios (nome, idade) VALUES ('Ana', 30), ('Bia', 12), ('Caio', 45)",
    )


def run_example(module: str, directory, monkeypatch) -> dict:
    monkeypatch.chdir(directory)
    args = connection_args()
    namespace = {
        "HOST": args["host"], "PORT": args["port"], "DBNAME": args["dbname"],
        "USER": args["user"], "PASSWORD": args["password"],
        "datetime": datetime, "timezone": timezone,
    }
    code = example()
    assert "from database import init_database, get_db" in code
    exec(code.replace("from database import", f"from {module} import"), namespace)
    return namespace


def test_the_documented_example_gives_the_same_results(pg, tmp_path, monkeypatch):
    (tmp_path / "original").mkdir()
    (tmp_path / "pgcache").mkdir()
    tables(pg)
    before = run_example("database", tmp_path / "original", monkeypatch)
    # The same tables again, then the same text through pgcache.
    tables(pg)
    after = run_example("pgcache", tmp_path / "pgcache", monkeypatch)

    assert len(after["df"]) == len(before["df"]) == 501
    assert list(after["df"]["id"]) == list(before["df"]["id"])
    assert list(after["df"].columns) == list(before["df"].columns)
    assert after["df"]["timestamp"].iloc[-1] == before["df"]["timestamp"].iloc[-1]
    assert int(after["total"]["total"][0]) == int(before["total"]["total"][0]) == 3
    assert list(after["adults"]["nome"]) == list(before["adults"]["nome"]) == ["Ana", "Caio"]
    assert after["inserted"] == before["inserted"] == 1
    for key in ("total_files", "total_size_mb", "total_records", "cache_dir"):
        assert key in after["stats"] and key in before["stats"]
    assert after["stats"]["total_files"] == before["stats"]["total_files"] == 3
    assert after["stats"]["total_records"] == before["stats"]["total_records"] == 501 + 1 + 2
    assert after["stats"]["cache_dir"] == before["stats"]["cache_dir"] == ".cache"
    # pgcache matches the pattern in the query too; the original only in file names.
    assert after["after_clear"]["total_files"] == 1
