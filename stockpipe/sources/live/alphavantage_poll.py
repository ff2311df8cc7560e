"""Alpha Vantage, incremental: poll each symbol on a schedule that fits the request quotas.

- **What is requested**: ``outputsize=full`` for a symbol's first fill (no high-water mark yet) or
  when the bars since its mark are more than ``compact`` covers (the last 100 bars, with a margin);
  otherwise ``outputsize=compact``.
- **What is sent**: only bars newer than the symbol's high-water mark, plus the newest bar again
  whenever its values changed (the latest intraday bar is still forming; silver keeps the version
  with the greatest ``produced_at`` per (symbol, interval, bar_ts)). The checkpoint
  (``stockpipe.sources.live.checkpoint``) moves only after the producer flushed the batch.
- **When**: the daily budget (``requests_per_day``; 25 on the free tier) is spread over the symbols
  and the session window (09:30-16:00 New York, or 04:00-20:00 with ``extended_hours``): per day
  each symbol gets ``requests_per_day // symbols`` polls, one of them kept for right after the
  close (the final bars), the rest evenly spaced through the window; never closer than the
  per-minute limit allows for one round of all symbols. Outside the window (nights, weekends,
  holidays from the exchange calendar) it sleeps until the next open.
- **Quota**: the rolling 24-hour request log is saved in the checkpoint with the request times, so
  a ``run`` every 10 minutes (each a new process) and a restarted ``--follow`` still never exceed
  it; a symbol polled less than its interval ago is skipped by a ``run``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stockpipe.errors import ConfigError
from stockpipe.sources.alphavantage import AlphaVantageSource
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.live.base import LiveBatch, LiveSource
from stockpipe.sources.live.checkpoint import Checkpoint, checkpoint_path
from stockpipe.sources.live.session import (
    bars_between,
    current_or_next_window,
    previous_close,
)
from stockpipe.sources.ratelimit import QuotaExhaustedError

if TYPE_CHECKING:
    import httpx

    from stockpipe.contract import Bar
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
COMPACT_BARS = 100  # compact returns the last 100 bars: the marked bar and up to 99 newer ones
REGULAR_SECONDS = 6.5 * 3600
EXTENDED_SECONDS = 16 * 3600


@dataclass(frozen=True)
class RefreshPlan:
    """How often each symbol is polled: ``polls_in_window`` times ``interval_seconds`` apart."""

    symbols: int
    per_day: int
    per_minute: int
    window_seconds: float
    polls_in_window: int
    closing_poll: bool
    interval_seconds: float

    def describe(self, extended: bool) -> str:
        window = "04:00-20:00" if extended else "09:30-16:00"
        minutes = round(self.interval_seconds / 60)
        every = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
        after = " and once after the close" if self.closing_poll else ""
        return (
            f"alphavantage: {self.symbols} symbol(s), budget {self.per_day} requests/day and "
            f"{self.per_minute}/min: each symbol refreshed every {every} from {window} New York "
            f"(up to {self.polls_in_window} polls){after}."
        )


def plan_refresh(symbols: int, per_minute: int, per_day: int, *, extended: bool) -> RefreshPlan:
    """Spread ``per_day`` requests over ``symbols`` and the session window (see the module docstring)."""
    per_symbol = per_day // symbols
    if per_symbol < 1:
        raise ConfigError(
            f"{per_day} Alpha Vantage requests a day cannot refresh {symbols} symbols even once: "
            "use fewer symbols or raise STOCKPIPE_ALPHAVANTAGE_REQUESTS_PER_DAY."
        )
    window = EXTENDED_SECONDS if extended else REGULAR_SECONDS
    closing = per_symbol >= 2
    in_window = per_symbol - 1 if closing else per_symbol
    interval = max(window / in_window, symbols * 60.0 / per_minute)
    return RefreshPlan(symbols, per_day, per_minute, window, in_window, closing, interval)


class AlphaVantagePoller(LiveSource):
    """``--source alphavantage --follow`` and the scheduled ``run`` (see the module docstring)."""

    name = "alphavantage"

    def __init__(
        self,
        settings: Settings,
        options: SourceOptions,
        *,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._fake_sleep = sleep
        self._stop = threading.Event()
        fetch_options = SourceOptions(symbols=options.symbols, interval=options.interval)
        self.fetcher = AlphaVantageSource(
            settings.alphavantage,
            fetch_options,
            clock=lambda: self._now().timestamp(),
            sleep=self._sleep,
            transport=transport,
            timeout=timeout,
        )
        self.interval = options.interval
        self.symbols = self.fetcher.symbols
        self.extended = settings.alphavantage.extended_hours and options.interval != "1day"
        self.plan = plan_refresh(
            len(self.symbols),
            settings.alphavantage.requests_per_minute,
            settings.alphavantage.requests_per_day,
            extended=self.extended,
        )
        self.checkpoint = Checkpoint(checkpoint_path(settings, self.name))
        self.fetcher.limiter.preload([float(t) for t in self.checkpoint.extra.get("requests", [])])
        polled = self.checkpoint.extra.get("polled", {})
        self.polled: dict[str, datetime] = {s: datetime.fromisoformat(t) for s, t in polled.items()}
        self.skipped_for_quota = 0

    def describe(self) -> list[str]:
        return [self.plan.describe(self.extended)]

    # ---- waiting ----
    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._fake_sleep is not None:
            self._fake_sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _wait_until(self, when: datetime) -> None:
        self._sleep((when - self._now()).total_seconds())

    # ---- scheduling ----
    def due(self, symbol: str, now: datetime) -> bool:
        """True when ``symbol`` should be polled at ``now``."""
        last = self.polled.get(symbol)
        if last is None:
            return True  # first fill, at any time
        op, cl = current_or_next_window(now, extended=self.extended)
        if op <= now < cl:
            return (now - last).total_seconds() >= self.plan.interval_seconds
        closed = previous_close(now, extended=self.extended)
        return self.plan.closing_poll and closed is not None and last < closed

    def next_wake(self, now: datetime) -> datetime:
        """When the next symbol becomes due (the window's close, or the next open, at the latest)."""
        op, cl = current_or_next_window(now, extended=self.extended)
        if not op <= now < cl:
            return op
        step = timedelta(seconds=self.plan.interval_seconds)
        return min(min(self.polled.get(s, now) + step for s in self.symbols), cl)

    def outputsize(self, symbol: str, now: datetime) -> str:
        """``full`` without a mark or when the gap since it exceeds what ``compact`` returns."""
        mark = self.checkpoint.mark(symbol, self.interval)
        if mark is None:
            return "full"
        gap = bars_between(mark.bar_ts, now, self.interval, extended=self.extended)
        return "full" if gap >= COMPACT_BARS else "compact"

    # ---- polling ----
    def batches(self, stop: threading.Event, *, once: bool = False) -> Iterator[LiveBatch]:
        import httpx

        self._stop = stop
        headers = {"User-Agent": "stockpipe"}
        fetcher = self.fetcher
        with httpx.Client(timeout=fetcher._timeout, transport=fetcher._transport, headers=headers) as client:
            while not stop.is_set():
                now = self._now()
                due = [s for s in self.symbols if self.due(s, now)]
                for symbol in due:
                    if stop.is_set():
                        return
                    batch = self._poll(client, symbol, once)
                    if batch is None:  # the day budget is used up
                        if once:
                            return
                        self._wait_until(datetime.fromtimestamp(fetcher.limiter.day_budget_free_at(), UTC))
                        break
                    yield batch
                if once:
                    return
                if not due:
                    self._wait_until(self.next_wake(self._now()))

    def _poll(self, client: httpx.Client, symbol: str, once: bool) -> LiveBatch | None:
        now = self._now()
        size = self.outputsize(symbol, now)
        try:
            bars = self.fetcher.fetch(client, symbol, size)
        except QuotaExhaustedError:
            self.skipped_for_quota += 1
            log.warning("alphavantage: daily request budget used up; %s waits", symbol)
            return None
        finally:  # the requests count against the quota even if the batch never gets delivered
            self.checkpoint.extra["requests"] = self.fetcher.limiter.history()
            self.checkpoint.save()
        fresh = self.checkpoint.fresh(bars)
        mark = self.checkpoint.mark(symbol, self.interval)
        changed = sum(1 for b in fresh if mark is not None and b.bar_ts == mark.bar_ts)
        stamp = datetime.now(UTC)
        out: list[Bar] = [b.model_copy(update={"produced_at": stamp}) for b in fresh]

        def ack() -> None:
            self.checkpoint.advance(out)
            self.polled[symbol] = now
            self.checkpoint.extra["polled"] = {s: t.isoformat() for s, t in sorted(self.polled.items())}
            self.checkpoint.extra["requests"] = self.fetcher.limiter.history()
            self.checkpoint.save()

        note = f"{symbol} {size}: {len(bars)} bars read, {len(out) - changed} new, {changed} changed"
        details: dict[str, Any] = {"read": len(bars), "new": len(out) - changed, "changed": changed}
        return LiveBatch(out, ack, note, details)


def build(settings: Settings, options: SourceOptions) -> AlphaVantagePoller:
    """Live registry factory."""
    return AlphaVantagePoller(settings, options)
