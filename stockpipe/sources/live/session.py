"""Trading-session windows for polling: when to poll, and how many bars a gap holds.

The window of a trading day is the regular session (09:30-16:00 New York, early closes from the
exchange calendar) or, with extended hours, 04:00-20:00 New York. Pure functions over the NYSE
calendar (``stockpipe.sources.calendar``); times are tz-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from stockpipe.sources.calendar import EXCHANGE_TZ, sessions

EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)
INTERVAL_SECONDS = {"1min": 60, "5min": 300, "15min": 900, "30min": 1800, "60min": 3600}


def windows(start: datetime, end: datetime, *, extended: bool) -> list[tuple[datetime, datetime]]:
    """The session windows (UTC open, close) of the trading days from ``start``'s to ``end``'s date."""
    first = start.astimezone(EXCHANGE_TZ).date()
    last = end.astimezone(EXCHANGE_TZ).date()
    out = []
    for day, op, cl in sessions(first, last):
        if extended:
            op = datetime.combine(day, EXTENDED_OPEN, EXCHANGE_TZ).astimezone(UTC)
            cl = datetime.combine(day, EXTENDED_CLOSE, EXCHANGE_TZ).astimezone(UTC)
        out.append((op, cl))
    return out


def current_or_next_window(now: datetime, *, extended: bool) -> tuple[datetime, datetime]:
    """The window containing ``now``, else the next one to open."""
    for op, cl in windows(now, now + timedelta(days=14), extended=extended):
        if now < cl:
            return op, cl
    raise ValueError(f"no trading session in the two weeks after {now.isoformat()}")


def previous_close(now: datetime, *, extended: bool) -> datetime | None:
    """The close of the latest window that closed at or before ``now`` (within ten days)."""
    closed = [cl for _, cl in windows(now - timedelta(days=10), now, extended=extended) if cl <= now]
    return closed[-1] if closed else None


def bars_between(since: datetime, until: datetime, interval: str, *, extended: bool) -> int:
    """How many bars of ``interval`` start in the session windows after ``since`` up to ``until``.

    Used to decide whether ``outputsize=compact`` (the last 100 bars) still reaches back to the
    high-water mark. For ``1day`` it counts trading days.
    """
    if until <= since:
        return 0
    spans = windows(since, until, extended=extended)
    if interval == "1day":
        return sum(1 for op, _ in spans if since < op <= until)
    step = INTERVAL_SECONDS[interval]
    total = 0.0
    for op, cl in spans:
        lo, hi = max(op, since), min(cl, until)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return int(total // step) + 1
