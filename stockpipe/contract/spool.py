"""The spool's file layout, shared by its writer (``ingest``) and its reader (``lake``).

Complete batch files are named ``BatchId.file_name``; a file still being written has a hidden temp
name (``.<name>.<random>.tmp``). The Kafka cluster id is kept in each file's key-value metadata
(``stockpipe.cluster_id``) so the upload can record it without asking the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stockpipe.contract.layout import BATCH_SUFFIX, BatchId
from stockpipe.fsutil import TEMP_PREFIX

CLUSTER_ID_KEY = b"stockpipe.cluster_id"


def spool_files(spool_dir: Path) -> list[Path]:
    """Complete batch files in the spool, sorted by name (temp files excluded)."""
    if not spool_dir.is_dir():
        return []
    return sorted(
        p for p in spool_dir.iterdir() if p.name.endswith(BATCH_SUFFIX) and not p.name.startswith(TEMP_PREFIX)
    )


def spool_batches(spool_dir: Path) -> list[BatchId]:
    """Batch ids of the complete spool files (names that do not parse are ignored)."""
    out = []
    for p in spool_files(spool_dir):
        try:
            out.append(BatchId.parse(p.name))
        except ValueError:
            continue
    return out


def file_cluster_id(path: Any) -> str | None:
    """The Kafka cluster id stored in a batch file's metadata (None for foreign files)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(CLUSTER_ID_KEY)
    return raw.decode() if raw else None
