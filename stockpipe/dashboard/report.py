"""``stockpipe report``: one self-contained HTML file with the dashboard's main charts and tables.

plotly.js is embedded inline once (no CDN), so the file opens offline and references no
network resource; in-page links are ``#fragment`` anchors only.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from stockpipe.dashboard import figures, queries
from stockpipe.dashboard.health import Health, format_age, pipeline_health, rows_display, summarize_dbt
from stockpipe.dashboard.readers import open_reader
from stockpipe.dashboard.warehouse import WarehouseReader
from stockpipe.errors import StockpipeError
from stockpipe.fsutil import atomic_write_text
from stockpipe.settings import Settings

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header,section{max-width:1200px;margin:0 auto;padding:12px 24px}
header{border-bottom:1px solid #ddd;background:#fff;max-width:none}
h1{margin:8px 0}h2{border-bottom:2px solid #26a69a;padding-bottom:4px}
nav a{margin-right:12px}
table.data{border-collapse:collapse;margin:8px 0 16px;font-size:14px;background:#fff}
table.data th,table.data td{border:1px solid #ddd;padding:4px 8px;text-align:right}
table.data th{background:#f0f0f0}
table.data td:first-child,table.data th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}.grid>div{overflow-x:auto}
.meta{color:#666;font-size:14px}
"""


@dataclass(frozen=True)
class ReportSummary:
    """What ``build_report`` wrote."""

    path: Path
    symbols: tuple[str, ...]
    charts: int
    tables: int
    bytes: int
    first_day: date
    last_day: date


def slug(symbol: str) -> str:
    """An HTML-id-safe form of a symbol (pure)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", symbol)


def table_html(frame: pd.DataFrame, table_id: str) -> str:
    """A DataFrame as an escaped HTML table with an id (pure)."""
    shown = frame.astype(object).where(frame.notna(), "—")
    body = shown.to_html(index=False, border=0, classes="data", escape=True)
    return body.replace(
        '<table class="dataframe data">', f'<table class="dataframe data" id="{table_id}">', 1
    )


def figure_html(fig: Any, div_id: str) -> str:
    """A figure as a ``<div>`` + inline script, without plotly.js (pure)."""
    import plotly.io as pio

    return str(pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOTLY_CONFIG))


def _pct_frame(frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    out = frame.copy()
    for col in cols:
        if col in out:
            out[col] = out[col].map(lambda v: "—" if pd.isna(v) else f"{float(v) * 100:+.2f}%")
    return out


class _Doc:
    """Collects sections and counts charts/tables."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.charts = 0
        self.tables = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, fig: Any, div_id: str) -> None:
        self.parts.append(figure_html(fig, div_id))
        self.charts += 1

    def table(self, frame: pd.DataFrame, table_id: str, title: str) -> None:
        self.parts.append(f"<h3>{html.escape(title)}</h3>")
        self.parts.append(table_html(frame, table_id))
        self.tables += 1


def _overview(doc: _Doc, reader: WarehouseReader, catalog: queries.Catalog) -> None:
    moves = queries.movers(reader, catalog, catalog.symbols)
    sectors = queries.sector_performance(reader, catalog.first_day, catalog.last_day)
    summary = queries.symbol_summary(reader, catalog)
    doc.add(f'<section id="overview"><h2>Overview — latest day {moves.day or catalog.last_day}</h2>')
    doc.table(_pct_frame(summary, ("last_return",)), "table-symbols", "Symbols")
    doc.add('<div class="grid"><div>')
    cols = ["symbol", "name", "close", "prev_close", "daily_return"]
    doc.table(_pct_frame(moves.gainers[cols], ("daily_return",)), "table-gainers", "Top gainers")
    doc.add("</div><div>")
    doc.table(_pct_frame(moves.losers[cols], ("daily_return",)), "table-losers", "Top losers")
    doc.add("</div></div>")
    doc.chart(figures.sector_figure(queries.latest_sector_day(sectors)), "chart-sectors")
    doc.chart(figures.sector_trend_figure(sectors), "chart-sector-trend")
    doc.add("</section>")


