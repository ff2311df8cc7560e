"""Pure Plotly figure builders (DataFrames in, ``go.Figure`` out) for the dashboard and report.

Import this module lazily (it imports plotly); the CLI only loads it inside commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


UP = "#26a69a"
DOWN = "#ef5350"
SMA_COLORS = {"sma_20": "#1f77b4", "sma_50": "#ff7f0e"}
SMA_LABELS = {"sma_20": "SMA 20", "sma_50": "SMA 50"}


def _empty(title: str, message: str) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title=title,
        annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper"}],
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=300,
    )
    return fig


def _volume_colors(frame: pd.DataFrame) -> list[str]:
    return [UP if c >= o else DOWN for o, c in zip(frame["open"], frame["close"], strict=True)]


def daily_title(symbol: str) -> str:
    """The daily chart's title (the browser test reads it back)."""
    return f"{symbol} — daily OHLC, volume, SMA 20/50"


def intraday_title(symbol: str, day: object) -> str:
    """The intraday chart's title."""
    return f"{symbol} — intraday {day}"


def candlestick_figure(daily: pd.DataFrame, symbol: str, height: int = 560) -> go.Figure:
    """Daily candlestick with SMA 20/50 lines over volume bars (shared date axis).

    ``daily`` has ``trade_date, open, high, low, close, volume`` and optionally ``sma_20``,
    ``sma_50``. Weekends are hidden from the axis.
    """
    import pandas as pd
    import plotly.graph_objects as go

    title = daily_title(symbol)
    if daily.empty:
        return _empty(title, f"No daily bars for {symbol} in this range.")
    frame = daily.sort_values("trade_date")
    x = pd.to_datetime(frame["trade_date"])
    smas = [
        go.Scatter(
            x=x,
            y=frame[col],
            mode="lines",
            name=SMA_LABELS[col],
            line={"color": SMA_COLORS[col], "width": 1.5},
        )
        for col in ("sma_20", "sma_50")
        if col in frame and frame[col].notna().any()
    ]
    fig = _candles_over_volume(frame, x, symbol, price_share=0.74, overlays=smas)
    fig.update_layout(
        title=title,
        height=height,
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        margin={"l": 50, "r": 20, "t": 70, "b": 30},
    )
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig


def _candles_over_volume(
    frame: pd.DataFrame, x: object, symbol: str, price_share: float, overlays: Sequence[go.Scatter] = ()
) -> go.Figure:
    """Two rows on one time axis: OHLC candles (and ``overlays``) above, volume bars below."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[price_share, 1 - price_share], vertical_spacing=0.03
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=frame["open"],
            high=frame["high"],
            low=frame["low"],
            close=frame["close"],
            name=symbol,
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    for overlay in overlays:
        fig.add_trace(overlay, row=1, col=1)
    fig.add_trace(
        go.Bar(x=x, y=frame["volume"], name="Volume", marker_color=_volume_colors(frame)),
        row=2,
        col=1,
    )
    return fig


def intraday_figure(bars: pd.DataFrame, symbol: str, day: object, height: int = 460) -> go.Figure:
    """Intraday candlestick (exchange-local time) over volume bars for one trading day."""
    title = intraday_title(symbol, day)
    if bars.empty:
        return _empty(title, f"No intraday bars for {symbol} on {day}.")
    frame = bars.sort_values("local_ts")
    x = frame["local_ts"]
    fig = _candles_over_volume(frame, x, symbol, price_share=0.75)
    fig.update_layout(
        title=title,
        height=height,
        xaxis_rangeslider_visible=False,
        showlegend=False,
        margin={"l": 50, "r": 20, "t": 60, "b": 30},
    )
    fig.update_xaxes(title_text="time (America/New_York)", row=2, col=1)
    return fig


def sector_figure(sectors: pd.DataFrame, height: int = 360) -> go.Figure:
    """Average daily return per sector on one day, as horizontal bars in percent."""
    import pandas as pd
    import plotly.graph_objects as go

    if sectors.empty:
        return _empty("Sector performance", "No sector data yet.")
    frame = sectors.sort_values("avg_return")
    day = pd.Timestamp(frame["trade_date"].max()).date()
    pct = frame["avg_return"].astype(float) * 100
    fig = go.Figure(
        go.Bar(
            x=pct,
            y=frame["sector"],
            orientation="h",
            marker_color=[UP if v >= 0 else DOWN for v in pct.fillna(0)],
            text=[f"{v:+.2f}%" if pd.notna(v) else "n/a" for v in pct],
            textposition="auto",
            customdata=frame[["symbols", "total_volume"]].to_numpy(),
            hovertemplate="%{y}: %{x:.2f}%<br>symbols %{customdata[0]}"
            "<br>volume %{customdata[1]:,}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Sector performance — average daily return on {day}",
        height=height,
        xaxis_title="average return (%)",
        margin={"l": 20, "r": 20, "t": 60, "b": 40},
    )
    return fig


def sector_trend_figure(sectors: pd.DataFrame, height: int = 360) -> go.Figure:
    """Cumulative average return per sector over the selected range (lines)."""
    import plotly.graph_objects as go

    if sectors.empty:
        return _empty("Sector trend", "No sector data yet.")
    fig = go.Figure()
    for sector, rows in sectors.sort_values("trade_date").groupby("sector"):
        growth = (1 + rows["avg_return"].astype(float).fillna(0)).cumprod() - 1
        fig.add_trace(go.Scatter(x=rows["trade_date"], y=growth * 100, mode="lines", name=str(sector)))
    fig.update_layout(
        title="Sector trend — cumulative average return (%)",
        height=height,
        yaxis_title="%",
        margin={"l": 40, "r": 20, "t": 60, "b": 30},
    )
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    return fig


def freshness_figure(stream: pd.DataFrame, height: int = 240) -> go.Figure:
    """p50/p95/max end-to-end freshness per streaming cycle (from ``raw.freshness``)."""
    import plotly.graph_objects as go

    if stream.empty:
        return _empty("Streaming freshness", "No streaming cycles yet.")
    frame = stream.sort_values("cycle_at")
    fig = go.Figure()
    for col, label in (("p50_seconds", "p50"), ("p95_seconds", "p95"), ("max_seconds", "max")):
        fig.add_trace(go.Scatter(x=frame["cycle_at"], y=frame[col], mode="lines", name=label))
    fig.update_layout(
        title="Streaming freshness per cycle (seconds)",
        height=height,
        yaxis_title="s",
        margin={"l": 40, "r": 20, "t": 50, "b": 30},
    )
    return fig
