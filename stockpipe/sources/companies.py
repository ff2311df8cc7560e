"""The shipped companies reference list (Alpha Vantage OVERVIEW field names as CSV header).

``data/companies.csv`` holds real US large caps (S&P 100 constituents and other large
caps) with ``Symbol, AssetType, Name, Description, Exchange, Sector, Industry``; Sector and
Industry follow Alpha Vantage's upper-case, SEC-SIC-style names. The first 20 rows are
well-known mega caps without dots in the symbol: the simulator's default symbols.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

CSV_HEADER: tuple[str, ...] = ("Symbol", "AssetType", "Name", "Description", "Exchange", "Sector", "Industry")


@dataclass(frozen=True)
class Company:
    """One row of the companies list (snake_case of the Alpha Vantage OVERVIEW fields)."""

    symbol: str
    asset_type: str
    name: str
    description: str
    exchange: str
    sector: str
    industry: str


def companies_csv_path() -> Path:
    """Filesystem path of the shipped ``companies.csv`` (package data)."""
    return Path(str(resources.files("stockpipe.sources") / "data" / "companies.csv"))


@lru_cache(maxsize=1)
def _load() -> tuple[Company, ...]:
    text = (resources.files("stockpipe.sources") / "data" / "companies.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_HEADER:
        raise ValueError(f"companies.csv header is {reader.fieldnames}, expected {list(CSV_HEADER)}")
    return tuple(
        Company(
            symbol=row["Symbol"],
            asset_type=row["AssetType"],
            name=row["Name"],
            description=row["Description"],
            exchange=row["Exchange"],
            sector=row["Sector"],
            industry=row["Industry"],
        )
        for row in reader
    )


def load_companies() -> list[Company]:
    """All shipped companies, in file order (mega caps first)."""
    return list(_load())


def default_symbols(n: int = 20) -> tuple[str, ...]:
    """The first ``n`` symbols of the shipped list (the simulator's default universe)."""
    if n < 0:
        raise ValueError("n must not be negative")
    return tuple(c.symbol for c in _load()[:n])
