"""The trading calendar as two small Spark tables, built on the driver from ``exchange_calendars``.

``sources.calendar`` is the one definition of sessions, holidays and early closes; this module
turns it into what the cleaning job joins (broadcast, no Python UDF):

* ``symbols``: ``symbol, exchange, tz`` from the companies reference (a symbol not listed trades
  on XNYS);
* ``sessions``: ``exchange, session_date, open_utc, close_utc`` for every session of each
  exchange in the reference, 1990 (or the calendar's first session) to about a year ahead:
  about 9,500 rows per exchange, a fraction of a second to build.

``transforms.normalise`` then derives ``trade_date`` (the exchange-local date of ``bar_ts``) and
``is_regular_session`` (``open_utc <= bar_ts < close_utc`` of that date's session; a daily bar:
the date is a session) from them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from stockpipe.contract.companies import DEFAULT_EXCHANGE
from stockpipe.errors import ConfigError
from stockpipe.sources import calendar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
FIRST_DAY = date(1990, 1, 1)
_CACHE: dict[tuple[tuple[str, str], ...], tuple[SparkSession, SessionCalendar]] = {}


@dataclass(frozen=True)
class SessionCalendar:
    """The broadcast side of the session join (see the module docstring)."""

    symbols: DataFrame
    sessions: DataFrame


def resolve_symbol_exchanges(symbol_exchange: Mapping[str, str | None]) -> dict[str, str]:
    """Symbol -> canonical exchange code; an exchange exchange_calendars does not know is
    logged once and read as XNYS (``stockpipe companies add`` refuses such codes up front)."""
    out: dict[str, str] = {}
    bad: set[str] = set()
    for symbol, exchange in symbol_exchange.items():
        try:
            out[symbol] = calendar.resolve_exchange(exchange)
        except ConfigError:
            bad.add(str(exchange))
            out[symbol] = DEFAULT_EXCHANGE
    if bad:
        log.warning(
            "Unknown exchange(s) %s in the companies reference: read as XNYS.", ", ".join(sorted(bad))
        )
    return out


@lru_cache(maxsize=32)
def _session_rows(exchange: str) -> tuple[tuple[str, date, int, int], ...]:
    last = date(datetime.now(UTC).year + 2, 1, 1)  # clipped to the calendar's own end
    return tuple(calendar.session_rows(exchange, FIRST_DAY, last))


def session_calendar(
    spark: SparkSession, symbol_exchange: Mapping[str, str | None] | None = None
) -> SessionCalendar:
    """The two tables for the companies reference's ``symbol -> exchange`` (default: none, XNYS)."""
    from pyspark.sql import functions as F

    resolved = resolve_symbol_exchanges(symbol_exchange or {})
    key = tuple(sorted(resolved.items()))
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is spark:  # a stream's cycles: one session, one reference
        return cached[1]
    exchanges = sorted({DEFAULT_EXCHANGE, *resolved.values()})
    zones = {ex: str(calendar.exchange_zone(ex)) for ex in exchanges}
    symbols = spark.createDataFrame(
        [(s, ex, zones[ex]) for s, ex in sorted(resolved.items())]
        or [("", DEFAULT_EXCHANGE, zones[DEFAULT_EXCHANGE])],
        "symbol string, exchange string, tz string",
    )
    rows = [r for ex in exchanges for r in _session_rows(ex)]
    sessions = spark.createDataFrame(
        rows, "exchange string, session_date date, open_s long, close_s long"
    ).select(
        "exchange",
        "session_date",
        F.timestamp_seconds("open_s").alias("open_utc"),
        F.timestamp_seconds("close_s").alias("close_utc"),
    )
    result = SessionCalendar(symbols=symbols, sessions=sessions)
    _CACHE.clear()  # keep only the latest: a new reference or session replaces it
    _CACHE[key] = (spark, result)  # the session is held, so ``is`` cannot match a new one
    return result
