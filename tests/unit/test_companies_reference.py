"""The companies reference: one reader, the data-folder copy, and ``stockpipe companies``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockpipe.clean.companies import parse_companies_csv, warn_unknown_symbols
from stockpipe.cli import app
from stockpipe.contract.companies import COLUMNS
from stockpipe.settings import Settings
from stockpipe.sources.companies import (
    companies_csv_path,
    load_companies,
    parse_companies,
    read_reference,
    reference_path,
)
from stockpipe.warehouse.tables import silver_companies_schema


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in __import__("os").environ if k.startswith("STOCKPIPE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STOCKPIPE_CONFIG", str(tmp_path / "none.toml"))
    return Settings()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_one_reader_for_the_pipeline_and_the_clean_job() -> None:
    data = companies_csv_path().read_bytes()
    rows = parse_companies_csv(data)
    assert rows == [c.row() for c in load_companies()]
    assert [f.name for f in silver_companies_schema()] == list(COLUMNS)
    assert {c.exchange for c in load_companies()} <= {"NASDAQ", "NYSE"}  # both the XNYS calendar


def test_other_layouts_by_alias_or_map() -> None:
    text = "Ticker,Company,Sector,Market\nshel.l,Shell plc,ENERGY,XLON\nSHEL.L,dup,,\n"
    [shel] = parse_companies(text)
    assert (shel.symbol, shel.name, shel.sector, shel.exchange) == ("SHEL.L", "Shell plc", "ENERGY", "XLON")
    [mapped] = parse_companies("Id,Nm\nASML.AS,ASML Holding\n", column_map={"symbol": "Id", "name": "Nm"})
    assert (mapped.symbol, mapped.name, mapped.exchange) == ("ASML.AS", "ASML Holding", None)


def test_add_creates_a_data_folder_copy_seeded_from_the_shipped_list(settings: Settings) -> None:
    assert reference_path(settings) == companies_csv_path()
    shipped = len(load_companies())
    out = _cli(
        "companies", "add", "shel.l", "--name", "Shell plc", "--sector", "ENERGY", "--exchange", "XLON"
    )
    assert "added" in out
    local = settings.data_path / "reference" / "companies.csv"
    assert reference_path(settings) == local
    ref = {c.symbol: c for c in read_reference(settings)}
    assert len(ref) == shipped + 1
    assert (ref["SHEL.L"].name, ref["SHEL.L"].exchange, ref["SHEL.L"].sector) == (
        "Shell plc",
        "XLON",
        "ENERGY",
    )
    # again, changing one field: updated in place, the others kept
    assert "updated" in _cli("companies", "add", "SHEL.L", "--industry", "OIL & GAS")
    shel = next(c for c in read_reference(settings) if c.symbol == "SHEL.L")
    assert (shel.name, shel.industry, shel.exchange) == ("Shell plc", "OIL & GAS", "XLON")
    assert "SHEL.L" in _cli("companies", "list", "--symbol", "SH")


def test_add_refuses_an_unknown_exchange_in_one_sentence(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["companies", "add", "FOO", "--exchange", "MOON"])
    assert result.exit_code != 0
    assert "Unknown exchange 'MOON'" in str(result.exception)
    assert not (settings.data_path / "reference" / "companies.csv").exists()


def test_import_merges_a_file_with_a_map(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "ftse.csv"
    src.write_text("Ticker,Company name,Industry\nSHEL.L,Shell plc,OIL\nBP.L,BP plc,OIL\nAAPL,Apple Inc,\n")
    out = _cli("companies", "import", str(src), "--map", "Company name=name", "--exchange", "XLON")
    assert "added" in out
    ref = {c.symbol: c for c in read_reference(settings)}
    assert ref["BP.L"].exchange == "XLON"
    assert ref["AAPL"].exchange == "NASDAQ"  # an existing row keeps its exchange and gets the new name
    assert ref["AAPL"].name == "Apple Inc"


def test_unknown_symbol_warning_prints_the_exact_add_command(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        unknown = warn_unknown_symbols(settings, ["SHEL.L", "AAPL"], "XLON")
    assert unknown == ["SHEL.L"]
    assert 'stockpipe companies add SHEL.L --name "SHEL.L" --exchange XLON' in caplog.text
