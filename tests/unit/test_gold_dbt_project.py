"""The dbt project's generated and hand-written YAML: in sync with the contract and complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from stockpipe.contract import dbt_source_columns
from stockpipe.gold import exchanges as dbt_exchanges
from stockpipe.gold import sources as dbt_sources
from stockpipe.sources.calendar import exchange_zone, resolve_exchange
from stockpipe.warehouse import tables

DBT = Path(__file__).resolve().parents[2] / "dbt"
SEED_COLUMNS = {
    "fact_stock": [
        "id",
        "company_id",
        "date_key",
        "open_price",
        "close_price",
        "high_price",
        "low_price",
        "volume",
    ],
    "dim_companies": ["symbol", "asset_type", "name", "sector", "industry", "description"],
    "dim_date": [
        "date",
        "date_key",
        "year",
        "month",
        "day",
        "day_of_week",
        "quarter",
        "week",
        "hour",
        "minute",
    ],
}


def test_committed_sources_yml_is_generated_from_the_contract() -> None:
    assert dbt_sources.SOURCES_FILE.read_text(encoding="utf-8") == dbt_sources.render_sources_yml()
    assert dbt_sources.main(["--check"]) == 0


def test_committed_exchange_timezones_model_is_generated_from_exchange_calendars() -> None:
    assert dbt_exchanges.MODEL_FILE.read_text(encoding="utf-8") == dbt_exchanges.render_model()
    assert dbt_exchanges.main(["--check"]) == 0
    rows = {name: (code, zone) for name, code, zone in dbt_exchanges.exchange_timezones()}
    # the names the cleaning job accepts resolve to the same calendar and zone here
    for name in ("NASDAQ", "NYSE", "XNYS", "LSE", "XLON", "XAMS", "XSHG"):
        code = resolve_exchange(name)
        assert rows[name] == (code, str(exchange_zone(code))), name
    assert rows["LSE"] == ("XLON", "Europe/London")


def test_stock_prices_source_columns_follow_contract_then_raw_table() -> None:
    doc = yaml.safe_load(dbt_sources.SOURCES_FILE.read_text())
    (source,) = doc["sources"]
    stock = next(t for t in source["tables"] if t["name"] == "stock_prices")
    columns = stock["columns"]
    contract = dbt_source_columns()
    assert [
        {k: c[k] for k in ("name", "description", "data_type")} for c in columns[: len(contract)]
    ] == contract
    assert [c["name"] for c in columns] == tables.raw_stock_prices_schema().names
    query = stock["config"]["loaded_at_query"]  # freshness of live bars only (see gold/freshness.py)
    assert "max(loaded_at)" in query
    assert "freshness_live_window_hours" in query
    assert "freshness_error_hours" in stock["config"]["freshness"]["error_after"]["count"]
    assert "freshness_warn_hours" in stock["config"]["freshness"]["warn_after"]["count"]
    assert {t["name"] for t in source["tables"]} == {"stock_prices", "companies", "quarantine_summary"}


def _model_docs() -> dict[str, dict[str, Any]]:
    models = {}
    for path in (DBT / "models").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            models[model["name"]] = {**model, "_yml": path}
    return models


def test_every_model_has_its_own_yml_with_tests() -> None:
    docs = _model_docs()
    sql = {p.stem: p for p in (DBT / "models").rglob("*.sql")}
    assert set(docs) == set(sql)
    for name, doc in docs.items():
        assert doc["_yml"].stem == name
        tests = doc.get("data_tests", []) + [
            t for c in doc.get("columns", []) for t in c.get("data_tests", [])
        ]
        assert tests, f"{name} has no tests"


def test_gold_models_have_every_seed_column_documented() -> None:
    docs = _model_docs()
    for model, seed_columns in SEED_COLUMNS.items():
        documented = [c["name"] for c in docs[model]["columns"]]
        assert set(seed_columns) <= set(documented), (model, set(seed_columns) - set(documented))


def test_relationships_point_at_existing_models() -> None:
    docs = _model_docs()
    fact = {c["name"]: c for c in docs["fact_stock"]["columns"]}
    targets = {}
    for column in ("company_id", "date_key"):
        rel = next(
            t["relationships"]
            for t in fact[column]["data_tests"]
            if isinstance(t, dict) and "relationships" in t
        )
        targets[column] = (rel["arguments"]["to"], rel["arguments"]["field"])
    assert targets == {
        "company_id": ("ref('dim_companies')", "symbol"),
        "date_key": ("ref('dim_date')", "date_key"),
    }
    for ref, _ in targets.values():
        assert ref.split("'")[1] in docs


def test_models_follow_the_import_cte_style() -> None:
    for path in (DBT / "models").rglob("*.sql"):
        body = path.read_text().strip()
        assert body.splitlines()[-1].startswith("select * from "), path
        assert "with" in body.split("select", 1)[0] or "\nwith\n" in body, path
