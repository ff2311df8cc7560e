"""Quarantine operations end to end: list, fix the cause, replay (killed mid-way), replay again.

Bars of two symbols missing from the companies reference are quarantined as ``unknown_symbol``;
a ``not_json`` record stays bad whatever the reference says. After one symbol is added to the
reference, a replay is SIGKILLed (``STOCKPIPE_FAULT_CLEAN=mid_swap``: one silver partition
swapped in, the rest not) and the pipeline loads and transforms that half state; the next replay
finishes the commit. Every bar is in ``fact_stock`` exactly once; the other symbol and the bad
record stay quarantined until their own fix.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stockpipe.clean.job import run_clean
from stockpipe.clean.quarantine import list_quarantine, run_replay
from stockpipe.gold.runner import run_transform
from stockpipe.settings import Settings
from stockpipe.sources.companies import companies_csv_path
from stockpipe.warehouse.loader import run_load
from tests.e2e_helpers import run_cli, stockpipe_env
from tests.fixtures.spark import spark_env
from tests.fixtures.warehouse import settings_for
from tests.helpers_bronze import bar_json, ny, write_bronze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = ("2024-03-04", "2024-03-05", "2024-03-06")
TIMES = ("09:30", "09:31", "10:00", "15:59")


def bars(symbol: str) -> list[bytes]:
    return [bar_json(symbol=symbol, bar_ts=ny(d, t)) for d in DAYS for t in TIMES]


def companies_with(path: Path, *symbols: str) -> Path:
    shutil.copy(companies_csv_path(), path)
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for s in symbols:
            writer.writerow([s, "Common Stock", f"{s} Corp", "added after the fact", "NYSE", "ENERGY", "OIL"])
    return path


def fact_rows(settings: Settings, symbol: str) -> tuple[int, int]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        row = con.execute(
            "select count(*), count(distinct id) from gold.fact_stock where symbol = ?", [symbol]
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def has_reference(settings: Settings, symbol: str) -> Any:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        row = con.execute(
            "select has_reference_data from gold.dim_companies where symbol = ?", [symbol]
        ).fetchone()
    return None if row is None else row[0]


def to_gold(settings: Settings) -> None:
    run_load(settings)
    assert run_transform(settings).success


def test_replay_after_adding_the_company_puts_each_bar_in_gold_once(
    spark: Any, tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    lake = (data / "lake").resolve()
    lake.mkdir(parents=True)
    settings = settings_for(lake.as_uri(), data)
    write_bronze(
        lake.as_uri(), [*bars("AAPL"), *bars("ZZZZ"), *bars("YYYY"), b"not json"], ingest_date="2024-03-06"
    )
    cleaned = run_clean(settings, spark=spark)
    assert cleaned.by_rule == {"unknown_symbol": 24, "not_json": 1}

    listing = list_quarantine(settings, rule="unknown_symbol", limit=2)
    assert (listing.records, listing.by_rule) == (24, {"unknown_symbol": 24})
    assert [s.origin.rsplit("/", 1)[0] for s in listing.samples] == ["stock-prices/0"] * 2
    assert '"symbol": "ZZZZ"' in (listing.samples[0].raw_payload or "")
    env = stockpipe_env(data, STOCKPIPE_LAKE_ROOT=lake.as_uri(), **warm_spark_env)
    shown = run_cli(["quarantine", "list", "--limit", "1"], env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for text in ("unknown_symbol", "not_json", "stock-prices/0/"):
        assert text in shown.stdout

    # the fix: ZZZZ joins the reference; a replay is killed after its first silver partition swap
    fixed_csv = companies_with(tmp_path / "companies.csv", "ZZZZ")
    env.update({k: v for k, v in spark_env().items() if k.startswith(("SPARK", "PYSPARK"))})
    env["STOCKPIPE_COMPANIES_FILE"] = str(fixed_csv)
    killed = run_cli(
        ["quarantine", "replay", "--rule", "unknown_symbol"], {**env, "STOCKPIPE_FAULT_CLEAN": "mid_swap"}
    )
    assert killed.returncode == 137, killed.stdout[-2000:] + killed.stderr[-2000:]
    fixed = settings.model_copy(update={"companies_file": fixed_csv})
    to_gold(fixed)  # the pipeline goes on with the half-committed replay
    assert fact_rows(fixed, "ZZZZ") == (4, 4)  # the first day only

    # the next replay finishes the commit first; YYYY is still unknown, so nothing more moves
    again = run_replay(fixed, rule="unknown_symbol", spark=spark)
    assert again.recovered
    assert (again.considered, again.admitted, again.still_quarantined) == (12, 0, {"unknown_symbol": 12})
    to_gold(fixed)
    assert fact_rows(fixed, "ZZZZ") == (12, 12)
    assert has_reference(fixed, "ZZZZ") is True
    left = list_quarantine(fixed)
    assert left.by_rule == {"unknown_symbol": 12, "not_json": 1}  # YYYY and the bad record

    # another fix, replayed through the CLI to the end: the summary says how many moved
    env["STOCKPIPE_COMPANIES_FILE"] = str(companies_with(tmp_path / "companies2.csv", "ZZZZ", "YYYY"))
    done = run_cli(["quarantine", "replay"], env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "12 record(s) moved to silver" in done.stdout
    final = fixed.model_copy(update={"companies_file": Path(env["STOCKPIPE_COMPANIES_FILE"])})
    assert list_quarantine(final).by_rule == {"not_json": 1}
    assert run_replay(final, spark=spark).admitted == 0  # idempotent: nothing more to move
    to_gold(final)
    for symbol in ("AAPL", "ZZZZ", "YYYY"):
        assert fact_rows(final, symbol) == (12, 12), symbol
