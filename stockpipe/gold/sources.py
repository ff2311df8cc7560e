"""Generate ``dbt/models/staging/_sources.yml`` from the contract (a unit test keeps it in sync).

The ``stock_prices`` columns come from ``stockpipe.contract.dbt_source_columns()`` (the bar
contract) followed by the silver partition/lineage columns and ``loaded_at`` — the same
order as the raw table (``stockpipe.warehouse.tables``).

    python -m stockpipe.gold.sources          # rewrite the file
    python -m stockpipe.gold.sources --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from stockpipe.contract import INTERVALS, dbt_source_columns
from stockpipe.contract.silver import SILVER_FIELDS
from stockpipe.fsutil import atomic_write_text
from stockpipe.warehouse import tables

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "staging" / "_sources.yml"

# The raw schema: the runner's var, else the same STOCKPIPE_* variable stockpipe reads (dbt CLI).
RAW_SCHEMA = (
    "{{ var('raw_schema', env_var('STOCKPIPE_SNOWFLAKE_RAW_SCHEMA', 'RAW') | upper"
    " if target.type == 'snowflake' else env_var('STOCKPIPE_WAREHOUSE_RAW_SCHEMA', 'raw')) }}"
)


# Freshness applies to live bars only (settings.dbt.freshness_*; the runner passes them as vars,
# dbt's own CLI reads the same STOCKPIPE_DBT_* variables): a bar is live when its bar_ts is at
# most the live window before its load. The newest live load must be younger than the
# thresholds; with no live bar (a replayed history, or an empty table after a fully quarantined
# batch) the query answers "now", so there is nothing to be stale.
def _setting(name: str, default: int) -> str:
    """Jinja for an hours setting: the runner's var, else STOCKPIPE_DBT_<NAME>, else the default."""
    env = "STOCKPIPE_DBT_" + name.upper()
    return f"(var('{name}', env_var('{env}', '{default}')) | int)"


FRESHNESS = {
    "warn_after": {"count": "{{ " + _setting("freshness_warn_hours", 24) + " }}", "period": "hour"},
    "error_after": {"count": "{{ " + _setting("freshness_error_hours", 72) + " }}", "period": "hour"},
}
LOADED_AT_QUERY = (
    "select coalesce(max(loaded_at), {{ current_timestamp() }}) from {{ this }} where bar_ts >= "  # noqa: S608
    "{{ dbt.dateadd('hour', -1 * " + _setting("freshness_live_window_hours", 96) + ", 'loaded_at') }}"
)

_LOADED_AT_DESCRIPTION = (
    "When the warehouse load that wrote this row started (UTC); drives source freshness of live bars"
)
_NOT_NULL = {
    "symbol",
    "interval",
    "bar_ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_date",
    "loaded_at",
}

_COMPANY_DESCRIPTIONS: dict[str, str] = {
    "symbol": "Ticker symbol",
    "asset_type": "Asset type (e.g. Common Stock)",
    "name": "Company name",
    "description": "Company description",
    "exchange": "Listing exchange",
    "sector": "Sector",
    "industry": "Industry",
}


def _stock_price_columns() -> list[dict[str, Any]]:
    descriptions = {f.name: f.description for f in SILVER_FIELDS}
    descriptions["loaded_at"] = _LOADED_AT_DESCRIPTION
    columns: list[dict[str, Any]] = [dict(c) for c in dbt_source_columns()]
    contract_names = {c["name"] for c in columns}
    for f in tables.raw_stock_prices_schema():
        if f.name not in contract_names:
            columns.append(
                {
                    "name": f.name,
                    "description": descriptions[f.name],
                    "data_type": tables.sql_type(f.type, "snowflake"),
                }
            )
    for column in columns:
        tests: list[Any] = []
        if column["name"] in _NOT_NULL:
            tests.append("not_null")
        if column["name"] == "interval":
            tests.append({"accepted_values": {"arguments": {"values": list(INTERVALS)}}})
        if tests:
            column["data_tests"] = tests
    return columns


def sources_document() -> dict[str, Any]:
    """The ``_sources.yml`` document as data."""
    companies = [
        {"name": f.name, "description": _COMPANY_DESCRIPTIONS[f.name], "data_type": "varchar"}
        for f in tables.silver_companies_schema()
    ]
    companies[0]["data_tests"] = ["not_null"]
    quarantine = [
        {
            "name": "ingest_date",
            "description": "Bronze partition of the rejected records",
            "data_type": "date",
            "data_tests": ["not_null"],
        },
        {
            "name": "rule",
            "description": "Validation rule name (snake_case, stable)",
            "data_type": "varchar",
            "data_tests": ["not_null"],
        },
        {
            "name": "records",
            "description": "Records that failed the rule (a record counts once per rule)",
            "data_type": "bigint",
            "data_tests": ["not_null"],
        },
    ]
    stock_prices = {
        "name": tables.STOCK_PRICES,
        "description": "Clean bars from silver, one row per (symbol, interval, bar_ts).",
        "config": {"loaded_at_query": LOADED_AT_QUERY, "freshness": FRESHNESS},
        "data_tests": [
            {
                "unique_combination": {
                    "name": "raw_stock_prices_one_row_per_bar",
                    "arguments": {"combination_of_columns": ["symbol", "interval", "bar_ts"]},
                }
            },
            {
                "ohlc_consistent": {
                    "name": "raw_stock_prices_ohlc_consistent",
                    "arguments": {
                        "open_column": "open",
                        "high_column": "high",
                        "low_column": "low",
                        "close_column": "close",
                    },
                }
            },
        ],
        "columns": _stock_price_columns(),
    }
    return {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "description": "Tables written by `stockpipe load`.",
                "schema": RAW_SCHEMA,
                "tables": [
                    stock_prices,
                    {
                        "name": tables.COMPANIES,
                        "description": "Companies reference data from silver.",
                        "columns": companies,
                    },
                    {
                        "name": tables.QUARANTINE_SUMMARY,
                        "description": "Quarantine counts per ingest date and rule.",
                        "columns": quarantine,
                    },
                ],
            }
        ],
    }


def render_sources_yml() -> str:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    header = "# Generated by `python -m stockpipe.gold.sources` from the contract. Do not edit.\n"
    return header + yaml.safe_dump(sources_document(), sort_keys=False, width=110, allow_unicode=True)


def write_generated(path: Path, text: str, module: str, argv: list[str] | None) -> int:
    """The ``main`` of a generator module: write ``path``, or with ``--check`` exit 1 when the
    committed file differs from ``text`` (``python -m <module>`` regenerates it)."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m {module}")
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_generated(SOURCES_FILE, render_sources_yml(), "stockpipe.gold.sources", argv)


if __name__ == "__main__":
    raise SystemExit(main())
