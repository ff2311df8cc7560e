"""Spool batch files: schema, atomic naming, temp cleanup, resume offsets."""

from __future__ import annotations

import pyarrow.parquet as pq

from stockpipe.contract.layout import BatchId, raw_record_schema
from stockpipe.contract.spool import file_cluster_id, spool_batches, spool_files
from stockpipe.ingest.spool import (
    PartitionBuffer,
    batch_table,
    clean_temp_files,
    highest_offsets,
    write_batch,
)


def _buf(first: int, n: int) -> PartitionBuffer:
    buf = PartitionBuffer()
    for i in range(n):
        buf.offsets.append(first + i)
        buf.timestamps.append(1_700_000_000_000 + i if i % 3 else None)
        buf.keys.append(b"AAPL" if i % 2 else None)
        buf.values.append(b'{"x": %d}' % i if i % 4 else None)
    return buf


def test_batch_table_matches_contract_and_keeps_values_verbatim() -> None:
    buf = _buf(10, 8)
    table = batch_table("t", 2, buf, "cluster-1")
    assert table.schema.equals(raw_record_schema())
    assert table.column("offset").to_pylist() == list(range(10, 18))
    assert table.column("partition").to_pylist() == [2] * 8
    assert table.column("topic").to_pylist() == ["t"] * 8
    assert table.column("value").to_pylist() == buf.values
    assert table.column("key").to_pylist() == buf.keys
    ts = table.column("kafka_ts").to_pylist()
    assert ts[0] is None
    assert ts[1] is not None
    assert int(ts[1].timestamp() * 1000) == 1_700_000_000_001


def test_write_batch_is_named_from_range_and_cleans_temps(tmp_path) -> None:
    batch = BatchId("t", "abcdefabcdef", 1, 10, 17)
    path = write_batch(tmp_path, batch, batch_table("t", 1, _buf(10, 8), "cluster-1"))
    assert path.name == batch.file_name
    assert pq.read_table(path).num_rows == 8
    assert file_cluster_id(path) == "cluster-1"
    (tmp_path / f".{batch.file_name}.1234.tmp").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("x")
    assert spool_files(tmp_path) == [path]
    assert spool_batches(tmp_path) == [batch]
    assert clean_temp_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([batch.file_name, "notes.txt"])


def test_highest_offsets_per_partition_same_topic_and_cluster_only() -> None:
    batches = [
        BatchId("t", "aaaaaaaaaaaa", 0, 0, 9),
        BatchId("t", "aaaaaaaaaaaa", 0, 10, 19),
        BatchId("t", "aaaaaaaaaaaa", 1, 0, 4),
        BatchId("t", "bbbbbbbbbbbb", 1, 0, 99),  # another cluster
        BatchId("u", "aaaaaaaaaaaa", 2, 0, 99),  # another topic
    ]
    assert highest_offsets(batches, "t", "aaaaaaaaaaaa") == {0: 19, 1: 4}
