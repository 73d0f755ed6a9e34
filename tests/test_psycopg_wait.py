"""psycopg's waits in a gevent process (webapp/psycopg_wait.py): queries give the same
answers, a slow query and a long executemany let the other greenlets run, and a
connection the server ends is told as lost. In a child process: gevent patches it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy.engine import Engine

CHILD = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys, time
    import gevent, psycopg
    from webapp import psycopg_wait

    url = sys.argv[1]
    out = {"installed": psycopg_wait.install()}
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    def ticks_during(fn):
        before = len(ticks)
        fn()
        return len(ticks) - before

    g = gevent.spawn(ticker)
    gevent.sleep(0.05)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        out["ticks_in_slow_query"] = ticks_during(lambda: cur.execute("SELECT pg_sleep(0.3)"))
        cur.execute("CREATE TEMP TABLE t (a int, b text)")
        rows = [(i, str(i)) for i in range(5000)]
        t0 = time.monotonic()
        out["ticks_in_executemany"] = ticks_during(
            lambda: cur.executemany("INSERT INTO t VALUES (%s, %s)", rows)
        )
        out["executemany_s"] = time.monotonic() - t0
        cur.execute("SELECT count(*), sum(a), max(b) FROM t")
        out["sums"] = list(cur.fetchone())
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s, 5000)", [conn.info.backend_pid])
        try:
            cur.execute("SELECT 1")
            out["lost"] = None
        except psycopg.OperationalError as exc:
            out["lost"] = type(exc).__name__
    g.kill()
    print(json.dumps(out))
    """
)


def test_psycopg_waits_under_gevent(sql_engine: Engine) -> None:
    if sql_engine.dialect.name != "postgresql":
        pytest.skip("psycopg is the PostgreSQL driver (DATABASE_URL)")
    # given a gevent-patched process with the wait installed
    url = sql_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    # when it runs a slow query, a long executemany, and a query on a connection the
    # server ended, while a greenlet ticks every 10 ms
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # then the wait is in use, and the answers are right
    assert out["installed"] is True
    assert out["sums"] == [5000, sum(range(5000)), "999"]
    # and the ticker ran during the slow query (~30 ticks) and the executemany (which
    # never waits for the server long: it yields every 5 ms of being busy)
    assert out["ticks_in_slow_query"] >= 10
    assert out["ticks_in_executemany"] >= min(5, int(out["executemany_s"] / 0.02))
    # and a lost connection is told as one
    assert out["lost"] is not None
