"""Drift: every derivation of the silver and quarantine contract, and of the interval table, agrees.

The contract (``stockpipe.contract.silver``) is held against the Spark schemas of the cleaning job
(through pyspark's own Spark -> Arrow mapping, and by a real Spark reading a file the test writer
made), the warehouse's raw table and DDL, the committed dbt sources file, the test writer and the
architecture doc.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pyarrow as pa
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from stockpipe.clean import transforms
from stockpipe.contract import silver
from stockpipe.contract.bar import DAILY_INTERVAL, INTERVAL_MINUTES, INTERVALS, Bar
from stockpipe.gold.sources import SOURCES_FILE
from stockpipe.sources import alphavantage_json, simulator, tabular
from stockpipe.warehouse import tables
from tests import helpers_silver

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

# how docs/architecture.md spells an Arrow type (first word of its "type" cell)
_DOC_TYPES = {
    "string": "string",
    "double": "double",
    "int64": "long",
    "int32": "int",
    "bool": "boolean",
    "date32[day]": "date",
    "timestamp[us, tz=UTC]": "timestamp",
}


def _spark_as_arrow(spark_schema: typing.Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema, timezone="UTC")


def _dbt_columns(table: str) -> list[tuple[str, str]]:
    doc = yaml.safe_load(SOURCES_FILE.read_text(encoding="utf-8"))
    (source,) = doc["sources"]
    (entry,) = [t for t in source["tables"] if t["name"] == table]
    return [(c["name"], c["data_type"]) for c in entry["columns"]]


def test_column_tuples_are_the_schemas_names() -> None:
    assert tuple(silver.silver_schema().names) == silver.SILVER_COLUMNS
    assert tuple(silver.quarantine_schema().names) == silver.QUARANTINE_COLUMNS
    assert transforms.SILVER_COLUMNS == silver.SILVER_COLUMNS
    assert transforms.QUARANTINE_COLUMNS == silver.QUARANTINE_COLUMNS
    # silver starts with the bar contract, in order
    assert silver.SILVER_COLUMNS[: len(Bar.model_fields)] == tuple(Bar.model_fields)


def test_spark_schemas_map_back_to_the_contract() -> None:
    pytest.importorskip("pyspark")
    assert _spark_as_arrow(transforms.silver_schema()).equals(silver.silver_schema())
    assert _spark_as_arrow(transforms.quarantine_schema()).equals(silver.quarantine_schema())


def test_warehouse_raw_table_is_the_contract_plus_loaded_at() -> None:
    assert tables.silver_stock_prices_schema().equals(silver.silver_schema())
    raw = tables.raw_stock_prices_schema()
    assert raw.remove(raw.get_field_index("loaded_at")).equals(silver.silver_schema())


def test_committed_dbt_sources_match_the_warehouse_table() -> None:
    expected = [(f.name, tables.sql_type(f.type, "snowflake")) for f in tables.raw_stock_prices_schema()]
    assert _dbt_columns(tables.STOCK_PRICES) == expected
    # the dbt test of accepted intervals is the interval table
    doc = yaml.safe_load(SOURCES_FILE.read_text(encoding="utf-8"))
    (stock_prices,) = [t for t in doc["sources"][0]["tables"] if t["name"] == tables.STOCK_PRICES]
    (interval,) = [c for c in stock_prices["columns"] if c["name"] == "interval"]
    accepted = [t["accepted_values"] for t in interval["data_tests"] if isinstance(t, dict)]
    assert accepted == [{"arguments": {"values": list(INTERVALS)}}]


def test_the_test_writer_uses_the_contract() -> None:
    assert helpers_silver.STOCK_PRICES_SCHEMA.equals(silver.silver_schema())
    assert helpers_silver.make_bars(days=1, bars_per_day=2).schema.equals(silver.silver_schema())
    quarantine = helpers_silver.make_quarantine(
        helpers_silver.trading_days(helpers_silver.date(2024, 3, 4), 1)[0]
    )
    stored = silver.without_partition(silver.quarantine_schema(), silver.QUARANTINE_PARTITION)
    assert quarantine.schema.equals(stored)


def test_architecture_doc_silver_table_has_the_contract_names_and_types() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("## 3. Silver") :]
    documented: list[tuple[str, str]] = []
    for line in section.splitlines()[1:]:
        m = re.match(r"^\| ([a-z_, ]+) \| ([a-z]+)", line)
        if m and m[1].strip() != "column":
            documented += [(n.strip(), m[2]) for n in m[1].split(",")]
        elif documented and not line.startswith("|"):
            break
    assert documented == [(f.name, _DOC_TYPES[str(f.type)]) for f in silver.silver_schema()]
    # the quarantine paragraph lists the stored columns in order
    paragraph = section[
        section.index("`<lake>/silver/quarantine/") : section.index("Quarantine files are named")
    ]
    names = re.findall(r"\b([a-z_]+)(?: \([a-z<>]+\))?[,`]", paragraph.split(":", 1)[1])
    stored = silver.without_partition(silver.quarantine_schema(), silver.QUARANTINE_PARTITION)
    assert names == stored.names


def test_interval_table_is_the_one_every_source_uses() -> None:
    assert tuple(INTERVAL_MINUTES) == INTERVALS
    assert typing.get_args(Bar.model_fields["interval"].annotation) == INTERVALS
    assert list(simulator.MINUTES_PER_BAR) == list(INTERVALS)
    assert simulator.MINUTES_PER_BAR[DAILY_INTERVAL] is None
    assert {k: v for k, v in simulator.MINUTES_PER_BAR.items() if v is not None} == {
        k: v for k, v in INTERVAL_MINUTES.items() if k != DAILY_INTERVAL
    }
    assert tabular.GAP_INTERVALS == {60: "1min", 300: "5min", 900: "15min", 1800: "30min", 3600: "60min"}
    assert set(alphavantage_json._INTERVALS.values()) == set(INTERVALS)


@pytest.mark.integration
def test_spark_reads_the_test_writers_silver_with_the_contract_schema(
    spark: typing.Any, tmp_path: Path
) -> None:
    ds = helpers_silver.write_silver(tmp_path / "lake", days=1, bars_per_day=3)
    df = spark.read.parquet(str(tmp_path / "lake" / "silver" / "stock_prices"))
    # Spark infers the partition column's type from the folder names and appends it last
    inferred = {f.name: f.dataType for f in df.schema.fields}
    assert inferred == {f.name: f.dataType for f in transforms.silver_schema().fields}
    typed = spark.read.schema(transforms.silver_schema()).parquet(
        str(tmp_path / "lake" / "silver" / "stock_prices")
    )
    assert typed.count() == ds.stock_prices.num_rows
