"""The one Alpha Vantage ``TIME_SERIES_*`` JSON parser, used by replay and the live source.

Handles ``TIME_SERIES_INTRADAY`` (``Time Series (1min)`` ... ``(60min)``, bar times in
``Meta Data`` -> ``6. Time Zone``, e.g. ``US/Eastern``) and ``TIME_SERIES_DAILY`` /
``TIME_SERIES_DAILY_ADJUSTED`` (``Time Series (Daily)``; a daily bar is stamped 09:30
exchange-local, the regular-session open). Alpha Vantage stamps intraday bars with their
start time. A reply carrying ``Note``, ``Information`` or ``Error Message`` is an error
reply, never data: ``error_reply`` finds it and ``parse_time_series`` refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stockpipe.contract import Bar
from stockpipe.contract.bar import DAILY_INTERVAL, INTRADAY_INTERVALS
from stockpipe.sources.bar_builder import make_bar, parse_number, parse_volume
from stockpipe.sources.calendar import EXCHANGE_TZ
from stockpipe.sources.timeparse import parse_timestamp

ERROR_KEYS = ("Error Message", "Note", "Information")
_SERIES_RE = re.compile(r"^Time Series \((\w+)\)$")
# series name in "Time Series (<name>)" -> contract interval
_INTERVALS = {**{i: i for i in INTRADAY_INTERVALS}, "Daily": DAILY_INTERVAL}
_ZONES = {"US/Eastern": EXCHANGE_TZ, "America/New_York": EXCHANGE_TZ}
_RATE_LIMIT_RE = re.compile(
    r"rate limit|call frequency|calls per minute|requests per (minute|day)|spreading out|sparingly",
    re.IGNORECASE,
)


class AlphaVantageErrorReply(Exception):  # a reply, translated by each caller
    """The payload is an Alpha Vantage error reply (``kind`` is the key that carried it)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def is_rate_limit(self) -> bool:
        """True when the reply says the request rate or daily quota was exceeded."""
        return self.kind in ("Note", "Information") and bool(_RATE_LIMIT_RE.search(self.message))


class AlphaVantageFormatError(ValueError):
    """The payload is not a time-series reply, or one entry is malformed (``key`` names it)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def error_reply(payload: Any) -> AlphaVantageErrorReply | None:
    """The error carried by ``payload`` (``Error Message`` first), or ``None`` for data."""
    if not isinstance(payload, dict):
        return None
    for kind in ERROR_KEYS:
        if kind in payload:
            return AlphaVantageErrorReply(kind, str(payload[kind]).strip())
    return None


def _field(name: str) -> str:
    """``'6. Time Zone'`` -> ``'time zone'``; ``'1. open'`` -> ``'open'``."""
    return name.split(". ", 1)[-1].strip().lower()


def _zone(name: str) -> tzinfo:
    if name in _ZONES:
        return _ZONES[name]
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AlphaVantageFormatError(f"unknown time zone {name!r} in Meta Data") from None


def parse_time_series(
    payload: Any,
    *,
    source: str,
    produced_at: Callable[[], datetime],
    symbol: str | None = None,
) -> list[Bar]:
    """Bars of an Alpha Vantage time-series reply, oldest first.

    ``symbol`` overrides ``Meta Data`` -> ``2. Symbol``. Raises ``AlphaVantageErrorReply``
    for an error reply and ``AlphaVantageFormatError`` for anything else unusable.
    """
    err = error_reply(payload)
    if err is not None:
        raise err
    if not isinstance(payload, dict):
        raise AlphaVantageFormatError("not a JSON object")
    meta = payload.get("Meta Data")
    if not isinstance(meta, dict):
        raise AlphaVantageFormatError("no 'Meta Data' object: not an Alpha Vantage time-series reply")
    fields = {_field(k): v for k, v in meta.items()}
    series_keys = [k for k in payload if k.startswith("Time Series")]
    if len(series_keys) != 1:
        raise AlphaVantageFormatError("expected exactly one 'Time Series (...)' object")
    series_key = series_keys[0]
    match = _SERIES_RE.match(series_key)
    if not match or match[1] not in _INTERVALS:
        raise AlphaVantageFormatError(f"unsupported series {series_key!r} (intraday or daily only)")
    interval = _INTERVALS[match[1]]
    zone = _zone(str(fields.get("time zone", "US/Eastern")))
    sym = (symbol or str(fields.get("symbol", ""))).strip().upper()
    if not sym:
        raise AlphaVantageFormatError("no symbol in 'Meta Data'")
    series = payload[series_key]
    if not isinstance(series, dict):
        raise AlphaVantageFormatError(f"{series_key!r} is not an object")

    bars: list[Bar] = []
    for key, entry in series.items():
        try:
            if not isinstance(entry, dict):
                raise ValueError("entry is not an object")
            values = {_field(k): v for k, v in entry.items()}
            ts, _date_only = parse_timestamp(key, zone)
            bars.append(
                make_bar(
                    symbol=sym,
                    interval=interval,
                    bar_ts=ts,
                    open=parse_number(values.get("open"), "open"),
                    high=parse_number(values.get("high"), "high"),
                    low=parse_number(values.get("low"), "low"),
                    close=parse_number(values.get("close"), "close"),
                    volume=parse_volume(values.get("volume")),
                    source=source,
                    produced_at=produced_at(),
                )
            )
        except ValueError as exc:
            raise AlphaVantageFormatError(f"bar {key!r}: {exc}", key) from None
    bars.sort(key=lambda b: b.bar_ts)
    return bars


def line_of_key(text: str, key: str) -> int | None:
    """1-based line of the first ``"key"`` in a JSON text (for error messages)."""
    pos = text.find(f'"{key}"')
    return None if pos < 0 else text.count("\n", 0, pos) + 1
