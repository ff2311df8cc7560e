"""The broker restarted under a running ``stockpipe consume --follow``: nothing lost, nothing twice.

The broker is tansu on durable storage (``s3://`` on a loopback moto server), restarted on the
same port with the same cluster id, so it keeps its log and the group's committed offsets.
Three batches: A before the restart (flushed and committed), B produced right before the
restart (consumed but not yet flushed when the broker goes away, so the consumer must neither
lose nor re-write it), C after the restart. The follower never stops; at the end bronze holds
every record of the topic exactly once, in contiguous per-partition files.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from stockpipe.contract.layout import BatchId
from stockpipe.ingest.broker import BrokerState, spawn_broker, terminate
from stockpipe.ingest.producer import produce_bars
from stockpipe.lake.bronze import upload_spool
from stockpipe.settings import Settings
from tests.e2e_helpers import REPO_ROOT
from tests.fixtures.faults import (
    MotoS3,
    all_offsets,
    bronze_offsets,
    committed_offsets,
    environ,
    free_port,
    spool_offsets,
    topic_ends,
)
from tests.fixtures.kafka import FAST_GROUP_OPTIONS, make_bars
from tests.fixtures.warehouse import clean_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

A, B, C = 600, 150, 250


def _wait_for(what: str, check: object, timeout: float = 90.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_consumer_follows_through_a_broker_restart_exactly_once(moto_s3: MotoS3, tmp_path: Path) -> None:
    storage = f"s3://{moto_s3.bucket()}/"
    cluster = f"stockpipe-restart-{uuid.uuid4().hex[:8]}"
    port = free_port()
    broker_dir = tmp_path / "broker"

    def start() -> BrokerState:
        with environ(moto_s3.env):  # spawn_broker hands its environment to tansu
            return spawn_broker(broker_dir, storage=storage, cluster_id=cluster, port=port)

    broker = start()
    data = tmp_path / "data"
    settings: Settings = clean_settings(
        data_dir=data,
        kafka={"bootstrap_servers": broker.bootstrap, "partitions": 2, "client_options": FAST_GROUP_OPTIONS},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(
        STOCKPIPE_DATA_DIR=str(data),
        STOCKPIPE_CONFIG=str(tmp_path / "none.toml"),
        STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        STOCKPIPE_KAFKA_PARTITIONS="2",
        STOCKPIPE_KAFKA_CLIENT_OPTIONS=json.dumps(FAST_GROUP_OPTIONS),
        COLUMNS="200",
    )
    bars = make_bars(A + B + C, symbols=("AAPL", "MSFT", "IBM", "NVDA", "JPM", "XOM"))
    follower = None
    log = tmp_path / "follow.log"
    try:
        assert produce_bars(settings, bars[:A]).sent == A
        with log.open("w") as out:
            follower = subprocess.Popen(
                [sys.executable, "-m", "stockpipe", "consume", "--follow"],
                env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        ends = topic_ends(broker.bootstrap)
        assert sum(ends.values()) == A
        _wait_for("batch A in the spool", lambda: len(spool_offsets(data)) == A)
        _wait_for("batch A committed", lambda: committed_offsets(broker.bootstrap, sorted(ends)) == ends)

        assert produce_bars(settings, bars[A : A + B]).sent == B  # durable on the broker (acks=all)
        time.sleep(1.0)  # fetched by the follower, not yet flushed (it flushes every 5 s)
        assert len(spool_offsets(data)) == A
        terminate(broker.pid)
        time.sleep(1.0)
        broker = start()
        assert follower.poll() is None, "the follower died with the broker"

        assert produce_bars(settings, bars[A + B :]).sent == C
        _wait_for("A, B and C in the spool", lambda: len(spool_offsets(data)) >= A + B + C)
        time.sleep(6.0)  # one more flush interval: a duplicate would show up now
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 0, log.read_text()[-3000:]
        ends = topic_ends(broker.bootstrap)
        assert committed_offsets(broker.bootstrap, sorted(ends)) == ends
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait(timeout=30)
        terminate(broker.pid)

    assert sum(ends.values()) == A + B + C  # the restarted broker kept every record
    spooled = spool_offsets(data)
    assert spooled == all_offsets(ends), "spool lost or duplicated records"
    upload_spool(settings)
    assert bronze_offsets(data) == all_offsets(ends)
    batches = sorted(BatchId.parse(p.name) for p in (data / "lake").rglob("*.parquet"))
    for part, group in itertools.groupby(batches, key=lambda b: b.partition):
        files = list(group)
        assert files[0].first == 0, part
        for a, b in itertools.pairwise(files):
            assert b.first == a.last + 1, f"partition {part}: gap or overlap between {a} and {b}"
