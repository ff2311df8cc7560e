"""Embedded broker lifecycle through the CLI (subprocesses, like a user) and the library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockpipe.contract.layout import cluster_tag
from stockpipe.ingest.broker import (
    broker_status,
    cluster_id,
    ensure_bootstrap,
    pid_alive,
    port_answers,
    stop_broker,
)
from stockpipe.ingest.topics import ensure_topic
from stockpipe.settings import KafkaSettings, Settings

pytestmark = pytest.mark.integration
CLI = "from stockpipe.cli import main; main()"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update({"STOCKPIPE_DATA_DIR": str(data_dir), "STOCKPIPE_CONFIG": str(data_dir / "none.toml"),
                "COLUMNS": "200"})  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], env=env, cwd=data_dir, capture_output=True, text=True, timeout=120
    )


def test_cli_start_status_stop_with_state_file(settings: Settings) -> None:
    data = settings.data_path
    state_file = settings.state_dir / "broker.json"
    try:
        started = _cli(data, "broker", "start")
        assert started.returncode == 0, started.stderr
        state = json.loads(state_file.read_text())
        assert set(state) >= {"pid", "port", "cluster_id", "storage", "started_at", "log_file"}
        assert state["cluster_id"].startswith("stockpipe-")
        # detached: alive after the CLI process that started it has exited
        assert pid_alive(state["pid"])
        assert port_answers(state["port"])
        assert settings.kafka.topic in started.stdout
        assert str(state["port"]) in started.stdout
        again = _cli(data, "broker", "start")
        assert again.returncode == 0
        assert json.loads(state_file.read_text())["pid"] == state["pid"]  # reused, not restarted
        status = _cli(data, "broker", "status")
        assert status.returncode == 0
        assert "yes" in status.stdout
        assert state["cluster_id"] in status.stdout
        stopped = _cli(data, "broker", "stop")
        assert stopped.returncode == 0
        assert "stopped" in stopped.stdout
        assert not pid_alive(state["pid"])
        assert not state_file.exists()
        assert "no" in _cli(data, "broker", "status").stdout.split()
    finally:
        stop_broker(settings)


def test_stale_state_restart_and_new_cluster_per_memory_start(settings: Settings) -> None:
    try:
        first = ensure_bootstrap(settings)
        assert ensure_bootstrap(settings) == first
        cid1 = cluster_id(settings)
        assert cid1 == broker_status(settings)["cluster_id"]
        info = ensure_topic(settings)
        assert (info.created, info.partitions) == (True, settings.kafka.partitions)
        assert ensure_topic(settings).created is False  # idempotent
        # a killed broker leaves a stale state file: the next call starts a fresh one
        pid = broker_status(settings)["pid"]
        os.killpg(pid, 9)
        deadline = time.monotonic() + 10
        while broker_status(settings)["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert broker_status(settings)["running"] is False
        assert broker_status(settings)["stale"] is True
        ensure_bootstrap(settings)
        status = broker_status(settings)
        assert status["running"]
        assert status["pid"] != pid
        assert cluster_tag(cluster_id(settings)) != cluster_tag(cid1)  # a new in-memory cluster
    finally:
        stop_broker(settings)


def test_fixed_cluster_id_is_used(settings: Settings) -> None:
    s = settings.model_copy(
        update={"kafka": KafkaSettings(embedded_cluster_id="stockpipe-fixed", partitions=2)}
    )
    try:
        assert cluster_id(s) == "stockpipe-fixed"
        assert ensure_topic(s).partitions == 2
    finally:
        assert stop_broker(s) is True
    assert stop_broker(s) is False
