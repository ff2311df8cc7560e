"""`stockpipe produce` -> `consume` -> `upload` as a user runs them: N simulated bars, N records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stockpipe.lake.bronze import read_manifest
from stockpipe.settings import Settings
from tests.fixtures.kafka import bronze_offsets, bronze_table

pytestmark = pytest.mark.integration
CLI = "from stockpipe.cli import main; main()"


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", CLI, *args], env={**env, "COLUMNS": "200"}, cwd=cwd,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_produce_consume_upload_cli(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    n = 250
    produced = _cli(
        kafka_env, tmp_path, "produce", "--source", "simulator", "--symbols", "AAPL,MSFT",
        "--start", "2024-01-02", "--days", "1", "--limit", str(n),
    )  # fmt: skip
    assert "sent" in produced.stdout
    assert f"{n:,}" in produced.stdout
    consumed = _cli(kafka_env, tmp_path, "consume", "--timeout", "5")
    assert "records" in consumed.stdout
    uploaded = _cli(kafka_env, tmp_path, "upload")
    assert "files published" in uploaded.stdout
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == n
    assert sum(e.records for e in read_manifest(kafka_settings)) == n
    keys = set(bronze_table(kafka_settings, ["key"])["key"].to_pylist())
    assert keys == {b"AAPL", b"MSFT"}


def test_consume_follow_stops_cleanly_on_sigterm(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    import signal
    import time

    import pyarrow.parquet as pq

    from stockpipe.contract.spool import spool_files
    from stockpipe.ingest.producer import produce_bars
    from tests.fixtures.kafka import make_bars

    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "consume", "--follow"], env={**kafka_env, "COLUMNS": "200"}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        produce_bars(kafka_settings, make_bars(30))
        deadline = time.monotonic() + 60
        spooled = 0
        while time.monotonic() < deadline and spooled < 30:  # flushed by time (5 s) while following
            time.sleep(0.3)
            spooled = sum(pq.read_metadata(p).num_rows for p in spool_files(kafka_settings.spool_dir))
        assert spooled == 30
        assert proc.poll() is None  # still following
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "records" in out
