"""The Power BI data source file and the BI documentation agree with the gold contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stockpipe.dashboard.queries import GOLD_TABLES

ROOT = Path(__file__).resolve().parents[2]


def test_pbids_is_a_snowflake_connection_with_placeholders() -> None:
    data = json.loads((ROOT / "deploy/powerbi/stockpipe-snowflake.pbids").read_text(encoding="utf-8"))
    assert data["version"] == "0.1"
    (connection,) = data["connections"]
    details = connection["details"]
    assert details["protocol"] == "snowflake"
    assert details["address"]["server"] == "<account>.snowflakecomputing.com"
    assert re.fullmatch(r"<[A-Z_]+>", details["address"]["warehouse"])
    assert connection["mode"] in {"Import", "DirectQuery"}


def test_powerbi_doc_names_every_gold_table_and_the_star_relationships() -> None:
    text = (ROOT / "docs/powerbi.md").read_text(encoding="utf-8")
    for table in GOLD_TABLES:
        assert f"`{table}`" in text, table
    assert "`fact_stock[company_id]` → `dim_companies[symbol]`" in text
    assert "`fact_stock[date_key]` → `dim_date[date_key]`" in text
    assert "stockpipe-snowflake.pbids" in text
    assert "stockpipe export --format parquet" in text
