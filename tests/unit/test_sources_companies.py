from __future__ import annotations

import csv

from stockpipe.contract.bar import SYMBOL_RE
from stockpipe.sources.companies import CSV_HEADER, companies_csv_path, default_symbols, load_companies

SECTORS = {
    "TECHNOLOGY",
    "TRADE & SERVICES",
    "LIFE SCIENCES",
    "FINANCE",
    "ENERGY & TRANSPORTATION",
    "MANUFACTURING",
    "REAL ESTATE & CONSTRUCTION",
}


def test_shipped_csv_has_alpha_vantage_overview_header() -> None:
    path = companies_csv_path()
    assert path.is_file()
    assert path.parts[-3:] == ("sources", "data", "companies.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == CSV_HEADER == (
        "Symbol", "AssetType", "Name", "Description", "Exchange", "Sector", "Industry",
    )  # fmt: skip


def test_at_least_100_unique_valid_companies() -> None:
    companies = load_companies()
    assert len(companies) >= 100
    symbols = [c.symbol for c in companies]
    assert len(set(symbols)) == len(symbols)
    for c in companies:
        assert SYMBOL_RE.fullmatch(c.symbol), c.symbol
        assert c.asset_type == "Common Stock"
        assert c.exchange in {"NYSE", "NASDAQ"}, c
        assert c.sector in SECTORS, c
        assert c.industry, c
        assert c.industry == c.industry.upper(), c
        assert c.name, c
        assert c.description.endswith("."), c
        assert 40 <= len(c.description) <= 250, c  # one sentence


def test_default_symbols_are_the_first_mega_caps_without_dots() -> None:
    firsts = default_symbols()
    assert len(firsts) == 20
    assert firsts == tuple(c.symbol for c in load_companies()[:20])
    assert {"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META"} <= set(firsts)
    assert all("." not in s for s in firsts)
    assert default_symbols(3) == firsts[:3]
