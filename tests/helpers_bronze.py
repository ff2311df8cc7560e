"""Write bronze files and their manifest entries exactly as docs/architecture.md says.

Other stages' tests may reuse this to fabricate a lake without running Kafka::

    lake = settings.lake_root
    write_bronze(lake, [bar_json(symbol="AAPL"), b"not json"], ingest_date="2024-03-04")

Each call writes one bronze file (one Kafka partition, a contiguous offset range) under
``<lake>/bronze/<topic>/ingest_date=<date>/`` and its manifest entry under
``<lake>/bronze/_manifest/<topic>/<file>.json``. ``lake`` may be a ``file://`` URI or a path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from stockpipe.contract.layout import (
    BatchId,
    bronze_file,
    bronze_manifest_dir,
    cluster_tag,
    raw_record_schema,
)

TOPIC = "stock-prices"
CLUSTER_ID = "test-cluster"
KAFKA_TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def local_path(uri: str) -> Path:
    """A ``file://`` URI (or plain path) as a local Path."""
    return Path(urlparse(uri).path) if uri.startswith("file://") else Path(uri)


def bar_dict(**overrides: Any) -> dict[str, Any]:
    """A valid contract bar as a JSON-ready dict (2024-03-04 09:30 New York, regular session)."""
    bar: dict[str, Any] = {
        "symbol": "AAPL",
        "interval": "1min",
        "bar_ts": "2024-03-04T09:30:00-05:00",
        "open": 10.0,
        "high": 11.0,
        "low": 9.5,
        "close": 10.5,
        "volume": 100,
        "source": "test",
        "produced_at": "2024-03-04T14:31:00Z",
        "schema_version": 1,
    }
    bar.update(overrides)
    return bar


def bar_json(drop: Sequence[str] = (), **overrides: Any) -> bytes:
    """A bar message value; ``drop`` removes fields, overrides replace values."""
    bar = bar_dict(**overrides)
    for name in drop:
        bar.pop(name)
    return json.dumps(bar).encode()


@dataclass(frozen=True)
class BronzeFile:
    batch: BatchId
    uri: str
    ingest_date: str
    records: int


def write_bronze(
    lake: str,
    values: Sequence[bytes | None],
    *,
    ingest_date: str = "2024-03-04",
    partition: int = 0,
    first_offset: int = 0,
    topic: str = TOPIC,
    cluster_id: str = CLUSTER_ID,
    keys: Sequence[bytes | None] | None = None,
    manifest: bool = True,
) -> BronzeFile:
    """Write one bronze Parquet file (+ manifest entry) holding ``values`` as consecutive offsets."""
    n = len(values)
    batch = BatchId(topic, cluster_tag(cluster_id), partition, first_offset, first_offset + n - 1)
    uri = bronze_file(lake, topic, ingest_date, batch)
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keys is None:
        keys = [_key_of(v) for v in values]
    table = pa.table(
        {
            "topic": pa.array([topic] * n, pa.string()),
            "partition": pa.array([partition] * n, pa.int32()),
            "offset": pa.array(range(first_offset, first_offset + n), pa.int64()),
            "kafka_ts": pa.array(
                [KAFKA_TS + timedelta(milliseconds=i) for i in range(n)], pa.timestamp("ms", tz="UTC")
            ),
            "key": pa.array(list(keys), pa.binary()),
            "value": pa.array(list(values), pa.binary()),
        },
        schema=raw_record_schema(),
    )
    pq.write_table(table, path)
    if manifest:
        write_manifest_entry(lake, batch, path, ingest_date=ingest_date, cluster_id=cluster_id, records=n)
    return BronzeFile(batch, uri, ingest_date, n)


def write_manifest_entry(
    lake: str, batch: BatchId, path: Path, *, ingest_date: str, cluster_id: str, records: int
) -> Path:
    """The manifest JSON for one bronze file (written after the data file, like the uploader)."""
    data = path.read_bytes()
    entry = {
        "file": batch.file_name,
        "path": bronze_file(lake, batch.topic, ingest_date, batch),
        "topic": batch.topic,
        "cluster_id": cluster_id,
        "partition": batch.partition,
        "first_offset": batch.first,
        "last_offset": batch.last,
        "records": records,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "ingest_date": ingest_date,
        "uploaded_at": datetime.now(UTC).isoformat(),
    }
    out = local_path(bronze_manifest_dir(lake, batch.topic)) / f"{batch.file_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entry))
    return out


