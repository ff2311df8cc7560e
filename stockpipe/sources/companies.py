"""The companies reference: the ONE reader of companies CSVs, and where the reference is kept.

Contract: ``stockpipe/contract/companies.py`` (CSV header ``Symbol, AssetType, Name,
Description, Exchange, Sector, Industry``, Alpha Vantage OVERVIEW names; ``Exchange`` is the
symbol's trading calendar, default XNYS). ``data/companies.csv`` ships real US large caps
(S&P 100 constituents and other large caps, Exchange NASDAQ/NYSE, i.e. the XNYS calendar); its
first 20 rows are well-known mega caps without dots in the symbol: the simulator's default
symbols.

Which reference the pipeline uses (``reference_path``): ``settings.companies_file`` when set;
else ``<data_dir>/reference/companies.csv`` once it exists; else the shipped list. The
``stockpipe companies add|import`` commands write the settings file, or create the data-folder
copy (seeded from the shipped list) on first use, so the shipped list is never edited.
Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from stockpipe.contract.bar import SYMBOL_RE
from stockpipe.contract.companies import COLUMNS, CSV_COLUMNS, DEFAULT_EXCHANGE
from stockpipe.errors import ConfigError, StockpipeError
from stockpipe.sources.calendar import resolve_exchange

if TYPE_CHECKING:
    from stockpipe.settings import Settings

CSV_HEADER: tuple[str, ...] = tuple(CSV_COLUMNS)
REFERENCE_FILE = Path("reference") / "companies.csv"
# import: file column names (normalised) that mean a contract column
IMPORT_ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "code"),
    "asset_type": ("assettype", "asset_type", "type"),
    "name": ("name", "company", "company_name", "security", "security_name"),
    "description": ("description",),
    "exchange": ("exchange", "calendar", "mic", "market"),
    "sector": ("sector", "gics_sector"),
    "industry": ("industry", "gics_sub-industry", "sub_industry"),
}


@dataclass(frozen=True)
class Company:
    """One row of the companies reference (snake_case of the Alpha Vantage OVERVIEW fields)."""

    symbol: str
    asset_type: str | None = None
    name: str | None = None
    description: str | None = None
    exchange: str | None = None
    sector: str | None = None
    industry: str | None = None

    def row(self) -> tuple[str | None, ...]:
        """Values in contract column order (``contract.companies.COLUMNS``)."""
        return tuple(getattr(self, c) for c in COLUMNS)


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def parse_companies(
    data: bytes | str, source: str = "companies CSV", column_map: Mapping[str, str] | None = None
) -> list[Company]:
    """The companies of a CSV, first row per symbol kept, symbols upper-cased and trimmed.

    Columns: the contract header (``Symbol, AssetType, ...``), or common names (``Ticker``,
    ``Company``, ...), or ``column_map`` (contract column -> file column). Only a symbol column is
    required; missing columns are empty.
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))
    header = [h for h in (reader.fieldnames or []) if h is not None]
    by_norm = {_norm(h): h for h in header}
    cols: dict[str, str] = {}
    for column in COLUMNS:
        if column_map and column in column_map:
            if column_map[column] not in header:
                raise StockpipeError(f"The companies file {source} has no column {column_map[column]!r}.")
            cols[column] = column_map[column]
            continue
        for alias in IMPORT_ALIASES[column]:
            if alias in by_norm:
                cols[column] = by_norm[alias]
                break
    if "symbol" not in cols:
        raise StockpipeError(
            f"The companies file {source} has no Symbol column (header: {', '.join(header)}); "
            "pass --map COLUMN=symbol."
        )
    out: dict[str, Company] = {}
    for rec in reader:
        symbol = (rec.get(cols["symbol"]) or "").strip().upper()
        if not symbol or symbol in out:
            continue
        values = {c: ((rec.get(f) or "").strip() or None) for c, f in cols.items() if c != "symbol"}
        out[symbol] = Company(symbol=symbol, **values)
    return list(out.values())


def to_csv(companies: Iterable[Company]) -> str:
    """The contract CSV text of ``companies`` (header included)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in companies:
        writer.writerow(["" if v is None else v for v in c.row()])
    return buf.getvalue()


def companies_csv_path() -> Path:
    """Filesystem path of the shipped ``companies.csv`` (package data)."""
    return Path(str(resources.files("stockpipe.sources") / "data" / "companies.csv"))


@lru_cache(maxsize=1)
def _load() -> tuple[Company, ...]:
    path = companies_csv_path()
    return tuple(parse_companies(path.read_bytes(), str(path)))


def load_companies() -> list[Company]:
    """All shipped companies, in file order (mega caps first)."""
    return list(_load())


def default_symbols(n: int = 20) -> tuple[str, ...]:
    """The first ``n`` symbols of the shipped list (the simulator's default universe)."""
    if n < 0:
        raise ValueError("n must not be negative")
    return tuple(c.symbol for c in _load()[:n])


def reference_path(settings: Settings) -> Path:
    """The companies CSV the pipeline uses (see the module docstring)."""
    if settings.companies_file is not None:
        return Path(settings.companies_file).expanduser()
    local = settings.data_path / REFERENCE_FILE
    return local if local.is_file() else companies_csv_path()


def writable_reference_path(settings: Settings) -> Path:
    """Where ``companies add|import`` write: the settings file, else the data-folder copy."""
    if settings.companies_file is not None:
        return Path(settings.companies_file).expanduser()
    return settings.data_path / REFERENCE_FILE


def read_reference(settings: Settings) -> list[Company]:
    """The companies of the reference the pipeline uses."""
    path = reference_path(settings)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StockpipeError(f"The companies file {path} cannot be read ({exc.strerror}).") from exc
    return parse_companies(data, str(path))


def write_reference(settings: Settings, companies: Iterable[Company]) -> Path:
    """Write the reference atomically (temp file + rename); returns its path."""
    path = writable_reference_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(to_csv(companies), encoding="utf-8")
    tmp.replace(path)
    return path


def check_company(company: Company) -> Company:
    """``company`` when its symbol is valid and its exchange known (or empty); else ``ConfigError``."""

    if not SYMBOL_RE.match(company.symbol):
        raise ConfigError(f"{company.symbol!r} is not a valid symbol (letters, digits, '.' and '-').")
    resolve_exchange(company.exchange)  # raises ConfigError naming the unknown exchange
    return company


def upsert(
    existing: Iterable[Company], new: Iterable[Company], default_exchange: str = DEFAULT_EXCHANGE
) -> tuple[list[Company], int, int]:
    """``existing`` with ``new`` merged by symbol (a new row replaces the old one, keeping the
    old values of the columns it leaves empty; a new symbol without exchange gets
    ``default_exchange``); returns
    ``(companies, added, updated)``."""
    out = {c.symbol: c for c in existing}
    added = updated = 0
    for c in new:
        old = out.get(c.symbol)
        if old is None:
            out[c.symbol] = c if c.exchange else replace(c, exchange=default_exchange)
            added += 1
            continue
        merged = replace(
            old, **{f.name: getattr(c, f.name) for f in fields(c) if getattr(c, f.name) is not None}
        )
        if merged != old:
            updated += 1
        out[c.symbol] = merged
    return list(out.values()), added, updated


def add_command(symbol: str, exchange: str | None = None) -> str:
    """The exact ``stockpipe companies add`` command that makes ``symbol`` known."""
    tail = f" --exchange {exchange}" if exchange and exchange.upper() != DEFAULT_EXCHANGE else ""
    return f'stockpipe companies add {symbol} --name "{symbol}"{tail}'
