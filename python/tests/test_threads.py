"""Many threads on one Db: the GIL is released while the engine works, and calls share the
pool and the cache."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import run


def test_other_threads_run_while_a_query_waits(db):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    started = time.monotonic()
    db.query("SELECT pg_sleep(1) IS NULL AS slept", use_cache=False)
    elapsed = time.monotonic() - started
    stop.set()
    counter.join()
    assert elapsed >= 1.0
    assert ticks > 200  # the counter ran during the second the query took


def test_many_threads_share_one_db(pg, db):
    run(
        pg,
        "DROP TABLE IF EXISTS hilos",
        "CREATE TABLE hilos (id bigserial PRIMARY KEY, v int)",
        "INSERT INTO hilos (v) SELECT g FROM generate_series(1, 20000) g",
    )

    def work(i):
        if i % 4 == 0:
            db.execute("INSERT INTO hilos (v) VALUES (%s)", (i,))
        inc = db.incremental_query("SELECT * FROM hilos", "id").to_arrow()
        ids = inc.column("id").to_pylist()
        assert ids == sorted(set(ids))
        total = db.query("SELECT count(*) AS n FROM hilos WHERE v > $1", (i,)).to_pandas()
        return len(ids), int(total["n"][0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(32)))
    assert all(n >= 20000 for n, _ in results)
    final = db.incremental_query("SELECT * FROM hilos", "id").to_arrow()
    assert final.num_rows == 20000 + 8
    assert db.cache_stats()["total_files"] == 1 + 32


def test_ctrl_c_cancels_a_call(db):
    import _thread

    import pytest

    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        db.query("SELECT pg_sleep(5) IS NULL AS s", use_cache=False)
    assert time.monotonic() - started < 2
    assert db.query("SELECT 1 AS one", use_cache=False).num_rows == 1
