"""Market-data queries on the gold layer, returning pandas DataFrames.

Every function takes an open ``WarehouseReader`` and reads only contract columns
(docs/architecture.md section 4). A missing optional table degrades to an empty frame (or a
value computed from another table), never to an error; only a warehouse without any gold
table raises ``WarehouseEmptyError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


from stockpipe.dashboard.warehouse import WarehouseEmptyError, WarehouseReader

EXCHANGE_TZ = "America/New_York"
GOLD_TABLES = (
    "fact_stock",
    "dim_companies",
    "dim_date",
    "mart_daily_ohlcv",
    "mart_daily_returns",
    "mart_moving_averages",
    "mart_sector_daily",
)
DAILY_COLUMNS = ["trade_date", "open", "high", "low", "close", "volume", "vwap", "bar_count"]
INTRADAY_COLUMNS = ["bar_ts", "local_ts", "open", "high", "low", "close", "volume", "interval"]
MOVER_COLUMNS = ["symbol", "name", "sector", "trade_date", "close", "prev_close", "daily_return"]
SECTOR_COLUMNS = ["sector", "trade_date", "symbols", "avg_return", "total_volume"]
UNKNOWN_SECTOR = "Unknown"
DAILY_SELECT = "select trade_date, open, high, low, close, volume, vwap, bar_count from {t} "


@dataclass(frozen=True)
class Catalog:
    """What the warehouse holds: one row per symbol with data (symbol, name, sector, days)."""

    companies: pd.DataFrame
    first_day: date
    last_day: date

    @property
    def symbols(self) -> list[str]:
        """Every symbol with bars, sorted."""
        return sorted(self.companies["symbol"].tolist())

    @property
    def sectors(self) -> list[str]:
        """Every sector of those symbols, sorted."""
        return sorted(self.companies["sector"].unique().tolist())

    def symbols_in(self, sectors: Sequence[str] | None) -> list[str]:
        """Symbols of the given sectors (all symbols when ``sectors`` is empty or None)."""
        if not sectors:
            return self.symbols
        picked = self.companies[self.companies["sector"].isin(list(sectors))]
        return sorted(picked["symbol"].tolist())

    def label(self, symbol: str) -> str:
        """``SYMBOL — Name`` for pickers and titles."""
        row = self.companies[self.companies["symbol"] == symbol]
        if row.empty or row["name"].iloc[0] == symbol:
            return symbol
        return f"{symbol} — {row['name'].iloc[0]}"


def _to_date(value: object) -> date:
    import pandas as pd

    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def load_catalog(reader: WarehouseReader) -> Catalog:
    """Symbols, names, sectors and the date range of the gold layer."""
    import pandas as pd

    if not any(reader.has("gold", t) for t in GOLD_TABLES):
        raise WarehouseEmptyError(
            f"The warehouse at {reader.location} has no gold tables yet: run `stockpipe run` first."
        )
    source = next((t for t in ("mart_daily_ohlcv", "fact_stock") if reader.has("gold", t)), None)
    days = pd.DataFrame()
    if source is not None:
        days = reader.query(
            "select symbol, min(trade_date) as first_day, max(trade_date) as last_day, "
            "count(*) as n from {t} group by symbol",
            t=("gold", source),
        )
    if days.empty:
        raise WarehouseEmptyError(
            f"The gold tables in the warehouse at {reader.location} have no bars yet: "
            "run `stockpipe run` first."
        )
    if reader.has("gold", "dim_companies"):
        names = reader.query("select symbol, name, sector from {t}", t=("gold", "dim_companies"))
        names = names.drop_duplicates("symbol")
        days = days.merge(names, on="symbol", how="left")
    companies = _fill_companies(days)
    return Catalog(
        companies=companies,
        first_day=_to_date(companies["first_day"].min()),
        last_day=_to_date(companies["last_day"].max()),
    )


def _fill_companies(frame: pd.DataFrame) -> pd.DataFrame:
    """Default the name to the symbol and the sector to ``Unknown`` (pure)."""
    out = frame.copy()
    if "name" not in out:
        out["name"] = None
    if "sector" not in out:
        out["sector"] = None
    out["name"] = out["name"].where(out["name"].notna() & (out["name"] != ""), out["symbol"])
    blank = out["sector"].isna() | (out["sector"].astype(str).str.strip() == "")
    out["sector"] = out["sector"].where(~blank, UNKNOWN_SECTOR).astype(str)
    return out.sort_values("symbol").reset_index(drop=True)


def with_moving_averages(daily: pd.DataFrame) -> pd.DataFrame:
    """Add ``sma_20``/``sma_50`` from ``close``, null until the window is full (as the mart), pure."""
    out = daily.sort_values("trade_date").copy()
    for window in (20, 50):
        out[f"sma_{window}"] = out["close"].rolling(window, min_periods=window).mean()
    return out


def daily_bars(reader: WarehouseReader, symbol: str, start: date, end: date) -> pd.DataFrame:
    """Daily OHLCV of ``symbol`` in ``[start, end]`` with ``sma_20`` and ``sma_50`` columns."""
    import pandas as pd

    if not reader.has("gold", "mart_daily_ohlcv"):
        return pd.DataFrame(columns=[*DAILY_COLUMNS, "sma_20", "sma_50"])
    if reader.has("gold", "mart_moving_averages"):
        daily = reader.query(
            DAILY_SELECT + "where symbol = ? and trade_date between ? and ? order by trade_date",
            [symbol, start, end],
            t=("gold", "mart_daily_ohlcv"),
        )
        sma = reader.query(
            "select trade_date, sma_20, sma_50 from {t} where symbol = ? and trade_date between ? and ?",
            [symbol, start, end],
            t=("gold", "mart_moving_averages"),
        )
        daily = daily.merge(sma, on="trade_date", how="left")
    else:  # compute over the whole history so the first days of the range are right
        history = reader.query(
            DAILY_SELECT + "where symbol = ? and trade_date <= ? order by trade_date",
            [symbol, end],
            t=("gold", "mart_daily_ohlcv"),
        )
        daily = with_moving_averages(history)
        daily = daily[pd.to_datetime(daily["trade_date"]) >= pd.Timestamp(start)]
    daily["trade_date"] = pd.to_datetime(daily["trade_date"])
    return daily.sort_values("trade_date").reset_index(drop=True)


def prepare_intraday(rows: pd.DataFrame) -> pd.DataFrame:
    """fact_stock rows of one symbol-day -> intraday bars of its finest interval (pure).

    The finest interval is the smallest ``interval_minutes`` (the contract's column); without
    it, the most frequent ``interval``. Daily bars are never intraday.

    Renames ``open_price`` etc. to ``open``..., adds ``local_ts`` (exchange-local wall time).
    """
    import pandas as pd

    if rows.empty:
        return pd.DataFrame(columns=INTRADAY_COLUMNS)
    out = rows.rename(
        columns={
            "open_price": "open",
            "high_price": "high",
            "low_price": "low",
            "close_price": "close",
        }
    )
    if "interval" in out:
        out = out[out["interval"] != "1day"]
        if out.empty:
            return pd.DataFrame(columns=INTRADAY_COLUMNS)
        if "interval_minutes" in out and out["interval_minutes"].notna().any():
            out = out[out["interval_minutes"] == out["interval_minutes"].min()]  # finest, as the marts
        else:
            out = out[out["interval"] == out["interval"].value_counts().idxmax()]
    else:
        out = out.assign(interval=None)
    ts = pd.to_datetime(out["bar_ts"])
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    out = out.assign(bar_ts=ts, local_ts=ts.dt.tz_convert(EXCHANGE_TZ).dt.tz_localize(None))
    return out[INTRADAY_COLUMNS].sort_values("bar_ts").reset_index(drop=True)


def intraday_bars(reader: WarehouseReader, symbol: str, day: date) -> pd.DataFrame:
    """Intraday bars of ``symbol`` on trading day ``day`` from ``gold.fact_stock``."""
    import pandas as pd

    if not reader.has("gold", "fact_stock"):
        return pd.DataFrame(columns=INTRADAY_COLUMNS)
    rows = reader.query(
        "select * from {t} where symbol = ? and trade_date = ? order by bar_ts",
        [symbol, day],
        t=("gold", "fact_stock"),
    )
    return prepare_intraday(rows)


@dataclass(frozen=True)
class Movers:
    """Top gainers and losers of one trading day."""

    day: date | None
    gainers: pd.DataFrame
    losers: pd.DataFrame


def rank_movers(returns: pd.DataFrame, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one day's returns into the ``n`` best positive and ``n`` worst negative (pure)."""
    valid = returns[returns["daily_return"].notna()]
    gainers = valid[valid["daily_return"] > 0].sort_values("daily_return", ascending=False).head(n)
    losers = valid[valid["daily_return"] < 0].sort_values("daily_return", ascending=True).head(n)
    return gainers.reset_index(drop=True), losers.reset_index(drop=True)


def movers(reader: WarehouseReader, catalog: Catalog, symbols: Sequence[str], n: int = 5) -> Movers:
    """Top gainers/losers among ``symbols`` on the latest day of ``gold.mart_daily_returns``."""
    import pandas as pd

    empty = pd.DataFrame(columns=MOVER_COLUMNS)
    if not reader.has("gold", "mart_daily_returns"):
        return Movers(None, empty, empty)
    returns = reader.query(
        "select symbol, trade_date, close, prev_close, daily_return from {t} "
        "where trade_date = (select max(trade_date) from {t})",
        t=("gold", "mart_daily_returns"),
    )
    if returns.empty:
        return Movers(None, empty, empty)
    day = _to_date(returns["trade_date"].iloc[0])
    returns = returns[returns["symbol"].isin(list(symbols))]
    returns = returns.merge(catalog.companies[["symbol", "name", "sector"]], on="symbol", how="left")
    gainers, losers = rank_movers(returns[MOVER_COLUMNS], n)
    return Movers(day, gainers, losers)


def sector_performance(reader: WarehouseReader, start: date, end: date) -> pd.DataFrame:
    """``gold.mart_sector_daily`` rows in ``[start, end]``."""
    import pandas as pd

    if not reader.has("gold", "mart_sector_daily"):
        return pd.DataFrame(columns=SECTOR_COLUMNS)
    frame = reader.query(
        "select sector, trade_date, symbols, avg_return, total_volume from {t} "
        "where trade_date between ? and ? order by trade_date, sector",
        [start, end],
        t=("gold", "mart_sector_daily"),
    )
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    return frame


def latest_sector_day(sectors: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest trade date (pure)."""
    if sectors.empty:
        return sectors
    last = sectors["trade_date"].max()
    return sectors[sectors["trade_date"] == last].sort_values("avg_return", ascending=False)


def symbol_summary(reader: WarehouseReader, catalog: Catalog) -> pd.DataFrame:
    """One row per symbol: name, sector, days, first/last day, last close and last return."""
    import pandas as pd

    out = catalog.companies[["symbol", "name", "sector", "first_day", "last_day", "n"]].rename(
        columns={"n": "days"}
    )
    if reader.has("gold", "mart_daily_returns"):
        last = reader.query(
            "select r.symbol, r.close as last_close, r.daily_return as last_return from {t} r "
            "join (select symbol, max(trade_date) as d from {t} group by symbol) m "
            "on r.symbol = m.symbol and r.trade_date = m.d",
            t=("gold", "mart_daily_returns"),
        )
        out = out.merge(last, on="symbol", how="left")
    for col in ("first_day", "last_day"):
        out[col] = pd.to_datetime(out[col]).dt.date
    return out.reset_index(drop=True)
