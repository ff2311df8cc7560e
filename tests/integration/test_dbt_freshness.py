"""Source freshness fits the data: only live bars are checked, with thresholds from settings.

A replayed history (old bar_ts, loaded long ago) and an empty raw table (a fully quarantined
batch) pass the quality step; a live bar loaded too long ago warns or fails at the configured
hours; the summary line states the rule and which case applied.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stockpipe.gold.runner import run_quality, run_transform
from stockpipe.settings import Settings
from tests.fixtures.warehouse import BuiltWarehouse, clone_warehouse, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def freshness_status(settings: Settings) -> tuple[bool, str, str]:
    result = run_quality(settings, select="source:raw")
    (node,) = [n for n in result.nodes if n.name == "raw.stock_prices"]
    return result.success, node.status, result.note


def with_dbt(settings: Settings, **fields: int) -> Settings:
    return settings.model_copy(update={"dbt": settings.dbt.model_copy(update=fields)})


def test_history_and_live_bars_against_the_thresholds(
    duckdb_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = clone_warehouse(duckdb_warehouse, tmp_path).settings
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("update raw.stock_prices set loaded_at = loaded_at - interval 500 hour")
    ok, status, note = freshness_status(settings)  # a 2024 history loaded 3 weeks ago
    assert (ok, status) == (True, "pass"), note
    assert "bars are live (history): not checked" in note
    assert note.startswith("freshness applies to live")

    # a live bar (20 h old when loaded), loaded 30 h ago
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute(
            "insert into raw.stock_prices select * replace (now() - interval 30 hour as loaded_at,"
            " now() - interval 50 hour as bar_ts) from raw.stock_prices where symbol = 'AAPL' limit 1"
        )
    ok, status, note = freshness_status(settings)  # defaults: warn 24 h, fail 72 h
    assert (ok, status) == (True, "warn"), note
    assert "1 of " in note
    assert "newest loaded 30.0 h ago" in note
    assert freshness_status(with_dbt(settings, freshness_warn_hours=48, freshness_error_hours=96))[:2] == (
        True,
        "pass",
    )
    ok, status, note = freshness_status(with_dbt(settings, freshness_warn_hours=12, freshness_error_hours=25))
    assert (ok, status) == (False, "error"), note
    assert "fail after 25 h" in note
    # the live window decides what is live: 12 h makes that bar history
    assert freshness_status(with_dbt(settings, freshness_live_window_hours=12))[:2] == (True, "pass")


def test_an_empty_table_after_a_fully_quarantined_batch_passes(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "silver").mkdir(parents=True)
    settings = settings_for(lake.resolve().as_uri(), tmp_path / "data")
    assert run_transform(settings).success
    ok, status, note = freshness_status(settings)
    assert (ok, status) == (True, "pass"), note
    assert note.endswith("the table is empty: not checked")
