"""The three tabs of the dashboard (Streamlit rendering only; data comes from queries/health)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from stockpipe.dashboard import figures, queries
from stockpipe.dashboard.health import (
    format_age,
    live_sources_display,
    pipeline_health,
    rows_display,
    summarize_dbt,
)
from stockpipe.dashboard.readers import open_reader
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings
from stockpipe.sources.live.status import read_live_statuses

if TYPE_CHECKING:
    from stockpipe.dashboard.app import Picks

log = logging.getLogger(__name__)
PLOTLY_CONFIG = {"displaylogo": False}


def guarded(name: str, render: Callable[..., None], *args: Any) -> None:
    """Run one panel; show a one-sentence message instead of a traceback when it fails."""
    import streamlit as st

    try:
        render(*args)
    except StockpipeError as exc:
        st.warning(str(exc))
    except Exception as exc:
        log.exception("dashboard panel %s failed", name)
        st.error(f"The {name} panel could not be drawn: {type(exc).__name__}: {exc}")


def percent(value: object) -> str:
    """``+1.23%`` (pure); ``n/a`` for missing values."""
    import pandas as pd

    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return "n/a"
    return f"{float(value) * 100:+.2f}%"  # type: ignore[arg-type]


def seconds(value: object) -> str:
    """``3.4 s`` (pure); ``—`` when a cycle had no bars (NULL percentiles)."""
    import pandas as pd

    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return "—"
    return f"{float(value):.1f} s"  # type: ignore[arg-type]


def movers_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Display form of gainers/losers (pure)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "symbol": frame["symbol"],
            "name": frame["name"],
            "close": frame["close"].map(lambda v: f"{v:,.2f}"),
            "return": frame["daily_return"].map(percent),
        }
    )


def overview(settings: Settings, catalog: queries.Catalog, picks: Picks) -> None:
    """Top gainers/losers of the latest day, sector performance, symbol summary."""
    import streamlit as st

    with open_reader(settings) as reader:
        moves = queries.movers(reader, catalog, picks.symbols)
        sectors = queries.sector_performance(reader, picks.start, picks.end)
        summary = queries.symbol_summary(reader, catalog)
    st.subheader(f"Latest trading day: {moves.day or catalog.last_day}")
    left, right = st.columns(2)
    for column, title, frame, key in (
        (left, "Top gainers", moves.gainers, "gainers"),
        (right, "Top losers", moves.losers, "losers"),
    ):
        with column, st.container(key=key):
            st.markdown(f"**{title}**")
            if frame.empty:
                st.caption("None on this day.")
            else:
                st.table(movers_table(frame), hide_index=True)
    left, right = st.columns(2)
    with left, st.container(key="sector-chart"):
        st.plotly_chart(figures.sector_figure(queries.latest_sector_day(sectors)), config=PLOTLY_CONFIG)
    with right, st.container(key="sector-trend"):
        st.plotly_chart(figures.sector_trend_figure(sectors), config=PLOTLY_CONFIG)
    st.markdown("**Symbols**")
    shown = summary[summary["symbol"].isin(list(picks.symbols))]
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "last_return": st.column_config.NumberColumn("last return", format="percent"),
            "last_close": st.column_config.NumberColumn("last close", format="%.2f"),
        },
    )


def symbol(settings: Settings, catalog: queries.Catalog, picks: Picks) -> None:
    """Daily candlestick with volume and SMAs, then the intraday view of a chosen day."""
    import pandas as pd
    import streamlit as st

    if picks.symbol is None:
        st.info("Pick a symbol in the sidebar.")
        return
    with open_reader(settings) as reader:
        daily = queries.daily_bars(reader, picks.symbol, picks.start, picks.end)
    st.subheader(catalog.label(picks.symbol))
    if not daily.empty:
        last = daily.iloc[-1]
        prev_close = daily["close"].iloc[-2] if len(daily) > 1 else None
        change = None if prev_close is None else last["close"] / prev_close - 1
        cols = st.columns(5)
        cols[0].metric("Last close", f"{last['close']:,.2f}", None if change is None else percent(change))
        cols[1].metric("Day high", f"{last['high']:,.2f}")
        cols[2].metric("Day low", f"{last['low']:,.2f}")
        cols[3].metric("Volume", f"{int(last['volume']):,}")
        cols[4].metric("Days shown", f"{len(daily):,}")
    with st.container(key="daily-chart"):
        st.plotly_chart(figures.candlestick_figure(daily, picks.symbol), config=PLOTLY_CONFIG)
    days = sorted(pd.to_datetime(daily["trade_date"]).dt.date.unique(), reverse=True)
    if not days:
        return
    day = st.selectbox("Intraday day", days, key="day")
    with open_reader(settings) as reader:
        bars = queries.intraday_bars(reader, picks.symbol, day)
    with st.container(key="intraday-chart"):
        st.plotly_chart(figures.intraday_figure(bars, picks.symbol, day), config=PLOTLY_CONFIG)


def health_fragment(settings: Settings) -> None:
    """The pipeline-health panel, re-read every ``refresh_seconds``."""
    import streamlit as st

    @st.fragment(run_every=timedelta(seconds=settings.dashboard.refresh_seconds))
    def _panel() -> None:
        guarded("pipeline health", pipeline_panel, settings)

    _panel()


def pipeline_panel(settings: Settings) -> None:
    """Last load and freshness, stream freshness, rows per layer, quarantine, dbt results."""
    import streamlit as st

    with open_reader(settings) as reader:
        health = pipeline_health(reader)
    with st.container(key="health-summary"):
        cols = st.columns(4)
        load_age = (
            None if health.last_load_at is None else (health.checked_at - health.last_load_at).total_seconds()
        )
        cols[0].metric(
            "Last load",
            f"{format_age(load_age)} ago" if load_age is not None else "never",
            help=str(health.last_load_at or "raw.load_history is empty or missing"),
        )
        cols[1].metric(
            "Data freshness",
            format_age(health.freshness_seconds),
            help=f"now - newest bar ({health.latest_bar_ts})",
        )
        cols[2].metric("Quarantined records", f"{health.quarantined_total:,}")
        failures = len(health.dbt_failures)
        cols[3].metric("dbt nodes not passing", f"{failures:,}" if not health.dbt.empty else "no results")
    if health.stream is not None:
        stream_panel(health.stream)
    live_panel(settings)
    left, right = st.columns(2)
    with left, st.container(key="health-rows"):
        st.markdown("**Rows per layer**")
        st.table(rows_display(health), hide_index=True)
    with right, st.container(key="health-quarantine"):
        st.markdown("**Quarantined records by rule**")
        if health.quarantine.empty:
            st.caption("No quarantined records.")
        else:
            st.table(health.quarantine, hide_index=True)
    with st.container(key="health-dbt"):
        last = health.dbt_last_run_at
        st.markdown(f"**dbt results (latest per node, last run {last or 'never'})**")
        if health.dbt.empty:
            st.caption("raw.dbt_results has no rows yet.")
        else:
            st.table(summarize_dbt(health.dbt), hide_index=True)
            st.dataframe(
                health.dbt[["node", "resource_type", "status", "message", "run_at"]], hide_index=True
            )
    st.caption(f"Checked {health.checked_at:%Y-%m-%d %H:%M:%S} UTC")


def live_panel(settings: Settings) -> None:
    """Live sources (polling, websocket feeds, the aggregator) from their status files."""
    import streamlit as st

    frame = live_sources_display(read_live_statuses(settings))
    if frame.empty:
        return
    with st.container(key="health-live"):
        st.markdown("**Live sources**")
        st.table(frame, hide_index=True)


def stream_panel(stream: pd.DataFrame) -> None:
    """The streaming freshness row from ``raw.freshness`` (latest cycle + p50/p95 trend)."""
    import pandas as pd
    import streamlit as st

    with st.container(key="health-stream"):
        st.markdown("**Streaming freshness (bar time → warehouse)**")
        if stream.empty:
            st.caption("raw.freshness has no cycles yet.")
            return
        last = stream.iloc[-1]
        cols = st.columns(4)
        cols[0].metric("p50", seconds(last["p50_seconds"]))
        cols[1].metric("p95", seconds(last["p95_seconds"]))
        cols[2].metric("max", seconds(last["max_seconds"]))
        cols[3].metric("bars in last cycle", "—" if pd.isna(last["bars"]) else f"{int(last['bars']):,}")
        st.plotly_chart(figures.freshness_figure(stream), config=PLOTLY_CONFIG)
