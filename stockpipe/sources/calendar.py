"""Trading sessions from ``exchange_calendars``: the ONE calendar every stage uses.

The simulator, replay (bare dates are stamped at the session open), the Spark job
(``trade_date`` and ``is_regular_session`` via ``session_rows``) and hence the dbt marts all
read sessions, holidays and early closes from here. The default exchange is NYSE (``XNYS``):
regular hours 09:30-16:00 America/New_York, early closes (e.g. the day after Thanksgiving) at
13:00, holidays without a session. Any ``exchange_calendars`` code (XLON, XAMS, XSHG, ...) or
alias (NYSE, NASDAQ, LSE, ...) works for the ``exchange`` arguments. Each calendar is built once
(about 0.3-0.5 s) and cached; ``exchange_calendars`` and pandas are imported lazily.
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
DEFAULT_EXCHANGE = EXCHANGE
EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
CALENDAR_START = "1990-01-01"


@lru_cache(maxsize=128)
def resolve_exchange(code: str | None) -> str:
    """The canonical ``exchange_calendars`` code of ``code`` (an alias such as NASDAQ resolves to
    XNYS; empty means XNYS); ``ConfigError`` when exchange_calendars does not know it."""
    import exchange_calendars as xcals

    text = (code or "").strip().upper()
    if not text:
        return DEFAULT_EXCHANGE
    names = set(xcals.get_calendar_names(include_aliases=True))
    if text not in names:
        raise ConfigError(
            f"Unknown exchange {code!r}: use an exchange_calendars code such as XNYS, XLON, XAMS or XSHG."
        )
    return str(xcals.resolve_alias(text))


def calendar_for(code: str = DEFAULT_EXCHANGE) -> exchange_calendars.ExchangeCalendar:
    """The cached calendar of ``code`` (from 1990, or its first supported day, to about a year ahead)."""
    return _calendar(resolve_exchange(code))


@lru_cache(maxsize=32)
def _calendar(canonical: str) -> exchange_calendars.ExchangeCalendar:
    import exchange_calendars as xcals
    import pandas as pd

    factories = xcals.calendar_utils.global_calendar_dispatcher._calendar_factories
    cls = factories.get(canonical)
    start = pd.Timestamp(CALENDAR_START)
    lower = cls.bound_min() if cls is not None else None  # e.g. XSHG starts 1990-12-03
    if lower is not None and lower > start:
        start = lower
    return xcals.get_calendar(canonical, start=start.strftime("%Y-%m-%d"))


def nyse_calendar() -> exchange_calendars.ExchangeCalendar:
    """The cached XNYS calendar (1990 to about a year from today)."""
    return calendar_for(EXCHANGE)


def exchange_zone(code: str = DEFAULT_EXCHANGE) -> ZoneInfo:
    """The time zone of ``code``'s sessions (XNYS: America/New_York, XLON: Europe/London)."""
    return _zone(resolve_exchange(code))


@lru_cache(maxsize=32)
def _zone(canonical: str) -> ZoneInfo:
    return ZoneInfo(str(_calendar(canonical).tz))


@lru_cache(maxsize=32)
def _opens(code: str) -> tuple[dict[date, datetime], time]:
    cal = calendar_for(code)
    sched: Any = cal.schedule
    days = sched.index.date.tolist()
    opens = {
        d: datetime.fromtimestamp(o, UTC) for d, o in zip(days, _epoch_seconds(sched["open"]), strict=True)
    }
    return opens, cal.open_times[-1][1]


def session_open(day: date, code: str = DEFAULT_EXCHANGE) -> datetime:
    """The open of ``day``'s session on ``code``, in the exchange's zone; on a non-session day (a
    holiday row in an export) the exchange's regular open time."""
    canonical = resolve_exchange(code)
    opens, regular = _opens(canonical)
    found = opens.get(day)
    zone = _zone(canonical)
    return found.astimezone(zone) if found is not None else datetime.combine(day, regular, zone)


def session_rows(code: str, start: date, end: date) -> list[tuple[str, date, datetime, datetime]]:
    """``(exchange, day, open_utc, close_utc)`` of every session of ``code`` in [start, end],
    clipped to the calendar's range (the Spark job's broadcast sessions table)."""
    cal = calendar_for(code)
    first, last = cal.first_session.date(), cal.last_session.date()
    lo, hi = max(start, first), min(end, last)
    if hi < lo:
        return []
    sched: Any = cal.schedule.loc[slice(lo.isoformat(), hi.isoformat())]
    canonical = resolve_exchange(code)
    days = sched.index.date.tolist()
    return [
        (canonical, d, datetime.fromtimestamp(o, UTC), datetime.fromtimestamp(c, UTC))
        for d, o, c in zip(days, _epoch_seconds(sched["open"]), _epoch_seconds(sched["close"]), strict=True)
    ]


def _epoch_seconds(column: Any) -> list[int]:
    """Whole epoch seconds of a tz-aware pandas column (vectorised: 10k rows in milliseconds)."""
    import pandas as pd

    seconds = (column - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return [int(v) for v in seconds.tolist()]


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
