"""``SimulatorSource``: deterministic, realistic bars for NYSE regular sessions.

Backfill (default) generates a date range as fast as possible; ``realtime=True`` paces the
bars on a simulated clock running ``speed`` times faster than the wall clock.

Choices worth knowing:

* Determinism: the same ``seed``, symbols, start and interval give the same bars; each
  symbol has its own generator (seeded from seed and symbol), so adding a symbol does not
  change the others. The walk starts at ``start``, so a different start gives different
  prices for the same day.
* ``bar_ts`` is the bar's start in America/New_York (``2024-03-04T09:30:00-05:00``);
  ``produced_at`` is the UTC wall time at which the bar is yielded. Longer intervals
  (``5min`` ... ``60min``) are aggregated from the 1-minute path and aligned to the session
  open (the last bar of an early-close day may be short); ``1day`` is one bar per session
  stamped at the 09:30 open, like daily replay bars.
* Order: all symbols' bar for minute t, then minute t+1, so Kafka partitions interleave.
* Backfill range: ``start`` (default: the last session that has closed) to ``end``
  (default: ``start``). Realtime: the clock starts at ``start``'s first session open or,
  without ``start``, now; a bar is emitted when its interval has ended on the simulated
  clock; closed-market time (nights, weekends, holidays) is skipped, so the clock jumps
  from one close to the next open; without ``end`` it runs until stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from stockpipe.contract import Bar
from stockpipe.contract.bar import DAILY_INTERVAL, INTERVAL_MINUTES, SCHEMA_VERSION, SYMBOL_RE
from stockpipe.errors import ConfigError
from stockpipe.sources import price_path
from stockpipe.sources.base import Source, SourceOptions
from stockpipe.sources.calendar import EXCHANGE_TZ, last_session, latest_complete_session, sessions
from stockpipe.sources.companies import default_symbols

if TYPE_CHECKING:
    from stockpipe.settings import Settings

# the contract's interval table; a daily bar spans the whole session (None)
MINUTES_PER_BAR: dict[str, int | None] = {
    name: None if name == DAILY_INTERVAL else minutes for name, minutes in INTERVAL_MINUTES.items()
}
# symbol, then the session's open/high/low/close/volume per bar, as plain lists
SymbolDay = tuple[str, list[float], list[float], list[float], list[float], list[int]]
MAX_SLEEP_STEP = 0.05  # seconds: how long a stop request may go unnoticed while pacing


@dataclass(frozen=True)
class Session:
    """One NYSE session: its day and UTC open/close."""

    day: date
    open: datetime
    close: datetime

    @property
    def minutes(self) -> int:
        return int((self.close - self.open).total_seconds() // 60)


def _bar_offsets(session: Session, interval: str) -> list[tuple[int, int]]:
    """``(start_minute, end_minute)`` offsets from the open of each bar in the session."""
    n = session.minutes
    step = MINUTES_PER_BAR[interval] or n
    return [(s, min(s + step, n)) for s in range(0, n, step)]


class SimulatorSource(Source):
    """Simulated 1-minute (or aggregated) bars for the given symbols and NYSE sessions."""

    name = "simulator"

    def __init__(
        self,
        options: SourceOptions,
        *,
        stop_event: threading.Event | None = None,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if options.interval not in MINUTES_PER_BAR:
            raise ConfigError(
                f"The simulator cannot make {options.interval!r} bars: "
                f"choose one of {', '.join(MINUTES_PER_BAR)}."
            )
        if options.realtime and options.speed <= 0:
            raise ConfigError(f"The real-time speed must be positive, got {options.speed}.")
        if options.limit is not None and options.limit < 0:
            raise ConfigError(f"The bar limit must not be negative, got {options.limit}.")
        self.options = options
        self.symbols = self._symbols(options.symbols)
        self.stop_event = stop_event or threading.Event()
        self._now = now or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._sleep = sleep
        self._clock_start = self._start_instant()
        self.sessions = self._sessions()

    @staticmethod
    def _symbols(requested: tuple[str, ...]) -> tuple[str, ...]:
        if not requested:
            return default_symbols()
        symbols = tuple(dict.fromkeys(s.strip().upper() for s in requested))
        bad = [s for s in symbols if not SYMBOL_RE.fullmatch(s)]
        if bad:
            raise ConfigError(f"Invalid symbol(s) for the simulator: {', '.join(bad)}.")
        return symbols

    def _start_instant(self) -> datetime:
        """When the simulated clock starts (realtime) or the first backfilled day begins."""
        opts = self.options
        if opts.start is not None:
            return datetime.combine(opts.start, datetime.min.time(), EXCHANGE_TZ).astimezone(UTC)
        if opts.realtime:
            return self._now().astimezone(UTC)

        day = latest_complete_session(self._now())
        return datetime.combine(day, datetime.min.time(), EXCHANGE_TZ).astimezone(UTC)

    def _sessions(self) -> list[Session]:
        opts = self.options
        first = self._clock_start.astimezone(EXCHANGE_TZ).date()
        if opts.end is not None:
            last = opts.end
        elif opts.realtime:
            last = last_session()
        else:
            last = first
        found = [Session(d, o, c) for d, o, c in sessions(first, last)]
        return [s for s in found if s.close > self._clock_start]

    def _due(self, session: Session) -> list[tuple[int, int]]:
        """The bars of ``session`` still to emit (all, except mid-session realtime starts)."""
        offsets = _bar_offsets(session, self.options.interval)
        if self._clock_start <= session.open:
            return offsets
        elapsed = (self._clock_start - session.open).total_seconds() / 60
        return [(s, e) for s, e in offsets if e > elapsed]

    def estimated_count(self) -> int | None:
        """Exact number of bars (``None`` for an endless real-time run)."""
        if self.options.realtime and self.options.end is None:
            return self.options.limit
        total = len(self.symbols) * sum(len(self._due(s)) for s in self.sessions)
        return total if self.options.limit is None else min(total, self.options.limit)

    def bars(self) -> Iterator[Bar]:
        """Yield bars time-major (all symbols for bar t, then t+1), paced when realtime."""
        limit = self.options.limit
        if limit == 0:
            return
        sent = 0
        interval = self.options.interval
        now = self._now
        pacer = _Pacer(self) if self.options.realtime else None
        for session, emit_at, bar_ts, k, per_symbol in self._steps():
            if self.stop_event.is_set():
                return
            if pacer is not None and not pacer.wait_until(session, emit_at):
                return
            for sym, o, h, lo, c, v in per_symbol:
                yield _fast_bar(sym, interval, bar_ts, o[k], h[k], lo[k], c[k], v[k], now())
                sent += 1
                if limit is not None and sent >= limit:
                    return

    def _steps(self) -> Iterator[tuple[Session, datetime, datetime, int, list[SymbolDay]]]:
        """Per bar time: session, UTC moment the bars are complete, bar_ts, index, symbol data."""

        walks = [price_path.new_walk(self.options.seed, s) for s in self.symbols]
        minutes_per_bar = MINUTES_PER_BAR[self.options.interval]
        for session in self.sessions:
            n = session.minutes
            starts = price_path.group_starts(n, minutes_per_bar)
            per_symbol: list[SymbolDay] = []
            for walk in walks:
                agg = price_path.aggregate(price_path.simulate_session(walk, n), starts)
                per_symbol.append(
                    (walk.symbol, agg.open.tolist(), agg.high.tolist(), agg.low.tolist(),
                     agg.close.tolist(), agg.volume.tolist())
                )  # fmt: skip
            due = self._due(session)
            first_due = len(starts) - len(due)
            for k, (start_min, end_min) in enumerate(due, start=first_due):
                bar_ts = (session.open + timedelta(minutes=start_min)).astimezone(EXCHANGE_TZ)
                emit_at = session.open + timedelta(minutes=end_min)
                yield session, emit_at, bar_ts, k, per_symbol


class _Pacer:
    """Maps simulated open-market time to wall time at ``speed``, skipping closed markets."""

    def __init__(self, source: SimulatorSource) -> None:
        self.source = source
        self.speed = source.options.speed
        self.wall_start = source._monotonic()
        self.active_before: dict[date, float] = {}
        elapsed = 0.0
        for s in source.sessions:
            self.active_before[s.day] = elapsed
            elapsed += (s.close - max(s.open, source._clock_start)).total_seconds()

    def wait_until(self, session: Session, emit_at: datetime) -> bool:
        """Sleep (in small steps) until ``emit_at`` is reached; False if stopped meanwhile."""
        src = self.source
        into_session = (emit_at - max(session.open, src._clock_start)).total_seconds()
        active = self.active_before[session.day] + into_session
        target = self.wall_start + active / self.speed
        while True:
            if src.stop_event.is_set():
                return False
            remaining = target - src._monotonic()
            if remaining <= 0:
                return True
            src._sleep(min(remaining, MAX_SLEEP_STEP))


_FIELDS = frozenset(
    ("symbol", "interval", "bar_ts", "open", "high", "low", "close", "volume", "source", "produced_at")
)
_new_bar = Bar.__new__
_set = object.__setattr__


def _fast_bar(
    symbol: str,
    interval: str,
    bar_ts: datetime,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: int,
    produced_at: datetime,
) -> Bar:
    """A ``Bar`` without re-validation: the vectorised values are consistent by construction.

    Does what ``Bar.model_construct`` does (instance dict, fields set, no extra/private
    state) without its per-field loop, which costs about 4x more at 195,000 bars a day.
    A unit test checks these bars equal fully validated ones.
    """
    bar = _new_bar(Bar)
    _set(
        bar,
        "__dict__",
        {
            "symbol": symbol,
            "interval": interval,
            "bar_ts": bar_ts,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
            "source": "simulator",
            "produced_at": produced_at,
            "schema_version": SCHEMA_VERSION,
        },
    )
    _set(bar, "__pydantic_fields_set__", set(_FIELDS))
    _set(bar, "__pydantic_extra__", None)
    _set(bar, "__pydantic_private__", None)
    return bar


def build(settings: Settings, options: SourceOptions) -> SimulatorSource:
    """Registry factory."""
    return SimulatorSource(options)
