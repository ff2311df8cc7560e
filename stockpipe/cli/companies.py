"""``stockpipe companies list|add|import``: the companies reference the cleaning job reads.

The reference is ``settings.companies_file`` when set, else ``<data_dir>/reference/companies.csv``
(created from the shipped list on the first ``add`` or ``import``), else the shipped list; see
``stockpipe.sources.companies``. A symbol missing from it is quarantined as ``unknown_symbol``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.contract.companies import COLUMNS, DEFAULT_EXCHANGE
from stockpipe.errors import StockpipeError
from stockpipe.settings import get_settings
from stockpipe.sources.companies import (
    Company,
    check_company,
    parse_companies,
    read_reference,
    reference_path,
    upsert,
    write_reference,
)

companies_app = typer.Typer(
    help=(
        "The companies reference (symbol, name, sector, industry, exchange) the cleaning job reads."
        "\n\nExample:  stockpipe companies add ASML --name 'ASML Holding' --exchange XAMS"
    ),
    no_args_is_help=True,
)
app.add_typer(companies_app, name="companies")


@companies_app.command("list")
def list_cmd(
    symbol: Annotated[str | None, typer.Option(help="only symbols starting with this")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many rows (0: all)")] = 50,
) -> None:
    """Show the companies reference and where it is kept.

    Example:  stockpipe companies list --symbol A
    """
    settings = get_settings()
    companies = read_reference(settings)
    shown = [c for c in companies if not symbol or c.symbol.startswith(symbol.strip().upper())]
    rows = [(c.symbol, c.name or "", c.exchange or "", c.sector or "", c.industry or "") for c in shown]
    ui.console.print(
        ui.grid_table(
            "companies", ["symbol", "name", "exchange", "sector", "industry"], rows[: limit or None]
        )
    )
    ui.console.print(
        ui.summary_table(
            "companies list",
            [
                ("reference", str(reference_path(settings))),
                ("companies", len(companies)),
                ("shown", len(shown)),
            ],
        )
    )


@companies_app.command("add")
def add_cmd(
    symbol: Annotated[str, typer.Argument(help="ticker symbol, e.g. SHEL.L")],
    name: Annotated[str | None, typer.Option(help="company name")] = None,
    sector: Annotated[str | None, typer.Option(help="sector, e.g. ENERGY")] = None,
    industry: Annotated[str | None, typer.Option(help="industry")] = None,
    exchange: Annotated[
        str | None,
        typer.Option(help="exchange_calendars code or alias: XNYS (default), XLON, XAMS, NASDAQ..."),
    ] = None,
    asset_type: Annotated[str | None, typer.Option(help="asset type, e.g. Common Stock")] = None,
    description: Annotated[str | None, typer.Option(help="one-line description")] = None,
) -> None:
    """Add a company to the reference (or update the given fields of an existing one).

    Example:  stockpipe companies add SHEL.L --name "Shell plc" --sector ENERGY --exchange XLON
    """
    settings = get_settings()
    company = check_company(
        Company(
            symbol=symbol.strip().upper(),
            asset_type=asset_type,
            name=name,
            description=description,
            exchange=exchange.strip().upper() if exchange else None,
            sector=sector,
            industry=industry,
        )
    )
    merged, added, updated = upsert(read_reference(settings), [company])
    path = write_reference(settings, merged)
    stored = next(c for c in merged if c.symbol == company.symbol)
    ui.console.print(
        ui.summary_table(
            "companies add",
            [
                ("symbol", stored.symbol),
                ("exchange", stored.exchange),
                ("result", "added" if added else ("updated" if updated else "unchanged")),
                ("companies", len(merged)),
                ("reference", str(path)),
            ],
        )
    )


@companies_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV with a symbol column (and name, sector, ...)")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="file column=contract column, e.g. Ticker=symbol (repeatable)"),
    ] = None,
    exchange: Annotated[
        str | None, typer.Option(help="exchange of new symbols without one (default XNYS)")
    ] = None,
) -> None:
    """Merge a CSV of companies into the reference (rows with a known symbol are updated).

    Example:  stockpipe companies import ftse100.csv --map Ticker=symbol --map "Company=name" --exchange XLON
    """
    settings = get_settings()
    column_map = _column_map(map_ or [])
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise StockpipeError(f"The companies file {file} cannot be read ({exc.strerror}).") from exc
    default = check_company(Company("X", exchange=exchange.strip().upper() if exchange else None)).exchange
    new = [check_company(c) for c in parse_companies(data, str(file), column_map)]
    merged, added, updated = upsert(read_reference(settings), new, default or DEFAULT_EXCHANGE)
    path = write_reference(settings, merged)
    ui.console.print(
        ui.summary_table(
            "companies import",
            [
                ("rows in file", len(new)),
                ("added", added),
                ("updated", updated),
                ("companies", len(merged)),
                ("reference", str(path)),
            ],
        )
    )


def _column_map(pairs: list[str]) -> dict[str, str]:
    """``--map`` pairs (``file column=contract column``, either order) as contract column -> file column."""
    return ui.parse_column_map(pairs, COLUMNS, "companies column")
