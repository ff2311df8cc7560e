"""Shared parts of the ``stockpipe stream --source <live provider>`` end-to-end tests.

A stream runs as a subprocess on its own data folder (embedded broker, DuckDB) and cleans on the
session's warm Spark Connect server (``warm_spark_env``);
the tests wait on its state files, stop it (SIGTERM, or ``kill -9`` and a restart) and then read
``gold.fact_stock``, which must equal an independently computed reference.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import REPO_ROOT
from tests.fixtures.faults import broker_bootstrap
from tests.helpers_live import read_topic
from tests.live_helpers import mismatches


def start_stream(
    env: dict[str, str], log: Path, source: str, symbols: tuple[str, ...]
) -> subprocess.Popen[bytes]:
    args = ["stream", "--source", source, "--symbols", ",".join(symbols), "--cycle", "2"]
    # one Spark warm-up round before the feed connects: the path runs, but the suite does not pay
    # six rounds of a cold JVM per stream start (these tests check the data, not the speed)
    env = {"STOCKPIPE_STREAM_SPARK_WARMUP_ROUNDS": "1", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "stockpipe", *args],
        env=env, cwd=str(REPO_ROOT), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def gold(db: Path) -> pd.DataFrame:
    """gold.fact_stock (read only after the stream stopped: a reader would lock out its loads)."""
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute(
            "select symbol, bar_ts, open_price as open, high_price as high, low_price as low, "
            "close_price as close, volume from gold.fact_stock"
        ).df()
    frame["bar_ts"] = pd.to_datetime(frame["bar_ts"], utc=True).dt.tz_convert("America/New_York")
    return frame


def state(data_dir: Path, name: str) -> dict[str, Any]:
    path = data_dir / "state" / name
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def wait_for(proc: subprocess.Popen[bytes], log: Path, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.5)


def bars_out(data_dir: Path) -> int:
    """Bars the aggregator emitted (corrections included)."""
    return int(state(data_dir, "live/status-aggregator.json").get("bars_emitted", 0))


def feed_status(data_dir: Path, provider: str) -> dict[str, Any]:
    return state(data_dir, f"live/status-{provider}.json")


def bronze_records(data_dir: Path, topic: str = "stock-prices") -> int:
    """Records in bronze (the manifest of published files): what the next cycle takes to gold."""
    total = 0
    for path in (data_dir / "lake" / "bronze" / "_manifest" / topic).glob("*.json"):
        try:
            total += int(json.loads(path.read_text())["records"])
        except (OSError, ValueError, KeyError):
            continue  # being written
    return total


def topic_trades(data_dir: Path) -> list[Trade]:
    """The raw audit trail: every trade in ``stock-trades`` (read before the broker stops)."""
    records = read_topic(broker_bootstrap(data_dir), "stock-trades")
    return [Trade.from_json_bytes(v or b"") for _, v in records]


def _bootstrap(data_dir: Path) -> str | None:
    """The data folder's embedded broker, None before the stream started it."""
    from stockpipe.ingest.broker import read_state

    found = read_state(data_dir / "state")
    return None if found is None else found.bootstrap


def topic_count(data_dir: Path, topic: str) -> int:
    """Messages in ``topic`` (0 before the broker or the topic exists)."""
    bootstrap = _bootstrap(data_dir)
    if bootstrap is None:
        return 0
    try:
        return len(read_topic(bootstrap, topic, timeout=20))
    except (KeyError, AssertionError):
        return 0  # topic not created yet


def stop_stream(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 0, log.read_text(errors="replace")[-4000:]


def check_gold(db: Path, ref: pd.DataFrame) -> None:
    """gold.fact_stock has no duplicate and equals ``ref`` (indexed by symbol, bar_ts)."""
    frame = gold(db)
    assert not frame.duplicated(["symbol", "bar_ts"]).any(), "a bar is duplicated in gold"
    ours = frame.set_index(["symbol", "bar_ts"]).sort_index()
    assert len(ours) == len(ref)
    assert mismatches(ours, ref) == 0


def committed(data_dir: Path, topic: str = "stock-prices", group: str = "stockpipe-bronze") -> int:
    """Records of ``topic`` the consumer ``group`` has committed (offsets start at 0 and are dense
    for an idempotent producer; the embedded broker's reported high watermarks lag, its committed
    offsets do not)."""
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = _bootstrap(data_dir)
    if bootstrap is None:
        return 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or not meta.partitions:
            return 0
        parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        return sum(max(tp.offset, 0) for tp in c.committed(parts, timeout=10))
    finally:
        c.close()
