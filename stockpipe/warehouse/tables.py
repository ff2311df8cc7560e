"""The warehouse's raw tables, defined once as Arrow schemas; DDL for every dialect derives from them.

``silver_stock_prices_schema()`` is the silver contract (``stockpipe.contract.silver``) as the
loader normalises it: whatever physical types a writer used (Spark INT96 timestamps, int64 vs
int32, ...) are cast to these before loading. ``RAW_TABLES`` maps each raw table to its schema;
``create_table_sql`` turns one into ``create table if not exists`` for DuckDB or Snowflake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from stockpipe.contract import companies, silver

if TYPE_CHECKING:
    import pyarrow as pa

Dialect = Literal["duckdb", "snowflake"]

STOCK_PRICES = "stock_prices"
COMPANIES = "companies"
QUARANTINE_SUMMARY = "quarantine_summary"
LOAD_HISTORY = "load_history"
DBT_RESULTS = "dbt_results"
FRESHNESS = "freshness"

_UTC_US = ("us", "UTC")


def silver_stock_prices_schema() -> pa.Schema:
    """Silver ``stock_prices`` columns in contract order (bar fields, then partition and lineage)."""
    return silver.silver_schema()


def silver_companies_schema() -> pa.Schema:
    """The companies contract (``contract/companies.py``)."""

    return companies.arrow_schema()


def raw_stock_prices_schema() -> pa.Schema:
    """Silver columns plus ``loaded_at`` (when the load that wrote the row started)."""
    import pyarrow as pa

    return silver_stock_prices_schema().append(pa.field("loaded_at", pa.timestamp(*_UTC_US)))


def quarantine_summary_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [pa.field("ingest_date", pa.date32()), pa.field("rule", pa.string()), pa.field("records", pa.int64())]
    )


def load_history_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("loaded_at", pa.timestamp(*_UTC_US)),
            pa.field("table_name", pa.string()),
            pa.field("partition_key", pa.string()),
            pa.field("rows", pa.int64()),
        ]
    )


def dbt_results_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("run_at", pa.timestamp(*_UTC_US)),
            pa.field("invocation", pa.string()),
            pa.field("node", pa.string()),
            pa.field("resource_type", pa.string()),
            pa.field("status", pa.string()),
            pa.field("message", pa.string()),
        ]
    )


def freshness_schema() -> pa.Schema:
    """One row per streaming cycle: produced_at -> visible in gold.fact_stock, in seconds."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("cycle_at", pa.timestamp(*_UTC_US)),
            pa.field("bars", pa.int64()),
            pa.field("p50_seconds", pa.float64()),
            pa.field("p95_seconds", pa.float64()),
            pa.field("max_seconds", pa.float64()),
        ]
    )


RAW_TABLES: dict[str, Callable[[], pa.Schema]] = {
    STOCK_PRICES: raw_stock_prices_schema,
    COMPANIES: silver_companies_schema,
    QUARANTINE_SUMMARY: quarantine_summary_schema,
    LOAD_HISTORY: load_history_schema,
    DBT_RESULTS: dbt_results_schema,
    FRESHNESS: freshness_schema,
}


def sql_type(arrow_type: pa.DataType, dialect: Dialect) -> str:
    """The SQL column type for an Arrow type (the few types the raw tables use)."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if dialect == "duckdb" else "timestamp_tz"
    simple: list[tuple[Callable[[pa.DataType], bool], str]] = [
        (pa.types.is_string, "varchar"),
        (pa.types.is_large_string, "varchar"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_float64, "double"),
        (pa.types.is_date32, "date"),
    ]
    for check, name in simple:
        if check(arrow_type):
            return name
    raise TypeError(f"no SQL type mapping for Arrow type {arrow_type}")


def create_table_sql(
    qualified_name: str, schema: pa.Schema, dialect: Dialect, quote: Callable[[str], str]
) -> str:
    """``create table if not exists`` DDL; ``qualified_name`` and ``quote`` handle identifiers."""
    columns = ", ".join(f"{quote(f.name)} {sql_type(f.type, dialect)}" for f in schema)
    return f"create table if not exists {qualified_name} ({columns})"
