"""CLI commands for the reporting stage: ``dashboard``, ``report`` and ``export``.

Registered on ``stockpipe.cli.app.app``. Streamlit, plotly and the warehouse clients are
imported inside the commands so ``stockpipe --help`` stays fast.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from stockpipe.cli.app import app
from stockpipe.cli.ui import console, grid_table, summary_table
from stockpipe.dashboard.export import export_gold
from stockpipe.dashboard.report import build_report
from stockpipe.dashboard.server import run_dashboard
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings, get_settings


class ExportFormatOption(StrEnum):
    """File formats of ``stockpipe export``."""

    parquet = "parquet"
    csv = "csv"


def _warehouse_label(settings: Settings) -> str:
    if settings.warehouse.kind == "snowflake":
        return f"snowflake {settings.snowflake.account} / {settings.snowflake.database}"
    return f"duckdb {settings.duckdb_path}"


def _require_dashboard_deps() -> None:
    try:
        import plotly  # noqa: F401
        import streamlit  # noqa: F401
    except ImportError as exc:
        raise StockpipeError(
            f"The dashboard needs streamlit and plotly ({exc.name} is missing): "
            "install them with `pip install 'stockpipe[dashboard]'`."
        ) from exc


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StockpipeError(
                f"Port {port} on {host} is not available ({exc.strerror}): pass --port to pick another."
            ) from exc


@app.command("dashboard")
def dashboard_cmd(
    host: Annotated[str | None, typer.Option(help="address (default: settings, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (default: settings, 8501)")] = None,
) -> None:
    """Start the live web dashboard (Streamlit) on the gold layer of the configured warehouse.

    Candlesticks with volume and SMA 20/50, intraday view, gainers/losers, sector
    performance and a pipeline-health panel; refreshes every dashboard.refresh_seconds.
    Listens on 127.0.0.1 unless told otherwise; Ctrl-C stops it.

    Example:  stockpipe dashboard --port 8502
    """

    settings = get_settings()
    host = host or settings.dashboard.host
    port = port or settings.dashboard.port
    _require_dashboard_deps()
    _check_port_free(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    rows: list[tuple[str, Any]] = [
        ("url", f"http://{shown_host}:{port}"),
        ("warehouse", _warehouse_label(settings)),
        ("refresh", f"every {settings.dashboard.refresh_seconds} s"),
    ]
    if settings.warehouse.kind == "duckdb" and not settings.duckdb_path.exists():
        rows.append(("note", "no warehouse yet: the page waits for `stockpipe run`"))
    console.print(summary_table("stockpipe dashboard", rows))
    code = run_dashboard(settings, host, port, os.environ)
    if code not in (0, -2, -15, 130, 143):
        raise StockpipeError(f"Streamlit stopped with exit code {code}: see its output above.")


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols (default: all)")] = None,
) -> None:
    """Write one self-contained HTML report (plotly.js embedded; opens offline).

    The dashboard's main charts and tables: per-symbol candlesticks with volume and SMAs,
    intraday view of the latest day, gainers/losers, sector performance, pipeline health.

    Example:  stockpipe report --out report.html --symbols AAPL,MSFT
    """

    settings = get_settings()
    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    summary = build_report(settings, out, wanted)
    rows: list[tuple[str, Any]] = [
        ("file", str(summary.path)),
        ("size", f"{summary.bytes / 1_048_576:.1f} MiB"),
        ("symbols", ", ".join(summary.symbols)),
        ("days", f"{summary.first_day} to {summary.last_day}"),
        ("charts", summary.charts),
        ("tables", summary.tables),
        ("warehouse", _warehouse_label(settings)),
    ]
    console.print(summary_table("stockpipe report", rows))


@app.command("export")
def export_cmd(
    fmt: Annotated[
        ExportFormatOption, typer.Option("--format", "-f", help="file format", case_sensitive=False)
    ] = ExportFormatOption.parquet,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write into")] = Path("export"),
) -> None:
    """Export the gold star schema (facts, dimensions, marts) as Parquet or CSV files.

    One file per table (<out>/<table>.<format>), for Power BI or any BI tool; see
    docs/powerbi.md for the relationships.

    Example:  stockpipe export --format parquet --out export/
    """

    settings = get_settings()
    counts = export_gold(settings, out, fmt.value)
    table_rows = [(name, f"{out / f'{name}.{fmt.value}'}", rows) for name, rows in counts.items()]
    table_rows.append(("total", f"{len(counts)} files", sum(counts.values())))
    console.print(grid_table(f"stockpipe export ({fmt.value})", ["table", "file", "rows"], table_rows))
    console.print(f"from {_warehouse_label(settings)}")
