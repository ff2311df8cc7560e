"""What is where: row counts per layer, from the stores themselves (not from run logs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stockpipe.contract.layout import PRICE_DATASETS, silver_dir
from stockpipe.fsutil import atomic_write_text
from stockpipe.lake.bronze import read_manifest
from stockpipe.lake.fs import filesystem
from stockpipe.settings import Settings
from stockpipe.warehouse.connect import connect_warehouse


@dataclass
class LayerCounts:
    bronze_records: int = 0
    silver_rows: int = 0
    quarantine_rows: int = 0
    warehouse_raw_rows: int | None = None
    gold_fact_rows: int | None = None
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)


def _parquet_rows(settings: Settings, dataset: str) -> int:
    import pyarrow.dataset as ds

    fs, root = filesystem(settings)
    path = silver_dir(root, dataset)
    if not fs.exists(path):
        return 0
    return int(ds.dataset(path, format="parquet", filesystem=fs, partitioning="hive").count_rows())


def _bronze_records(settings: Settings) -> int:
    return sum(entry.records for entry in read_manifest(settings))


def _quarantine_by_rule(settings: Settings) -> dict[str, int]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    fs, root = filesystem(settings)
    path = silver_dir(root, "quarantine")
    if not fs.exists(path):
        return {}
    table = ds.dataset(path, format="parquet", filesystem=fs, partitioning="hive").to_table(
        columns=["failed_rules"]
    )
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(pc.list_flatten(table["failed_rules"]))
    return {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}


def _warehouse_counts(settings: Settings) -> tuple[int | None, int | None]:
    """Rows in raw.stock_prices and gold.fact_stock; ``None`` for a table not built yet."""

    if settings.warehouse.kind == "duckdb" and not settings.duckdb_path.exists():
        return None, None
    counts: list[int | None] = []
    with connect_warehouse(settings) as wh:
        for schema, table in ((wh.raw_schema, "stock_prices"), (wh.gold_schema, "fact_stock")):
            if table not in wh.existing_tables(schema):
                counts.append(None)
                continue
            rows = wh.query(f"select count(*) from {wh.qualified(table, schema)}")  # noqa: S608
            counts.append(int(rows[0][0]))
    return counts[0], counts[1]


def layer_counts(settings: Settings) -> LayerCounts:
    raw, gold = _warehouse_counts(settings)
    return LayerCounts(
        bronze_records=_bronze_records(settings),
        silver_rows=sum(_parquet_rows(settings, ds.name) for ds in PRICE_DATASETS),
        quarantine_rows=_parquet_rows(settings, "quarantine"),
        warehouse_raw_rows=raw,
        gold_fact_rows=gold,
        quarantine_by_rule=_quarantine_by_rule(settings),
    )


def write_status(settings: Settings, kind: str, summary: dict[str, Any]) -> None:
    """Record the last successful ``run`` or stream cycle (``kind``) for ``stockpipe status``."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / f"last_{kind}.json"
    atomic_write_text(path, json.dumps({"finished_at": datetime.now(UTC).isoformat(), **summary}, indent=2))


def record_cycle(settings: Settings, record: dict[str, Any]) -> None:
    """Keep a stream cycle: the latest in ``last_stream.json``, all in ``stream_cycles.jsonl``."""
    write_status(settings, "stream", record)
    with (settings.state_dir / "stream_cycles.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def read_status(settings: Settings, kind: str) -> dict[str, Any] | None:
    """The record ``write_status`` left, or ``None`` (an unreadable one is reported as such)."""
    path = settings.state_dir / f"last_{kind}.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"finished_at": f"unreadable status file {path}"}
    return data
