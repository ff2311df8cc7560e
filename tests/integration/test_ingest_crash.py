"""SIGKILL at the exact crash points of consume and upload; the next run finishes exactly once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stockpipe.contract.layout import BatchId
from stockpipe.contract.spool import spool_batches, spool_files
from stockpipe.ingest.consumer import consume_to_spool
from stockpipe.ingest.producer import produce_bars
from stockpipe.lake.bronze import read_manifest, upload_spool
from stockpipe.lake.fs import filesystem
from stockpipe.settings import Settings
from tests.fixtures.kafka import bronze_offsets, make_bars

pytestmark = pytest.mark.integration
N = 600

CONSUME = (
    "from stockpipe.settings import Settings\n"
    "from stockpipe.ingest.consumer import consume_to_spool\n"
    "consume_to_spool(Settings(), flush_records=70)\n"
)
UPLOAD = (
    "from stockpipe.settings import Settings\n"
    "from stockpipe.lake.bronze import upload_spool\n"
    "upload_spool(Settings())\n"
)


def _run_killed(code: str, env: dict[str, str], fault: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**env, f"STOCKPIPE_FAULT_{fault}": "2"}, cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def _committed(settings: Settings, partition: int) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": settings.kafka.group_id})
    try:
        (tp,) = c.committed([TopicPartition(settings.kafka.topic, partition)], timeout=10)
        return int(tp.offset)
    finally:
        c.close()


def test_consumer_killed_between_file_write_and_commit(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_bars(kafka_settings, make_bars(N))
    _run_killed(CONSUME, kafka_env, "AFTER_FILE_WRITE", tmp_path)
    written = sorted(spool_batches(kafka_settings.spool_dir), key=lambda b: b.file_name)
    assert len(written) == 2  # killed right after the second file
    # The second file's offsets were never committed: a naive restart would read them again.
    uncommitted = [b for b in written if _committed(kafka_settings, b.partition) <= b.last]
    assert uncommitted, "the kill should leave a written but uncommitted file"
    result = consume_to_spool(kafka_settings, flush_records=70)
    assert result.records == N - sum(b.last - b.first + 1 for b in written)
    upload_spool(kafka_settings)
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == N
    _assert_contiguous_files(kafka_settings)


@pytest.mark.parametrize("fault", ["AFTER_BRONZE_PUBLISH", "AFTER_MANIFEST_WRITE"])
def test_upload_killed_mid_file(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path, fault: str
) -> None:
    produce_bars(kafka_settings, make_bars(N))
    consumed = consume_to_spool(kafka_settings, flush_records=100)
    assert consumed.files >= 4
    _run_killed(UPLOAD, kafka_env, fault, tmp_path)
    assert len(spool_files(kafka_settings.spool_dir)) == consumed.files - 1  # first file done, second not
    done = upload_spool(kafka_settings)
    assert done.files + done.skipped_existing == consumed.files - 1
    assert done.skipped_existing == (1 if fault == "AFTER_MANIFEST_WRITE" else 0)
    assert spool_files(kafka_settings.spool_dir) == []
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == N
    entries = read_manifest(kafka_settings)
    assert len(entries) == consumed.files
    assert sum(e.records for e in entries) == N
    fs, _root = filesystem(kafka_settings)
    for e in entries:  # every entry points at an existing file of the recorded size
        assert fs.size(e.path.removeprefix("file://")) == e.bytes


def _assert_contiguous_files(settings: Settings) -> None:
    """Per partition, bronze files tile the offsets without overlap."""
    by_part: dict[int, list[BatchId]] = {}
    for e in read_manifest(settings):
        by_part.setdefault(e.partition, []).append(BatchId.parse(e.file))
    for batches in by_part.values():
        batches.sort()
        for a, b in itertools.pairwise(batches):
            assert b.first > a.last