def _health(doc: _Doc, health: Health) -> None:
    load = health.last_load_at
    doc.add('<section id="health"><h2>Pipeline health</h2><p class="meta">')
    doc.add(
        html.escape(
            f"Last load: {load or 'never'} · newest bar: {health.latest_bar_ts or 'none'} · "
            f"freshness at report time: {format_age(health.freshness_seconds)} · "
            f"quarantined records: {health.quarantined_total:,}"
        )
    )
    doc.add("</p>")
    doc.table(rows_display(health), "table-layer-rows", "Rows per layer")
    if not health.quarantine.empty:
        doc.table(health.quarantine, "table-quarantine", "Quarantined records by rule")
    if not health.dbt.empty:
        doc.table(summarize_dbt(health.dbt), "table-dbt", f"dbt results (last run {health.dbt_last_run_at})")
    if health.stream is not None and not health.stream.empty:
        doc.table(health.stream.tail(10), "table-stream-freshness", "Streaming freshness, last cycles")
    doc.add("</section>")


def _symbol(doc: _Doc, reader: WarehouseReader, catalog: queries.Catalog, symbol: str) -> None:
    import pandas as pd

    sid = slug(symbol)
    daily = queries.daily_bars(reader, symbol, catalog.first_day, catalog.last_day)
    doc.add(f'<section id="symbol-{sid}" class="symbol" data-symbol="{html.escape(symbol)}">')
    doc.add(f"<h2>{html.escape(catalog.label(symbol))}</h2>")
    doc.chart(figures.candlestick_figure(daily, symbol), f"chart-daily-{sid}")
    if not daily.empty:
        day = pd.Timestamp(daily["trade_date"].max()).date()
        bars = queries.intraday_bars(reader, symbol, day)
        doc.chart(figures.intraday_figure(bars, symbol, day), f"chart-intraday-{sid}")
        recent = daily.tail(10).assign(trade_date=lambda f: pd.to_datetime(f["trade_date"]).dt.date)
        doc.table(recent.round(4), f"table-daily-{sid}", "Last 10 trading days")
    doc.add("</section>")


def render_report(reader: WarehouseReader, symbols: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The whole HTML document and its counts (charts, tables, symbols, days)."""
    from plotly.offline import get_plotlyjs

    catalog = queries.load_catalog(reader)
    wanted = {s.strip().upper() for s in symbols or ()}
    unknown = sorted(wanted - set(catalog.symbols))
    if unknown:
        raise StockpipeError(
            f"The warehouse at {reader.location} has no bars for {', '.join(unknown)}: "
            f"it has {', '.join(catalog.symbols)}."
        )
    picked = [s for s in catalog.symbols if not wanted or s in wanted]
    health = pipeline_health(reader)
    doc = _Doc()
    _overview(doc, reader, catalog)
    for symbol in picked:
        _symbol(doc, reader, catalog, symbol)
    _health(doc, health)
    nav = " ".join(f'<a href="#symbol-{slug(s)}">{html.escape(s)}</a>' for s in picked)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>stockpipe report {catalog.first_day} to {catalog.last_day}</title>"
        f"<style>{STYLE}</style>"
        '<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        "<header><h1>stockpipe market report</h1>"
        f'<p class="meta">{html.escape(reader.location)} · {catalog.first_day} to {catalog.last_day}'
        f" · {len(picked)} symbols · generated {generated}</p>"
        f'<nav><a href="#overview">Overview</a> {nav} <a href="#health">Pipeline health</a></nav></header>'
    )
    text = head + "\n".join(doc.parts) + "</body></html>\n"
    info = {
        "symbols": tuple(picked),
        "charts": doc.charts,
        "tables": doc.tables,
        "first_day": catalog.first_day,
        "last_day": catalog.last_day,
    }
    return text, info


def build_report(settings: Settings, out: Path, symbols: list[str] | None = None) -> ReportSummary:
    """Write the report for the configured warehouse to ``out`` (parents created)."""
    with open_reader(settings) as reader:
        text, info = render_report(reader, symbols)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return ReportSummary(path=out, bytes=out.stat().st_size, **info)