def _key_of(value: bytes | None) -> bytes | None:
    if value is None:
        return b"AAPL"
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return str(doc.get("symbol", "")).encode() if isinstance(doc, dict) else None


def ny(day: str, hhmm: str) -> str:
    """An ISO timestamp in New York winter time (EST, -05:00), e.g. ``ny("2024-03-04", "09:30")``."""
    return f"{day}T{hhmm}:00-05:00"


@dataclass(frozen=True)
class Scenario:
    """A small lake exercising every bad input; the expected counts are worked out by hand."""

    files: list[BronzeFile]
    records: int = 31
    quarantined: int = 10
    duplicates: int = 2
    silver_rows: int = 19
    by_rule: tuple[tuple[str, int], ...] = (
        ("bad_type_close", 1),
        ("close_outside_range", 1),  # high < low also puts close outside [low, high]
        ("high_below_low", 1),
        ("missing_close", 1),
        ("not_json", 1),
        ("not_object", 1),
        ("open_outside_range", 2),
        ("timestamp_without_offset", 1),
        ("tombstone", 1),
        ("unknown_interval", 1),
        ("volume_negative", 1),
    )
    dates: tuple[str, ...] = ("2024-03-04", "2024-03-05", "2024-03-06")
    months: tuple[str, ...] = ("2024-03",)  # the MSFT daily bar of 2024-03-06

    @property
    def partitions(self) -> list[str]:
        """The silver partitions a clean of the scenario writes (paths under ``silver/``)."""
        return [f"stock_prices/trade_date={d}" for d in self.dates] + [
            f"stock_prices_daily/trade_month={m}" for m in self.months
        ]


def write_scenario(lake: str) -> Scenario:
    """Three bronze files over three ingest dates (see ``Scenario`` for the expected outcome)."""
    d1, d2, d3 = "2024-03-04", "2024-03-05", "2024-03-06"
    a_good = [bar_json(bar_ts=ny(d1, f"09:{30 + i}")) for i in range(10)]
    a_bad: list[bytes | None] = [
        b"not json",
        None,
        bar_json(drop=["close"], bar_ts=ny(d1, "10:00")),
        bar_json(close="abc", bar_ts=ny(d1, "10:01")),
        bar_json(volume=-1, bar_ts=ny(d1, "10:02")),
        bar_json(high=9.0, low=9.6, open=9.5, close=9.4, bar_ts=ny(d1, "10:03")),
        bar_json(open=12.0, bar_ts=ny(d1, "10:04")),
        bar_json(bar_ts=f"{d1}T10:05:00"),
        bar_json(interval="2min", bar_ts=ny(d1, "10:06")),
        b"[1]",
    ]
    a_zones = [
        bar_json(bar_ts="2024-03-04T23:40:00+09:00"),  # 09:40 New York, given in Tokyo time
        bar_json(bar_ts=1709563260000),  # 09:41 New York, epoch milliseconds
    ]
    file_a = write_bronze(lake, [*a_good, *a_bad, *a_zones], ingest_date=d1, partition=0, first_offset=0)
    b_values = [bar_json(symbol="MSFT", bar_ts=ny(d2, f"09:{30 + i}")) for i in range(5)]
    b_values.append(bar_json(symbol="MSFT", bar_ts=ny(d2, "09:30")))  # exact duplicate
    b_values.append(bar_json(close=10.9, bar_ts=ny(d1, "09:31"), produced_at="2024-03-05T10:00:00Z"))
    file_b = write_bronze(lake, b_values, ingest_date=d2, partition=1, first_offset=0)
    c_values = [
        bar_json(symbol="MSFT", bar_ts=ny(d3, "09:30")),
        bar_json(symbol="MSFT", interval="1day", bar_ts=ny(d3, "00:00")),
    ]
    file_c = write_bronze(lake, c_values, ingest_date=d3, partition=0, first_offset=22)
    return Scenario(files=[file_a, file_b, file_c])
