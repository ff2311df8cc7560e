from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from stockpipe.contract import arrow_schema
from stockpipe.settings import quote_identifier
from stockpipe.warehouse import tables
from tests import helpers_silver

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _doc_table_columns(section_start: str) -> list[str]:
    """Column names of the first markdown table after a heading in docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    section = text[text.index(section_start) :]
    names: list[str] = []
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        m = re.match(r"^\| ([a-z_, ]+) \|", line)
        if m and m[1].strip() != "column":
            names += [n.strip() for n in m[1].split(",")]
        elif names and not line.startswith("|"):
            break
    return names


def test_silver_schema_matches_the_architecture_doc() -> None:
    documented = _doc_table_columns("## 3. Silver")
    assert documented == tables.silver_stock_prices_schema().names


def test_silver_schema_starts_with_the_bar_contract_and_matches_the_test_writer() -> None:
    silver = tables.silver_stock_prices_schema()
    assert silver.names[: len(arrow_schema())] == arrow_schema().names
    # the test helper writes the layout independently; both must agree on names and types
    assert silver.equals(helpers_silver.STOCK_PRICES_SCHEMA)
    assert tables.silver_companies_schema().equals(helpers_silver.COMPANIES_SCHEMA)


def test_raw_stock_prices_is_silver_plus_loaded_at() -> None:
    raw = tables.raw_stock_prices_schema()
    assert raw.names == [*tables.silver_stock_prices_schema().names, "loaded_at"]
    assert raw.field("loaded_at").type == pa.timestamp("us", tz="UTC")


def test_raw_tables_have_the_documented_columns() -> None:
    names = {name: schema().names for name, schema in tables.RAW_TABLES.items()}
    assert names[tables.QUARANTINE_SUMMARY] == ["ingest_date", "rule", "records"]
    assert names[tables.LOAD_HISTORY] == ["loaded_at", "table_name", "partition_key", "rows"]
    assert names[tables.DBT_RESULTS] == ["run_at", "invocation", "node", "resource_type", "status", "message"]


@pytest.mark.parametrize(
    ("arrow_type", "duckdb", "snowflake"),
    [
        (pa.string(), "varchar", "varchar"),
        (pa.int32(), "integer", "integer"),
        (pa.int64(), "bigint", "bigint"),
        (pa.float64(), "double", "double"),
        (pa.bool_(), "boolean", "boolean"),
        (pa.date32(), "date", "date"),
        (pa.timestamp("us", tz="UTC"), "timestamptz", "timestamp_tz"),
    ],
)
def test_sql_types(arrow_type: pa.DataType, duckdb: str, snowflake: str) -> None:
    assert tables.sql_type(arrow_type, "duckdb") == duckdb
    assert tables.sql_type(arrow_type, "snowflake") == snowflake


def test_unmapped_type_is_refused() -> None:
    with pytest.raises(TypeError):
        tables.sql_type(pa.list_(pa.string()), "duckdb")


def test_create_table_sql_quotes_every_identifier() -> None:
    ddl = tables.create_table_sql(
        '"raw"."quarantine_summary"', tables.quarantine_summary_schema(), "duckdb", quote_identifier
    )
    assert ddl == (
        'create table if not exists "raw"."quarantine_summary" '
        '("ingest_date" date, "rule" varchar, "records" bigint)'
    )
    upper = tables.create_table_sql(
        "T", tables.load_history_schema(), "snowflake", lambda n: quote_identifier(n.upper())
    )
    assert '"LOADED_AT" timestamp_tz' in upper
    assert '"ROWS" bigint' in upper
