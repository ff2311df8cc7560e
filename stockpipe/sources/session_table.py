"""An exchange's sessions as a small table, built from ``exchange_calendars`` and cached on disk.

``exchange_calendars`` is the one source of sessions, holidays and early closes. Importing it
(with pandas) and building a calendar from 1990 takes about 1 s, paid again by every short
process (each ``stockpipe run``, ``clean`` and Airflow task) that only needs a few lookups. This
module keeps what those lookups read (session dates, opens and closes in UTC, the time zone and
the regular open time) in a JSON file per exchange under the user's cache folder
(``$XDG_CACHE_HOME/stockpipe/calendars``, else ``~/.cache/stockpipe/calendars``); loading it
takes milliseconds and needs neither library.

A file is used only when it was built by the installed ``exchange_calendars`` version, from the
same start, on the same UTC day (the library's calendars end about a year after the day they are
built): upgrading the library or a new day rebuilds it. Files are replaced atomically; one that
cannot be read or written is rebuilt or skipped (the cache is an optimisation, never a source).
"""

from __future__ import annotations

import json
import logging
import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from stockpipe.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class SessionTable:
    """Every session of one exchange: ``days`` (date ordinals, ascending) with their open and
    close as epoch seconds (UTC)."""

    code: str
    tz: str
    regular_open: time
    days: tuple[int, ...]
    opens: tuple[int, ...]
    closes: tuple[int, ...]

    @property
    def first(self) -> date:
        return date.fromordinal(self.days[0])

    @property
    def last(self) -> date:
        return date.fromordinal(self.days[-1])

    def span(self, start: date, end: date) -> range:
        """Indices of the sessions from ``start`` to ``end`` inclusive."""
        return range(bisect_left(self.days, start.toordinal()), bisect_right(self.days, end.toordinal()))

    def index_on_or_after(self, day: date) -> int:
        """Index of the first session on or after ``day`` (``len(days)`` when there is none)."""
        return bisect_left(self.days, day.toordinal())

    def bounds(self, i: int) -> tuple[date, datetime, datetime]:
        """``(day, open_utc, close_utc)`` of session ``i``."""
        return (
            date.fromordinal(self.days[i]),
            datetime.fromtimestamp(self.opens[i], UTC),
            datetime.fromtimestamp(self.closes[i], UTC),
        )


def cache_dir() -> Path:
    """Where the tables are kept: ``$XDG_CACHE_HOME/stockpipe/calendars`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stockpipe" / "calendars"


def library_version() -> str:
    try:
        return version("exchange_calendars")
    except PackageNotFoundError:  # pragma: no cover - a dependency of stockpipe
        return "unknown"


def load_table(canonical: str, start: str) -> SessionTable:
    """The table of ``canonical`` from ``start`` (cached on disk, else built and cached)."""
    stamp = {
        "format": FORMAT,
        "library": library_version(),
        "code": canonical,
        "start": start,
        "built": datetime.now(UTC).date().isoformat(),
    }
    path = cache_dir() / f"{canonical}.json"
    cached = _read(path)
    if cached is not None and all(cached.get(k) == v for k, v in stamp.items()):
        try:
            return _from_json(cached)
        except (KeyError, TypeError, ValueError):
            log.debug("calendar cache %s is unreadable; rebuilding it", path)
    table = build_table(canonical, start)
    _write(path, {**stamp, **_to_json(table)})
    return table


def build_table(canonical: str, start: str) -> SessionTable:
    """The table of ``canonical`` straight from ``exchange_calendars`` (no cache), from ``start`` or
    the calendar's first supported day."""
    import exchange_calendars as xcals
    import pandas as pd

    first = pd.Timestamp(start)
    factory = xcals.calendar_utils.global_calendar_dispatcher._calendar_factories.get(canonical)
    lower = factory.bound_min() if factory is not None else None  # e.g. XSHG starts 1990-12-03
    if lower is not None and lower > first:
        first = lower
    cal = xcals.get_calendar(canonical, start=first.strftime("%Y-%m-%d"))
    sched: Any = cal.schedule
    zero = pd.Timestamp(0, tz="UTC")
    second = pd.Timedelta(seconds=1)
    return SessionTable(
        code=canonical,
        tz=str(cal.tz),
        regular_open=cal.open_times[-1][1],
        days=tuple(d.toordinal() for d in sched.index.date.tolist()),
        opens=tuple(int(v) for v in ((sched["open"] - zero) // second).tolist()),
        closes=tuple(int(v) for v in ((sched["close"] - zero) // second).tolist()),
    )


@cache
def aliases() -> dict[str, str]:
    """Every ``exchange_calendars`` name and alias -> its canonical code (cached on disk per version)."""
    path = cache_dir() / "aliases.json"
    cached = _read(path)
    names = cached.get("names") if cached is not None and cached.get("library") == library_version() else None
    if isinstance(names, dict):
        return {str(k): str(v) for k, v in names.items()}
    import exchange_calendars as xcals

    names = {n: str(xcals.resolve_alias(n)) for n in xcals.get_calendar_names(include_aliases=True)}
    _write(path, {"format": FORMAT, "library": library_version(), "names": names})
    return names


def _to_json(table: SessionTable) -> dict[str, Any]:
    return {
        "tz": table.tz,
        "regular_open": table.regular_open.isoformat(),
        "days": list(table.days),
        "opens": list(table.opens),
        "closes": list(table.closes),
    }


def _from_json(doc: dict[str, Any]) -> SessionTable:
    days, opens, closes = (tuple(int(v) for v in doc[k]) for k in ("days", "opens", "closes"))
    if not days or not len(days) == len(opens) == len(closes):
        raise ValueError("inconsistent calendar table")
    return SessionTable(
        code=str(doc["code"]),
        tz=str(doc["tz"]),
        regular_open=time.fromisoformat(doc["regular_open"]),
        days=days,
        opens=opens,
        closes=closes,
    )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _write(path: Path, doc: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(doc, separators=(",", ":")).encode())
    except OSError as exc:  # a read-only home: every process builds the calendar itself
        log.debug("calendar cache %s not written: %s", path, exc)
