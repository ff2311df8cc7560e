"""The spool: durable, atomically named Parquet batch files waiting for upload to bronze.

A batch file is written to a hidden temp name, fsynced, renamed to ``BatchId.file_name``
and the directory fsynced, so a file under its final name is always complete. The
Kafka cluster id is stored in the file's key-value metadata (``stockpipe.cluster_id``)
so the upload can record it without asking the cluster (the layout: ``contract/spool.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stockpipe.contract.layout import BatchId, raw_record_schema
from stockpipe.contract.spool import CLUSTER_ID_KEY
from stockpipe.errors import StorageError
from stockpipe.fsutil import TEMP_PREFIX, TEMP_SUFFIX, atomic_write

if TYPE_CHECKING:
    import pyarrow as pa

COMPRESSION = "zstd"


@dataclass
class PartitionBuffer:
    """Records of one partition, in offset order, not yet written."""

    offsets: list[int] = field(default_factory=list)
    timestamps: list[int | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    started: float = 0.0  # monotonic time of the first buffered record

    def __len__(self) -> int:
        return len(self.offsets)

    def clear(self) -> None:
        self.offsets.clear()
        self.timestamps.clear()
        self.keys.clear()
        self.values.clear()

    def extend(
        self,
        offsets: list[int],
        timestamps: list[int | None],
        keys: list[bytes | None],
        values: list[bytes | None],
    ) -> None:
        """Append records given as columns (offsets ascending, after the buffered ones)."""
        self.offsets.extend(offsets)
        self.timestamps.extend(timestamps)
        self.keys.extend(keys)
        self.values.extend(values)

    def take(self, count: int) -> PartitionBuffer:
        """Remove and return the first ``count`` records (the rest stay buffered)."""
        head = PartitionBuffer(
            self.offsets[:count],
            self.timestamps[:count],
            self.keys[:count],
            self.values[:count],
            self.started,
        )
        del self.offsets[:count], self.timestamps[:count], self.keys[:count], self.values[:count]
        return head


def batch_table(topic: str, partition: int, buf: PartitionBuffer, cluster_id: str) -> pa.Table:
    """The buffered records as an Arrow table with ``layout.raw_record_schema()``."""
    import pyarrow as pa

    n = len(buf)
    schema = raw_record_schema().with_metadata({CLUSTER_ID_KEY: cluster_id.encode()})
    columns = [
        pa.repeat(pa.scalar(topic, pa.string()), n),
        pa.repeat(pa.scalar(partition, pa.int32()), n),
        pa.array(buf.offsets, pa.int64()),
        pa.array(buf.timestamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array(buf.keys, pa.binary()),
        pa.array(buf.values, pa.binary()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_batch(spool_dir: Path, batch: BatchId, table: pa.Table) -> Path:
    """Write ``table`` durably under ``batch.file_name`` (temp file, fsync, rename, dir fsync)."""
    import pyarrow.parquet as pq

    final = spool_dir / batch.file_name
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(final) as fh:
            pq.write_table(table, fh, compression=COMPRESSION)
    except OSError as exc:  # disk full, read-only, not a folder: one sentence naming the file
        raise StorageError(f"Cannot write the spool file {final}: {exc.strerror or exc}.") from exc
    return final


def clean_temp_files(spool_dir: Path) -> int:
    """Delete temp files a crashed writer left behind; returns how many."""
    if not spool_dir.is_dir():
        return 0
    removed = 0
    for p in spool_dir.iterdir():
        if p.name.startswith(TEMP_PREFIX) and p.name.endswith(TEMP_SUFFIX):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def highest_offsets(batches: Iterable[BatchId], topic: str, cluster: str) -> dict[int, int]:
    """Per partition, the highest last offset among ``batches`` of ``topic`` on ``cluster``."""
    best: dict[int, int] = {}
    for b in batches:
        if b.topic == topic and b.cluster == cluster and b.last > best.get(b.partition, -1):
            best[b.partition] = b.last
    return best
