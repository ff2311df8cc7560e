"""``stockpipe export``: Parquet and CSV round trips of every gold table against DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stockpipe.cli import app
from stockpipe.dashboard.export import export_gold
from stockpipe.dashboard.warehouse import WarehouseMissingError
from stockpipe.settings import Settings
from tests.helpers_gold import GOLD_TABLES, GoldSpec, build_gold_warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gold_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("export")
    build_gold_warehouse(data / "warehouse.duckdb", GoldSpec(days=4, bars_per_day=60))
    return Settings(data_dir=data, _env_file=None)


def _gold_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'gold' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe select * from {relation}").fetchall()]


def test_parquet_round_trip_same_rows_and_schema(gold_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    counts = export_gold(gold_settings, out, "parquet")
    con = duckdb.connect(str(gold_settings.duckdb_path), read_only=True)
    try:
        tables = _gold_tables(con)
        assert sorted(tables) == sorted(GOLD_TABLES)
        assert sorted(counts) == tables
        assert sorted(p.name for p in out.iterdir()) == [f"{t}.parquet" for t in tables]
        for table in tables:
            path = out / f"{table}.parquet"
            expected_rows = con.execute(f"select count(*) from gold.{table}").fetchone()[0]  # type: ignore[index]
            assert counts[table] == expected_rows > 0
            assert pq.ParquetFile(path).metadata.num_rows == expected_rows
            reloaded = _describe(con, f"read_parquet('{path}')")
            assert reloaded == _describe(con, f"gold.{table}"), table
        # values survive too: the fact table's checksum columns
        fact = out / "fact_stock.parquet"
        left = con.execute(
            "select sum(close_price), sum(volume), count(distinct id), min(bar_ts) from gold.fact_stock"
        ).fetchone()
        right = con.execute(
            "select sum(close_price), sum(volume), count(distinct id), min(bar_ts) "
            f"from read_parquet('{fact}')"
        ).fetchone()
        assert left == right
    finally:
        con.close()


def test_csv_export_same_rows_and_columns(gold_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    counts = export_gold(gold_settings, out, "csv")
    con = duckdb.connect(str(gold_settings.duckdb_path), read_only=True)
    try:
        for table in _gold_tables(con):
            loaded = pcsv.read_csv(out / f"{table}.csv")
            expected_rows = con.execute(f"select count(*) from gold.{table}").fetchone()[0]  # type: ignore[index]
            assert loaded.num_rows == counts[table] == expected_rows
            assert loaded.column_names == [c for c, _ in _describe(con, f"gold.{table}")]
    finally:
        con.close()


def test_export_cli_and_missing_warehouse(
    gold_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(gold_settings.data_path))
    result = CliRunner().invoke(app, ["export", "--format", "csv", "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "fact_stock" in result.output
    assert (tmp_path / "x" / "mart_sector_daily.csv").exists()
    assert not list((tmp_path / "x").glob("*.tmp"))
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path / "nothing"))
    missing = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "y")])
    assert isinstance(missing.exception, WarehouseMissingError)
    assert not (tmp_path / "y").exists()
