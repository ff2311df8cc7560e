"""NYSE trading sessions (exchange_calendars ``XNYS``): trading days, open/close, regular hours.

Regular hours are 09:30-16:00 America/New_York; early closes (e.g. the day after
Thanksgiving) end at 13:00; holidays have no session. The calendar object is built once
(about 0.3 s) and cached; ``exchange_calendars`` and pandas are imported lazily.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from stockpipe.errors import ConfigError

if TYPE_CHECKING:
    import exchange_calendars

EXCHANGE = "XNYS"
EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
CALENDAR_START = "1990-01-01"


@lru_cache(maxsize=1)
def nyse_calendar() -> exchange_calendars.ExchangeCalendar:
    """The cached XNYS calendar (1990 to about a year from today)."""
    import exchange_calendars as xcals

    return xcals.get_calendar(EXCHANGE, start=CALENDAR_START)


def _bounds() -> tuple[date, date]:
    cal = nyse_calendar()
    return cal.first_session.date(), cal.last_session.date()


def _check_range(start: date, end: date) -> None:
    first, last = _bounds()
    if start < first or end > last:
        raise ConfigError(f"Dates {start}..{end} are outside the NYSE calendar's range {first}..{last}.")


def _schedule(start: date, end: date) -> Any:
    """Rows of the calendar schedule (``open``/``close`` UTC) for sessions in [start, end]."""
    _check_range(start, end)
    sched: Any = nyse_calendar().schedule
    return sched.loc[slice(start.isoformat(), end.isoformat())]


def trading_days(start: date, end: date) -> list[date]:
    """NYSE sessions from ``start`` to ``end`` inclusive (weekends and holidays removed)."""
    if end < start:
        return []
    return [ts.date() for ts in _schedule(start, end).index]


def sessions(start: date, end: date) -> list[tuple[date, datetime, datetime]]:
    """``(day, open_utc, close_utc)`` for each NYSE session from ``start`` to ``end`` inclusive."""
    if end < start:
        return []
    sched = _schedule(start, end)
    return [
        (day.date(), op.to_pydatetime().astimezone(UTC), cl.to_pydatetime().astimezone(UTC))
        for day, op, cl in zip(sched.index, sched["open"], sched["close"], strict=True)
    ]


def session_minutes(day: date) -> tuple[datetime, datetime]:
    """Open and close of ``day``'s regular session as UTC datetimes.

    Raises ``ConfigError`` when ``day`` is not a trading day.
    """
    found = sessions(day, day)
    if not found:
        raise ConfigError(f"{day} is not an NYSE trading day.")
    return found[0][1], found[0][2]


def is_trading_day(day: date) -> bool:
    """True when the NYSE holds a session on ``day``."""
    return bool(trading_days(day, day))


@lru_cache(maxsize=4096)
def _session_bounds(day: date) -> tuple[datetime, datetime] | None:
    found = sessions(day, day)
    return (found[0][1], found[0][2]) if found else None


def is_regular_session(ts: datetime) -> bool:
    """True when ``ts`` (tz-aware) falls in a regular session: open <= ts < close."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("is_regular_session needs a timezone-aware datetime")
    bounds = _session_bounds(ts.astimezone(EXCHANGE_TZ).date())
    return bounds is not None and bounds[0] <= ts.astimezone(UTC) < bounds[1]


def next_session_on_or_after(day: date) -> date:
    """The first trading day on or after ``day``."""
    import pandas as pd

    _check_range(day, day)
    return nyse_calendar().date_to_session(pd.Timestamp(day), direction="next").date()


def latest_complete_session(now: datetime) -> date:
    """The most recent session whose close is at or before ``now`` (tz-aware)."""
    today = now.astimezone(EXCHANGE_TZ).date()
    first, _ = _bounds()
    lookback = max(first, date.fromordinal(today.toordinal() - 10))
    for day, _open, close in reversed(sessions(lookback, today)):
        if close <= now:
            return day
    raise ConfigError(f"No NYSE session closed in the ten days before {today}.")
