"""Spool -> bronze on a local lake: atomic, idempotent, resumable after a crash at each step."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from stockpipe.contract.layout import BatchId, bronze_file, cluster_tag
from stockpipe.errors import StateFileError
from stockpipe.ingest.spool import PartitionBuffer, batch_table, write_batch
from stockpipe.lake.bronze import read_manifest, upload_spool
from stockpipe.settings import Settings

CLUSTER = "cluster-under-test"


def _spool(settings: Settings, partition: int, first: int, n: int, salt: bytes = b"") -> BatchId:
    buf = PartitionBuffer()
    for i in range(n):
        buf.offsets.append(first + i)
        buf.timestamps.append(1_700_000_000_000 + i)
        buf.keys.append(b"MSFT")
        buf.values.append(b'{"i": %d}%s' % (first + i, salt))
    topic = settings.kafka.topic
    batch = BatchId(topic, cluster_tag(CLUSTER), partition, first, first + n - 1)
    write_batch(settings.spool_dir, batch, batch_table(topic, partition, buf, CLUSTER))
    return batch


def _bronze_offsets(settings: Settings) -> list[tuple[int, int]]:
    root = settings.data_path / "lake" / "bronze" / settings.kafka.topic
    if not root.exists():
        return []
    t = ds.dataset(str(root), format="parquet", partitioning="hive").to_table(columns=["partition", "offset"])
    return sorted(zip(t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))


def _day(d: int):
    return lambda: datetime(2024, 3, d, 23, 59, tzinfo=UTC)


def test_upload_publishes_records_and_empties_spool(settings: Settings) -> None:
    batches = [_spool(settings, 0, 0, 5), _spool(settings, 1, 0, 3), _spool(settings, 0, 5, 2)]
    res = upload_spool(settings, clock=_day(4))
    assert (res.files, res.records, res.skipped_existing) == (3, 10, 0)
    assert _bronze_offsets(settings) == sorted([(0, i) for i in range(7)] + [(1, i) for i in range(3)])
    assert list(settings.spool_dir.iterdir()) == []
    entries = {e.file: e for e in read_manifest(settings)}
    assert set(entries) == {b.file_name for b in batches}
    e = entries[batches[0].file_name]
    lake = settings.data_path / "lake"
    path = Path(bronze_file(str(lake), settings.kafka.topic, "2024-03-04", batches[0]))
    assert e.path == bronze_file(settings.lake_root, settings.kafka.topic, "2024-03-04", batches[0])
    assert e.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (e.records, e.bytes, e.cluster_id, e.ingest_date) == (
        5,
        path.stat().st_size,
        CLUSTER,
        "2024-03-04",
    )
    assert (e.partition, e.first_offset, e.last_offset) == (0, 0, 4)
    assert pq.read_table(path).column("value").to_pylist()[0] == b'{"i": 0}'


def test_identical_file_again_is_skipped_not_duplicated(settings: Settings) -> None:
    _spool(settings, 0, 0, 4)
    upload_spool(settings, clock=_day(4))
    _spool(settings, 0, 0, 4)  # the same range again (a re-delivery)
    res = upload_spool(settings, clock=_day(5))
    assert (res.files, res.skipped_existing) == (0, 1)
    assert _bronze_offsets(settings) == [(0, i) for i in range(4)]
    assert list(settings.spool_dir.iterdir()) == []


def test_same_name_different_content_is_an_error(settings: Settings) -> None:
    batch = _spool(settings, 0, 0, 4)
    upload_spool(settings, clock=_day(4))
    _spool(settings, 0, 0, 4, salt=b" ")
    with pytest.raises(StateFileError, match=re.escape(batch.file_name)):
        upload_spool(settings, clock=_day(4))
    assert (settings.spool_dir / batch.file_name).exists()  # nothing is lost


def test_crash_after_publish_before_manifest_resumes_on_another_day(settings: Settings) -> None:
    batch = _spool(settings, 0, 0, 4)
    lake = settings.data_path / "lake"
    # State a kill leaves after the data file was published on day 4, before its manifest entry.
    published = Path(bronze_file(str(lake), settings.kafka.topic, "2024-03-04", batch))
    published.parent.mkdir(parents=True)
    published.write_bytes((settings.spool_dir / batch.file_name).read_bytes())
    res = upload_spool(settings, clock=_day(5))
    assert res.files == 1
    assert _bronze_offsets(settings) == [(0, i) for i in range(4)]  # not also under day 5
    (entry,) = read_manifest(settings)
    assert entry.ingest_date == "2024-03-04"
    assert entry.path == bronze_file(settings.lake_root, settings.kafka.topic, "2024-03-04", batch)


def test_crash_after_manifest_before_spool_delete(settings: Settings) -> None:
    batch = _spool(settings, 0, 0, 4)
    kept = (settings.spool_dir / batch.file_name).read_bytes()
    upload_spool(settings, clock=_day(4))
    (settings.spool_dir / batch.file_name).write_bytes(kept)  # as if the delete never happened
    res = upload_spool(settings, clock=_day(4))
    assert (res.files, res.skipped_existing) == (0, 1)
    assert _bronze_offsets(settings) == [(0, i) for i in range(4)]
    assert len(read_manifest(settings)) == 1


def test_temp_and_foreign_files_are_ignored(settings: Settings) -> None:
    settings.spool_dir.mkdir(parents=True)
    (settings.spool_dir / ".half.parquet.abcd.tmp").write_bytes(b"x")
    (settings.spool_dir / "readme.parquet").write_bytes(b"x")
    res = upload_spool(settings)
    assert (res.files, res.skipped_existing) == (0, 0)
    assert (settings.spool_dir / "readme.parquet").exists()
