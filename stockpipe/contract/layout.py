"""Where every layer lives and how its files are named. All stages import these helpers.

Lake (``Settings.lake_root``, a URI)::

    bronze/<topic>/ingest_date=YYYY-MM-DD/<topic>+<cluster>+<partition>+<first>+<last>.parquet
    bronze/_manifest/<topic>/<batch file name>.json      one entry per published file
    silver/stock_prices/trade_date=YYYY-MM-DD/*.parquet   clean bars (see docs/architecture.md)
    silver/quarantine/ingest_date=YYYY-MM-DD/*.parquet    rejected records with reasons
    silver/companies/*.parquet                            companies reference data
    silver/_state/                                        the cleaning job's ledger

Local data folder (``Settings.data_dir``)::

    spool/            consumer output waiting for upload (same file names as bronze)
    state/            broker state file, locks, load state, run summaries
    warehouse.duckdb  the embedded warehouse
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_SUFFIX = ".parquet"
_BATCH_RE = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<cluster>[0-9a-f]{12})\+(?P<partition>\d{5})"
    r"\+(?P<first>\d{20})\+(?P<last>\d{20})\.parquet$"
)


def cluster_tag(cluster_id: str) -> str:
    """12 hex chars naming a Kafka cluster in file names (offsets only mean something per cluster)."""
    return hashlib.sha1(cluster_id.encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, order=True)
class BatchId:
    """One partition's contiguous offset range ``[first, last]`` — the identity of a raw file.

    ``cluster`` is ``cluster_tag(<Kafka cluster id>)``: offsets restart on a new cluster (or a
    restarted in-memory embedded broker), so the cluster is part of a record's identity.
    """

    topic: str
    cluster: str
    partition: int
    first: int
    last: int

    @property
    def file_name(self) -> str:
        return (
            f"{self.topic}+{self.cluster}+{self.partition:05d}"
            f"+{self.first:020d}+{self.last:020d}{BATCH_SUFFIX}"
        )

    @classmethod
    def parse(cls, name: str) -> BatchId:
        m = _BATCH_RE.match(name.rsplit("/", 1)[-1])
        if not m:
            raise ValueError(f"{name!r} is not a stockpipe batch file name")
        return cls(m["topic"], m["cluster"], int(m["partition"]), int(m["first"]), int(m["last"]))


def raw_record_schema() -> pa.Schema:
    """Arrow schema of spool and bronze files: the Kafka record, value kept verbatim."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("topic", pa.string(), nullable=False),
            pa.field("partition", pa.int32(), nullable=False),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("kafka_ts", pa.timestamp("ms", tz="UTC")),
            pa.field("key", pa.binary()),
            pa.field("value", pa.binary()),
        ]
    )


def bronze_dir(lake_root: str, topic: str) -> str:
    return f"{lake_root}/bronze/{topic}"


def bronze_file(lake_root: str, topic: str, ingest_date: str, batch: BatchId) -> str:
    return f"{bronze_dir(lake_root, topic)}/ingest_date={ingest_date}/{batch.file_name}"


def bronze_manifest_dir(lake_root: str, topic: str) -> str:
    return f"{lake_root}/bronze/_manifest/{topic}"


def silver_dir(lake_root: str, dataset: str) -> str:
    """``dataset`` is one of ``stock_prices``, ``quarantine``, ``companies``, ``_state``."""
    return f"{lake_root}/silver/{dataset}"
