"""`stockpipe stream`: SIGTERM stops cleanly with every produced bar in gold once; kill -9 loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pytest

from tests.e2e_helpers import DAY, REPO_ROOT, SYMBOLS, gold_snapshot, stockpipe_env, stop_embedded_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STREAM_ARGS = ["stream", "--symbols", SYMBOLS, "--start", DAY, "--end", DAY, "--cycle", "3"]


def _start(env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stockpipe", *STREAM_ARGS, *extra],
        env=env,
        cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _fact_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute("select count(*) from gold.fact_stock").fetchone()
            return int(row[0]) if row else 0
    except duckdb.Error:  # not built yet, or the stream holds the file this instant
        return 0


def _wait_for_gold(db: Path, proc: subprocess.Popen[str], minimum: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"stream exited early: {proc.stdout.read() if proc.stdout else ''}"
        rows = _fact_rows(db)
        if rows >= minimum:
            return rows
        time.sleep(1)
    raise AssertionError(f"gold did not reach {minimum} rows within {timeout}s")


def _produced_bars(lake: Path) -> set[tuple[str, str]]:
    """(symbol, bar_ts) of every valid bar that reached bronze, read with independent code."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(lake / "bronze"), format="parquet", partitioning="hive").to_table(
        columns=["value"]
    )
    bars = set()
    for value in table.column("value").to_pylist():
        doc = json.loads(value)
        bars.add((doc["symbol"], doc["bar_ts"]))
    return bars


def _gold_bars(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select symbol, bar_ts from gold.fact_stock").fetchall()
    return [(s, ts.isoformat()) for s, ts in rows]


def test_sigterm_finishes_the_cycle_and_every_produced_bar_is_in_gold_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "stream"
    env = stockpipe_env(data_dir)
    proc = _start(env, "--speed", "120")  # a 390-minute session takes ~200 s of wall time
    try:
        _wait_for_gold(data_dir / "warehouse.duckdb", proc, minimum=1, timeout=240)
        # the children it owns: the Spark JVM (classic mode). The embedded broker runs in a session
        # of its own on purpose (a shared service that outlives the command), so it is left out.
        children = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if os.getsid(c.pid) == os.getsid(proc.pid)
        ]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=180)
        _gone, left = psutil.wait_procs(children, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_embedded_broker(env)
    assert proc.returncode == 0, out[-3000:]
    assert children, "the stream owns its Spark driver JVM"
    assert left == [], f"SIGTERM to `stockpipe stream` left its children running: {left}"
    assert "bars produced" in out
    produced = _produced_bars(data_dir / "lake")
    gold = _gold_bars(data_dir / "warehouse.duckdb")
    assert 0 < len(produced) < 3 * 390, "the stop must have come mid-session for this test to mean much"
    assert len(gold) == len(set(gold)), "a bar is duplicated in gold"
    from datetime import datetime

    produced_utc = {(s, datetime.fromisoformat(ts).astimezone().isoformat()) for s, ts in produced}
    gold_utc = {(s, datetime.fromisoformat(ts).astimezone().isoformat()) for s, ts in gold}
    assert gold_utc == produced_utc
    # the marts are rebuilt after the star (never before the bars are visible) and, at the stop,
    # reflect every bar: one daily row per symbol counting all its regular-session bars
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        regular = dict(
            con.execute(
                "select symbol, count(*) from gold.fact_stock where is_regular_session group by 1"
            ).fetchall()
        )
        daily = dict(con.execute("select symbol, bar_count from gold.mart_daily_ohlcv").fetchall())
    assert daily == regular
    cycles = [json.loads(x) for x in (data_dir / "state" / "stream_cycles.jsonl").read_text().splitlines()]
    for c in cycles:
        names = list(c["phases"])
        assert names[:5] == ["upload", "clean", "load", "dbt", "freshness"], names
        assert names[5:] in ([], ["marts"]), names
    assert "marts" in cycles[-1]["phases"]  # the final cycle brings the marts up to date


def test_kill_9_mid_cycle_then_restart_gives_the_uninterrupted_gold(
    embedded_run: dict[str, Any], tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "stream-kill"
    env = stockpipe_env(data_dir, **warm_spark_env)
    proc = _start(env, "--speed", "900")
    try:
        _wait_for_gold(data_dir / "warehouse.duckdb", proc, minimum=1, timeout=240)
        time.sleep(2.5)  # inside a later cycle
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        again = _start(env, "--speed", "5000", "--drain")
        out, _ = again.communicate(timeout=600)
        assert again.returncode == 0, out[-3000:]
    finally:
        for p in (proc,):
            if p.poll() is None:
                p.kill()
        stop_embedded_broker(env)
    assert gold_snapshot(data_dir / "warehouse.duckdb") == embedded_run["gold_first"]
