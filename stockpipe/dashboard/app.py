"""The Streamlit page of ``stockpipe dashboard`` (run by ``streamlit run``; see ``server.py``).

Layout: a sidebar with the sector filter, symbol and date-range pickers, and three tabs
(Overview, Symbol, Pipeline health) that run lazily. A small fragment re-checks the warehouse
every ``settings.dashboard.refresh_seconds`` and reruns the page when it changed, so the page
follows the streaming mode; the health panel refreshes on the same period. Stable hooks for
tests: containers keyed ``daily-chart``, ``intraday-chart``, ``health-rows``, ...
(CSS class ``st-key-<key>``) and the ``symbol`` picker (also the ``?symbol=`` URL parameter).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stockpipe.dashboard import panels
from stockpipe.dashboard.queries import load_catalog
from stockpipe.dashboard.readers import open_reader
from stockpipe.dashboard.warehouse import duckdb_signature
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings, get_settings

if TYPE_CHECKING:
    from stockpipe.dashboard.queries import Catalog

log = logging.getLogger(__name__)
DEFAULT_RANGE_DAYS = 180
TABS = ("Overview", "Symbol", "Pipeline health")


@dataclass(frozen=True)
class Picks:
    """The sidebar's choices."""

    sectors: tuple[str, ...]
    symbols: tuple[str, ...]
    symbol: str | None
    start: date
    end: date


def default_range(first: date, last: date, days: int = DEFAULT_RANGE_DAYS) -> tuple[date, date]:
    """The initial date range: the last ``days`` days of the data, clipped to its start (pure)."""
    return max(first, last - timedelta(days=days)), last


def normalize_range(value: Any, fallback: tuple[date, date]) -> tuple[date, date]:
    """``st.date_input`` range values (0, 1 or 2 dates while picking) -> ``(start, end)`` (pure)."""
    if isinstance(value, date):
        return value, value
    picked = [v for v in (value or ()) if isinstance(v, date)]
    if not picked:
        return fallback
    start, end = picked[0], picked[-1]
    return (start, end) if start <= end else (end, start)


def change_marker(settings: Settings) -> tuple[object, ...]:
    """Something that changes whenever the warehouse does (cheap; no DuckDB lock taken)."""
    if settings.warehouse.kind != "snowflake":
        return duckdb_signature(settings.duckdb_path)
    try:
        with open_reader(settings) as reader:
            return (reader.count("gold", "fact_stock"), reader.count("raw", "load_history"))
    except StockpipeError as exc:
        return (str(exc),)


def sidebar(catalog: Catalog) -> Picks:
    """Sector filter, symbol picker and date range in the sidebar."""
    import streamlit as st

    with st.sidebar:
        st.header("Filters")
        sectors = st.multiselect("Sectors", catalog.sectors, key="sectors", placeholder="All sectors")
        symbols = catalog.symbols_in(sectors) or catalog.symbols
        symbol = st.selectbox("Symbol", symbols, key="symbol", format_func=catalog.label, bind="query-params")
        fallback = default_range(catalog.first_day, catalog.last_day)
        previous = st.session_state.get("_range_default")
        current = st.session_state.get("range")
        if current is None or (previous != fallback and tuple(current) == previous):
            st.session_state["range"] = fallback  # untouched by the user: follow new data
        st.session_state["_range_default"] = fallback
        picked = st.date_input(
            "Date range", min_value=catalog.first_day, max_value=catalog.last_day, key="range"
        )
        start, end = normalize_range(picked, fallback)
    return Picks(tuple(sectors), tuple(symbols), symbol, start, end)


def watcher(settings: Settings) -> None:
    """Every ``refresh_seconds``: rerun the whole page when the warehouse changed."""
    import streamlit as st

    @st.fragment(run_every=timedelta(seconds=settings.dashboard.refresh_seconds))
    def _check() -> None:
        marker = change_marker(settings)
        previous = st.session_state.get("_marker")
        st.session_state["_marker"] = marker
        if previous is not None and previous != marker:
            st.rerun()
        now = datetime.now(UTC).strftime("%H:%M:%S")
        st.caption(f"Auto-refresh every {settings.dashboard.refresh_seconds} s · checked {now} UTC")

    _check()


def main() -> None:
    """Render the page."""
    import streamlit as st

    st.set_page_config(page_title="stockpipe dashboard", page_icon="📈", layout="wide")
    settings = get_settings()
    st.title("stockpipe · market dashboard")
    with st.sidebar:
        watcher(settings)
    try:
        with open_reader(settings) as reader:  # pandas/plotly load only once there is a warehouse
            catalog = load_catalog(reader)
    except StockpipeError as exc:
        with st.container(key="warehouse-message"):
            st.info(str(exc))
        return
    except Exception as exc:  # a warehouse that does not follow the contract: one sentence, logged
        log.exception("reading the dashboard catalog failed")
        with st.container(key="warehouse-message"):
            st.error(f"The gold tables could not be read: {type(exc).__name__}: {exc}")
        return

    picks = sidebar(catalog)
    overview, symbol_tab, health_tab = st.tabs(list(TABS), key="view", on_change="rerun", bind="query-params")
    if overview.open:
        with overview:
            panels.guarded("overview", panels.overview, settings, catalog, picks)
    if symbol_tab.open:
        with symbol_tab:
            panels.guarded("symbol", panels.symbol, settings, catalog, picks)
    if health_tab.open:
        with health_tab:
            panels.health_fragment(settings)


if __name__ == "__main__":
    main()
