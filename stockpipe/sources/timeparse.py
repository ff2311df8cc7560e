"""Parse the timestamp forms that real market-data exports use.

Accepted (``parse_timestamp`` returns an aware datetime and whether the text was a bare date):

* ISO dates and date-times: ``2024-03-04``, ``2024-03-04 09:30``, ``2024-03-04 09:30:00``,
  ``2024-03-04T09:30:00``, with or without fractional seconds, with an offset
  (``-05:00``, ``-0500``) or ``Z``;
* US slashed dates ``MM/DD/YYYY`` (month first, as US exports and Excel write them),
  optionally followed by ``HH:MM`` or ``HH:MM:SS``;
* day-first dashed dates ``DD-MM-YYYY`` optionally followed by ``HH:MM[:SS]`` (the seed's
  ``DD-MM-YYYY HH:MM`` format);
* day-first dotted dates ``DD.MM.YYYY`` (European exports), same optional time;
* compact ``YYYYMMDD`` dates, also as integers or floats (``20040817``, ``19991110.0``):
  exactly 8 digits (optionally ``.0``) forming a valid date from 1900 on; epoch numbers have
  9 or more digits, so the two never collide;
* epoch seconds or milliseconds (9 to 14 digits, optional fraction; values >= 1e11 are read
  as milliseconds), which are UTC instants;
* with ``date_format`` (strftime, e.g. ``%Y%m%d`` or ``%d/%m/%Y %H:%M``): that format only.

Naive date-times (no offset) are exchange-local (``zone``, default America/New_York, the
NYSE's zone). A bare date is stamped at the session open: ``open_at(day)`` when given (replay
passes the exchange calendar's open), else 09:30 in ``zone``.
Anything else raises ``ValueError`` with the offending text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from stockpipe.sources.calendar import EXCHANGE_TZ, REGULAR_OPEN

_EPOCH_RE = re.compile(r"^\d{9,14}(\.\d+)?$")
_SLASH_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_DMY_RE = re.compile(r"^(\d{1,2})[-.](\d{1,2})[-.](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:\.0*)?$")
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%X", "%c", "%T", "%R", "%p", "%f", "%s")
OpenAt = Callable[[date], datetime]
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")
MILLIS_THRESHOLD = 1e11


def _clock(hour: str | None, minute: str | None, second: str | None) -> time | None:
    if hour is None:
        return None
    return time(int(hour), int(minute or 0), int(second or 0))


def _combine(
    day: date, at: time | None, zone: tzinfo, open_at: OpenAt | None = None
) -> tuple[datetime, bool]:
    if at is None:
        if open_at is not None:
            return open_at(day), True
        return datetime.combine(day, REGULAR_OPEN, zone), True
    return datetime.combine(day, at, zone), False


def _with_format(s: str, fmt: str, zone: tzinfo, open_at: OpenAt | None) -> tuple[datetime, bool]:
    parsed = datetime.strptime(s, fmt)  # noqa: DTZ007  (the zone is applied just below)
    if not any(d in fmt for d in _TIME_DIRECTIVES):
        return _combine(parsed.date(), None, zone, open_at)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)), False


def parse_timestamp(
    text: str, zone: tzinfo = EXCHANGE_TZ, *, date_format: str | None = None, open_at: OpenAt | None = None
) -> tuple[datetime, bool]:
    """Parse ``text`` into ``(aware datetime, date_only)``.

    A bare date becomes the session open (``open_at(day)``, else 09:30 in ``zone``); a naive
    date-time is taken in ``zone`` (default America/New_York). With ``date_format`` only that
    strftime format is accepted.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty date")
    if date_format:
        try:
            return _with_format(s, date_format, zone, open_at)
        except ValueError:
            raise ValueError(f"date {text!r} does not match the date format {date_format!r}") from None
    try:
        m = _COMPACT_RE.match(s)
        if m and int(m[1]) >= 1900:
            return _combine(date(int(m[1]), int(m[2]), int(m[3])), None, zone, open_at)
        if _EPOCH_RE.match(s):
            value = float(s)
            seconds = value / 1000.0 if value >= MILLIS_THRESHOLD else value
            return datetime.fromtimestamp(seconds, UTC), False
        if _ISO_DATE_RE.match(s):
            return _combine(date.fromisoformat(s), None, zone, open_at)
        if _ISO_RE.match(s):
            iso = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
            parsed = datetime.fromisoformat(iso)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)), False
        m = _SLASH_RE.match(s)
        if m:
            month, day, year = int(m[1]), int(m[2]), int(m[3])
            return _combine(date(year, month, day), _clock(m[4], m[5], m[6]), zone, open_at)
        m = _DMY_RE.match(s)
        if m:
            day_, month_, year_ = int(m[1]), int(m[2]), int(m[3])
            return _combine(date(year_, month_, day_), _clock(m[4], m[5], m[6]), zone, open_at)
    except (ValueError, OverflowError, OSError):
        pass
    raise ValueError(f"cannot parse date {text!r}")


def coerce_timestamp(
    value: Any, zone: tzinfo = EXCHANGE_TZ, *, date_format: str | None = None, open_at: OpenAt | None = None
) -> tuple[datetime, bool]:
    """Like ``parse_timestamp`` but also accepts datetime/date/pandas values (Parquet columns)."""
    opts: dict[str, Any] = {"date_format": date_format, "open_at": open_at}
    if value is None:
        raise ValueError("missing date")
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)), False
    if isinstance(value, date):
        return _combine(value, None, zone, open_at)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_timestamp(repr(value) if isinstance(value, float) else str(value), zone, **opts)
    if isinstance(value, str):
        return parse_timestamp(value, zone, **opts)
    raise ValueError(f"cannot parse date {value!r}")
