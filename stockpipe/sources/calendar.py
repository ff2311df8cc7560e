"""Trading sessions from ``exchange_calendars``: the ONE calendar every stage uses.

The simulator, replay (bare dates are stamped at the session open), the Spark job
(``trade_date`` and ``is_regular_session`` via ``session_rows``) and hence the dbt marts all
read sessions, holidays and early closes from here. The default exchange is NYSE (``XNYS``):
regular hours 09:30-16:00 America/New_York, early closes (e.g. the day after Thanksgiving) at
13:00, holidays without a session. Any ``exchange_calendars`` code (XLON, XAMS, XSHG, ...) or
alias (NYSE, NASDAQ, LSE, ...) works for the ``exchange`` arguments.

Lookups read each exchange's sessions as a ``SessionTable`` (``session_table``): built from
``exchange_calendars`` once per day and library version and kept in the user's cache folder, so
a short process (a ``run``, an Airflow task) neither imports the library nor builds a calendar
(about 1 s together, measured).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from stockpipe.errors import ConfigError
from stockpipe.sources.session_table import SessionTable, aliases, load_table

EXCHANGE = "XNYS"
DEFAULT_EXCHANGE = EXCHANGE
EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
CALENDAR_START = "1990-01-01"


@lru_cache(maxsize=128)
def resolve_exchange(code: str | None) -> str:
    """The canonical ``exchange_calendars`` code of ``code`` (an alias such as NASDAQ resolves to
    XNYS; empty means XNYS); ``ConfigError`` when exchange_calendars does not know it."""
    text = (code or "").strip().upper()
    if not text:
        return DEFAULT_EXCHANGE
    canonical = aliases().get(text)
    if canonical is None:
        raise ConfigError(
            f"Unknown exchange {code!r}: use an exchange_calendars code such as XNYS, XLON, XAMS or XSHG."
        )
    return canonical


def table_for(code: str = DEFAULT_EXCHANGE) -> SessionTable:
    """The sessions of ``code`` (from 1990, or its first supported day, to about a year ahead)."""
    return _table(resolve_exchange(code))


@lru_cache(maxsize=32)
def _table(canonical: str) -> SessionTable:
    return load_table(canonical, CALENDAR_START)


def last_session(code: str = DEFAULT_EXCHANGE) -> date:
    """The last session the calendar knows (about a year from today)."""
    return table_for(code).last


def exchange_zone(code: str = DEFAULT_EXCHANGE) -> ZoneInfo:
    """The time zone of ``code``'s sessions (XNYS: America/New_York, XLON: Europe/London)."""
    return _zone(resolve_exchange(code))


@lru_cache(maxsize=32)
def _zone(canonical: str) -> ZoneInfo:
    return ZoneInfo(_table(canonical).tz)


def session_bounds(day: date, code: str = DEFAULT_EXCHANGE) -> tuple[datetime, datetime] | None:
    """Open and close (UTC) of ``day``'s session on ``code``; None on a day without one."""
    table = table_for(code)
    found = table.span(day, day)
    return table.bounds(found.start)[1:] if found else None


def session_open(day: date, code: str = DEFAULT_EXCHANGE) -> datetime:
    """The open of ``day``'s session on ``code``, in the exchange's zone; on a non-session day (a
    holiday row in an export) the exchange's regular open time."""
    canonical = resolve_exchange(code)
    zone = _zone(canonical)
    bounds = session_bounds(day, canonical)
    if bounds is None:
        return datetime.combine(day, _table(canonical).regular_open, zone)
    return bounds[0].astimezone(zone)


def session_rows(code: str, start: date, end: date) -> list[tuple[str, date, int, int]]:
    """``(exchange, day, open, close)`` of every session of ``code`` in [start, end], open and
    close in epoch seconds (UTC), clipped to the calendar's range (the Spark job's broadcast
    sessions table; about 9,000 rows from 1990, read straight from the table)."""
    table = table_for(code)
    days, opens, closes = table.days, table.opens, table.closes
    return [(table.code, date.fromordinal(days[i]), opens[i], closes[i]) for i in table.span(start, end)]


def _bounds() -> tuple[date, date]:
    table = table_for(EXCHANGE)
    return table.first, table.last


def _check_range(start: date, end: date) -> None:
    first, last = _bounds()
    if start < first or end > last:
        raise ConfigError(f"Dates {start}..{end} are outside the NYSE calendar's range {first}..{last}.")


def trading_days(start: date, end: date) -> list[date]:
    """NYSE sessions from ``start`` to ``end`` inclusive (weekends and holidays removed)."""
    return [day for day, _, _ in sessions(start, end)]


def sessions(start: date, end: date) -> list[tuple[date, datetime, datetime]]:
    """``(day, open_utc, close_utc)`` for each NYSE session from ``start`` to ``end`` inclusive."""
    if end < start:
        return []
    _check_range(start, end)
    table = table_for(EXCHANGE)
    return [table.bounds(i) for i in table.span(start, end)]


def session_minutes(day: date) -> tuple[datetime, datetime]:
    """Open and close of ``day``'s regular session as UTC datetimes.

    Raises ``ConfigError`` when ``day`` is not a trading day.
    """
    bounds = session_bounds(day)
    if bounds is None:
        raise ConfigError(f"{day} is not an NYSE trading day.")
    return bounds


def is_trading_day(day: date) -> bool:
    """True when the NYSE holds a session on ``day``."""
    return bool(trading_days(day, day))


@lru_cache(maxsize=4096)
def _session_bounds(day: date) -> tuple[datetime, datetime] | None:
    return session_bounds(day)


def is_regular_session(ts: datetime) -> bool:
    """True when ``ts`` (tz-aware) falls in a regular session: open <= ts < close."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("is_regular_session needs a timezone-aware datetime")
    bounds = _session_bounds(ts.astimezone(EXCHANGE_TZ).date())
    return bounds is not None and bounds[0] <= ts.astimezone(UTC) < bounds[1]


def next_session_on_or_after(day: date) -> date:
    """The first trading day on or after ``day``."""
    _check_range(day, day)
    table = table_for(EXCHANGE)
    return table.bounds(table.index_on_or_after(day))[0]


def latest_complete_session(now: datetime) -> date:
    """The most recent session whose close is at or before ``now`` (tz-aware)."""
    today = now.astimezone(EXCHANGE_TZ).date()
    first, _ = _bounds()
    lookback = max(first, date.fromordinal(today.toordinal() - 10))
    for day, _open, close in reversed(sessions(lookback, today)):
        if close <= now:
            return day
    raise ConfigError(f"No NYSE session closed in the ten days before {today}.")
