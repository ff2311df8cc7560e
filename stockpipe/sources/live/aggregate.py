"""Trades -> bars: event-time tumbling windows per symbol, pure (no I/O, injected clocks).

Vocabulary as in Kafka Streams / Flink / Spark ``withWatermark``:

* **Window**: ``[start, end)`` of the configured interval on the exchange's wall clock
  (time zone of the exchange_calendars calendar, XNYS = America/New_York): intraday windows are
  multiples of the interval from local midnight (so ``60min`` bars start on the hour; across a DST
  change a local hour that happens twice gives two bars with different UTC offsets); ``1day``
  is the exchange-local date, stamped at that session's open like the other sources' daily bars.
  ``bar_ts`` is the window start in exchange time.
* **Bar values**: open/close = price of the earliest/latest trade by trade time (ties: arrival
  order, like a stable sort), high/low over the price-setting trades, volume = sum of sizes
  (rounded to whole shares). Sale conditions decide which trades may set prices
  (``conditions``); a window without any price-setting trade gives no bar but a
  ``no_priced_trade`` dead letter carrying its volume.
* **Watermark**, per partition (Kafka Streams' stream time): the latest trade time seen in that
  partition minus ``allowed_delay``. Keying by symbol keeps a symbol in one partition, so a
  lagging partition does not make another's trades late. A window's bar is emitted when the
  watermark passes its end, or earlier when no trade reached the window for ``quiet_timeout``
  seconds of processing time (``tick``), so an illiquid symbol's bar is not held back.
* **Grace**: until the watermark passes ``end + grace`` the window is kept; a trade arriving for
  it then re-emits the corrected bar (same key, newer ``produced_at``, strictly increasing). After
  that the window is final and dropped, and a trade for it is a ``late_trade`` dead letter.
* **Dedupe**: a trade whose provider ``trade_id`` is already in its window is a repeat and is
  counted, not added. Trades without id are never deduplicated here (identical prints are
  legitimate); reconnect overlaps are handled by the feed (``dedupe``).

Restart: ``state()`` is a JSON-able snapshot (open windows, watermarks, last offset per
partition) and ``Aggregator.restore`` rebuilds from it; ``add`` skips trades at an offset at or
below the snapshot's last offset of their partition (already inside the snapshot), so after a
restart the consumer may re-read from its committed offset — ``oldest_open_offset`` is the
offset of the oldest trade still in a kept window, the offset to commit. ``flush()`` emits
every unfinished window and empties the aggregator: use it at a final shutdown (SIGTERM of a
direct websocket feed); a consumer that will restart should persist ``state()`` instead, so a
half-done minute continues rather than being sent twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple

from stockpipe.contract import Bar
from stockpipe.contract.bar import INTERVALS, SCHEMA_VERSION
from stockpipe.sources import calendar
from stockpipe.sources.calendar import EXCHANGE, EXCHANGE_TZ
from stockpipe.sources.live.conditions import ConditionRules, Effect, rules_for
from stockpipe.sources.live.trades import Trade

STATE_VERSION = 1
INTERVAL_SECONDS: dict[str, int] = {"1min": 60, "5min": 300, "15min": 900, "30min": 1800, "60min": 3600}
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class AggregatorConfig:
    interval: str = "1min"
    allowed_delay_seconds: float = 5.0
    quiet_timeout_seconds: float = 10.0
    grace_seconds: float = 120.0
    exchange: str = "XNYS"
    finnhub_volume_only_conditions: tuple[str, ...] = ()  # see ``conditions``

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"interval {self.interval!r} is not one of {', '.join(INTERVALS)}")
        for name in ("allowed_delay_seconds", "quiet_timeout_seconds", "grace_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class DeadLetter:
    """A trade (or a window of trades) that did not make it into a bar, with the reason."""

    reason: str  # late_trade | no_priced_trade
    detail: str
    trade: Trade | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "trade": None if self.trade is None else self.trade.to_dict(),
        }


class Output(NamedTuple):
    bars: tuple[Bar, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()


NOTHING = Output()


@dataclass
class Counters:
    trades: int = 0  # accepted into a window
    bars: int = 0  # bars emitted, corrections included
    corrections: int = 0  # re-emitted bars (late trade within grace, or after a quiet-timeout bar)
    late_trades: int = 0
    duplicates: int = 0  # same provider trade id twice in a window
    replayed: int = 0  # offset already covered by the restored snapshot
    volume_only: int = 0
    ignored: int = 0  # official open/close reports and the like
    no_priced_windows: int = 0


class _Window:
    __slots__ = (
        "emitted",
        "end",
        "high",
        "hl_close",
        "hl_close_t",
        "hl_open",
        "hl_open_t",
        "ids",
        "last_produced",
        "last_update",
        "low",
        "min_offset",
        "partition",
        "pclose",
        "pclose_t",
        "popen",
        "popen_t",
        "provider",
        "start",
        "symbol",
        "trades",
        "volume",
    )

    def __init__(self, symbol: str, partition: int, start: float, end: float, provider: str) -> None:
        self.symbol = symbol
        self.partition = partition
        self.start = start
        self.end = end
        self.provider = provider
        self.popen = self.pclose = 0.0  # from PRICE trades
        self.popen_t = math.inf
        self.pclose_t = -math.inf
        self.hl_open = self.hl_close = 0.0  # from HIGH_LOW trades (fallback when no PRICE trade)
        self.hl_open_t = math.inf
        self.hl_close_t = -math.inf
        self.high = -math.inf
        self.low = math.inf
        self.volume = 0.0
        self.trades = 0
        self.ids: set[str] | None = None
        self.min_offset: int | None = None
        self.emitted = False  # a bar for it went out
        self.last_produced: datetime | None = None
        self.last_update = 0.0  # processing time of the last trade
        # dirty = emitted is False or changed since: tracked by ``emitted`` alone (reset on change)

    def to_state(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["ids"] = sorted(self.ids) if self.ids is not None else None
        data["last_produced"] = self.last_produced.isoformat() if self.last_produced else None
        for name in ("popen_t", "pclose_t", "hl_open_t", "hl_close_t", "high", "low"):
            if math.isinf(data[name]):
                data[name] = None
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> _Window:
        w = cls(
            data["symbol"], int(data["partition"]), float(data["start"]), float(data["end"]), data["provider"]
        )
        defaults = {
            "popen_t": math.inf,
            "hl_open_t": math.inf,
            "pclose_t": -math.inf,
            "hl_close_t": -math.inf,
        }
        defaults |= {"high": -math.inf, "low": math.inf}
        for name in cls.__slots__:
            if name in ("symbol", "partition", "start", "end", "provider"):
                continue
            value = data.get(name)
            if name == "ids":
                w.ids = set(value) if value is not None else None
            elif name == "last_produced":
                w.last_produced = datetime.fromisoformat(value) if value else None
            elif value is None and name in defaults:
                setattr(w, name, defaults[name])
            elif value is not None:
                setattr(w, name, value)
        return w


@lru_cache(maxsize=64)
def _offset_zone(offset: timedelta) -> timezone:
    return timezone(offset)


def _fixed(local: datetime) -> datetime:
    offset = local.utcoffset() or timedelta(0)
    return local.replace(tzinfo=_offset_zone(offset), fold=0)


def exchange_time(ts: datetime, exchange: str = "XNYS") -> datetime:
    """``ts`` in the exchange's time zone, with a fixed UTC offset (how bars stamp ``bar_ts``)."""
    return _fixed(ts.astimezone(_exchange_tz(exchange)))


@lru_cache(maxsize=8)
def _exchange_tz(exchange: str) -> tzinfo:
    return EXCHANGE_TZ if exchange == EXCHANGE else calendar.exchange_zone(exchange)


@lru_cache(maxsize=4096)
def _session_open(exchange: str, day: Any) -> datetime | None:
    bounds = calendar.session_bounds(day, exchange)
    return bounds[0] if bounds is not None else None


class Aggregator:
    """Incremental trades -> bars (see the module doc). Not thread-safe: one per consumer thread.

    ``monotonic`` is the processing clock (quiet timeout), ``wall`` the UTC clock stamped into
    ``produced_at``; both injectable for tests. ``rules`` maps provider -> condition rules
    (default: ``conditions.rules_for``).
    """

    def __init__(
        self,
        config: AggregatorConfig | None = None,
        *,
        rules: Mapping[str, ConditionRules] | None = None,
        monotonic: Callable[[], float] | None = None,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        import time

        self.config = config or AggregatorConfig()
        self._rules: dict[str, ConditionRules] = dict(rules or {})
        self._monotonic = monotonic or time.monotonic
        self._wall = wall or (lambda: datetime.now(UTC))
        self._tz = _exchange_tz(self.config.exchange)
        self._length = INTERVAL_SECONDS.get(self.config.interval)  # None: 1day
        self._delay = self.config.allowed_delay_seconds
        self._grace = self.config.grace_seconds
        self.counters = Counters()
        self._windows: dict[tuple[str, float], _Window] = {}
        self._current: dict[str, _Window] = {}  # newest window per symbol (fast path)
        self._by_partition: dict[int, dict[tuple[str, float], _Window]] = {}
        self._max_t: dict[int, float] = {}
        self._next_check: dict[int, float] = {}
        self._last_offset: dict[int, int] = {}
        self._now = self._monotonic()  # processing time of the latest tick
        self._stamps: dict[float, datetime] = {}  # bar_ts per window start

    # ---- public API ----
    def add(self, trade: Trade, *, partition: int = 0, offset: int | None = None) -> Output:
        """Take one trade; return the bars (and dead letters) it completes or corrects."""
        if offset is not None:
            if offset <= self._last_offset.get(partition, -1):
                self.counters.replayed += 1
                return NOTHING
            self._last_offset[partition] = offset
        t = trade.ts.timestamp()
        w = self._current.get(trade.symbol)
        if w is None or not (w.start <= t < w.end) or w.partition != partition:
            w = self._window_for(trade, t, partition)
            if w is None:
                self.counters.late_trades += 1
                return Output(dead_letters=(self._late(trade, partition),))
        if trade.trade_id is None and not trade.conditions and offset is None:
            # fast path (a plain sale without id): what ``_apply`` does for Effect.PRICE
            p = trade.price
            if t < w.popen_t:
                w.popen_t = t
                w.popen = p
            if t >= w.pclose_t:
                w.pclose_t = t
                w.pclose = p
            if p > w.high:
                w.high = p
            if p < w.low:
                w.low = p
            w.volume += trade.size
            w.trades += 1
            w.last_update = self._now
            self.counters.trades += 1
        elif not self._apply(w, trade, t, offset):
            return NOTHING
        max_t = self._max_t.get(partition, -math.inf)
        if t > max_t:
            self._max_t[partition] = t
            if not w.emitted and t - self._delay < self._next_check.get(partition, math.inf):
                return NOTHING
        elif not w.emitted and w.end > max_t - self._delay:
            return NOTHING
        return self._after_add(w, t, partition, max_t)

    def _after_add(self, w: _Window, t: float, partition: int, max_t: float) -> Output:
        """The slow path of ``add``: corrections, late-within-grace windows, watermark moves."""
        bars: list[Bar] = []
        dead: list[DeadLetter] = []
        if w.emitted:  # changes a bar already out: a correction follows
            w.emitted = False
            if w.end < self._next_check.get(partition, math.inf):
                self._next_check[partition] = w.end
        if w.end <= max_t - self._delay:  # behind the watermark, within grace
            self._emit(w, bars, dead)
        if t > max_t and t - self._delay >= self._next_check.get(partition, math.inf):
            self._advance(partition, bars, dead)
        if bars or dead:
            return Output(tuple(bars), tuple(dead))
        return NOTHING

    def add_many(self, trades: Iterable[Trade], *, partition: int = 0) -> Output:
        bars: list[Bar] = []
        dead: list[DeadLetter] = []
        for trade in trades:
            got = self.add(trade, partition=partition)
            if got is not NOTHING:
                bars.extend(got.bars)
                dead.extend(got.dead_letters)
        return Output(tuple(bars), tuple(dead))

    def tick(self) -> Output:
        """Emit windows no trade reached for ``quiet_timeout`` seconds (call about once a second).

        Trades are stamped with the processing time of the latest ``tick`` (one clock read per
        tick, not per trade), so a bar may go out up to one tick interval early."""
        now = self._now = self._monotonic()
        quiet = self.config.quiet_timeout_seconds
        bars: list[Bar] = []
        dead: list[DeadLetter] = []
        for w in list(self._windows.values()):
            if not w.emitted and now - w.last_update >= quiet:
                self._emit(w, bars, dead)
        return Output(tuple(bars), tuple(dead)) if bars or dead else NOTHING

    def flush(self) -> Output:
        """Emit every unfinished window and forget all windows (final shutdown)."""
        bars: list[Bar] = []
        dead: list[DeadLetter] = []
        for w in sorted(self._windows.values(), key=lambda w: (w.start, w.symbol)):
            if not w.emitted:
                self._emit(w, bars, dead)
        self._windows.clear()
        self._current.clear()
        self._by_partition.clear()
        self._next_check.clear()
        return Output(tuple(bars), tuple(dead))

    def watermark(self, partition: int = 0) -> float | None:
        """The partition's watermark as epoch seconds (None before its first trade)."""
        t = self._max_t.get(partition)
        return None if t is None else t - self._delay

    def oldest_open_offset(self, partition: int) -> int | None:
        """Offset of the oldest trade still in a kept window of ``partition`` (None: none kept)."""
        offsets = [
            w.min_offset for w in self._by_partition.get(partition, {}).values() if w.min_offset is not None
        ]
        return min(offsets) if offsets else None

    def last_offset(self, partition: int) -> int | None:
        return self._last_offset.get(partition)

    @property
    def open_windows(self) -> int:
        return len(self._windows)

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot to rebuild this aggregator after a restart (see ``restore``)."""
        return {
            "version": STATE_VERSION,
            "interval": self.config.interval,
            "max_t": {str(p): t for p, t in self._max_t.items()},
            "last_offset": {str(p): o for p, o in self._last_offset.items()},
            "counters": vars(self.counters).copy(),
            "windows": [w.to_state() for w in self._windows.values()],
        }

    @classmethod
    def restore(
        cls,
        state: Mapping[str, Any],
        config: AggregatorConfig | None = None,
        **kwargs: Any,
    ) -> Aggregator:
        """An aggregator continuing from ``state()``; refuses a snapshot of another interval."""
        agg = cls(config, **kwargs)
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"aggregator snapshot version {state.get('version')!r} is not {STATE_VERSION}")
        if state.get("interval") != agg.config.interval:
            raise ValueError(
                f"aggregator snapshot is for {state.get('interval')!r} bars, not {agg.config.interval!r}"
            )
        agg._max_t = {int(p): float(t) for p, t in state["max_t"].items()}
        agg._last_offset = {int(p): int(o) for p, o in state["last_offset"].items()}
        agg.counters = Counters(**state.get("counters", {}))
        now = agg._now
        for data in state["windows"]:
            w = _Window.from_state(data)
            w.last_update = now  # processing clocks do not survive a restart
            agg._register(w)
        return agg

    # ---- internals ----
    def _window_for(self, trade: Trade, t: float, partition: int) -> _Window | None:
        start, end = self._bounds(t)
        key = (trade.symbol, start)
        w = self._windows.get(key)
        if w is None:
            if end + self._grace <= self._max_t.get(partition, -math.inf) - self._delay:
                return None  # final already: a late trade
            w = _Window(trade.symbol, partition, start, end, trade.provider)
            self._register(w)
        cur = self._current.get(trade.symbol)
        if cur is None or w.start >= cur.start:
            self._current[trade.symbol] = w
        return w

    def _register(self, w: _Window) -> None:
        key = (w.symbol, w.start)
        self._windows[key] = w
        self._by_partition.setdefault(w.partition, {})[key] = w
        due = w.end if not w.emitted else w.end + self._grace
        if due < self._next_check.get(w.partition, math.inf):
            self._next_check[w.partition] = due
        cur = self._current.get(w.symbol)
        if cur is None or w.start >= cur.start:
            self._current[w.symbol] = w

    def _bounds(self, t: float) -> tuple[float, float]:
        length = self._length
        if length is not None:
            off = self._offset(t)
            start = (t + off) // length * length - off
            return start, start + length
        local = datetime.fromtimestamp(t, self._tz)
        midnight = datetime(local.year, local.month, local.day, tzinfo=self._tz)
        nxt = midnight.date() + timedelta(days=1)
        return midnight.timestamp(), datetime(nxt.year, nxt.month, nxt.day, tzinfo=self._tz).timestamp()

    def _offset(self, t: float) -> float:
        offset = datetime.fromtimestamp(t, self._tz).utcoffset()
        return offset.total_seconds() if offset is not None else 0.0

    def _apply(self, w: _Window, trade: Trade, t: float, offset: int | None) -> bool:
        """Add the trade to its window; False when it changes nothing (repeat, or ignored)."""
        if trade.trade_id is not None:
            if w.ids is None:
                w.ids = set()
            elif trade.trade_id in w.ids:
                self.counters.duplicates += 1
                return False
            w.ids.add(trade.trade_id)
        rules = self._rules.get(trade.provider)
        if rules is None:
            volume_only = self.config.finnhub_volume_only_conditions
            rules = self._rules[trade.provider] = rules_for(trade.provider, finnhub_volume_only=volume_only)
        effect = rules.effect(trade.conditions) if trade.conditions else Effect.PRICE
        if effect is Effect.IGNORE:
            self.counters.ignored += 1
            return False
        p = trade.price
        if effect is Effect.PRICE:
            if t < w.popen_t:
                w.popen_t = t
                w.popen = p
            if t >= w.pclose_t:
                w.pclose_t = t
                w.pclose = p
            if p > w.high:
                w.high = p
            if p < w.low:
                w.low = p
        elif effect is Effect.HIGH_LOW:
            if t < w.hl_open_t:
                w.hl_open_t = t
                w.hl_open = p
            if t >= w.hl_close_t:
                w.hl_close_t = t
                w.hl_close = p
            if p > w.high:
                w.high = p
            if p < w.low:
                w.low = p
        else:
            self.counters.volume_only += 1
        w.volume += trade.size
        w.trades += 1
        if offset is not None and (w.min_offset is None or offset < w.min_offset):
            w.min_offset = offset
        w.last_update = self._now
        self.counters.trades += 1
        return True

    def _advance(self, partition: int, out: list[Bar], dead: list[DeadLetter]) -> None:
        """Emit windows the watermark passed, drop windows past their grace."""
        wm = self._max_t[partition] - self._delay
        nxt = math.inf
        windows = self._by_partition.get(partition, {})
        for key, w in sorted(windows.items(), key=lambda kv: kv[1].start):
            if w.end <= wm and not w.emitted:
                self._emit(w, out, dead)
            if w.end + self._grace <= wm:
                del windows[key]
                del self._windows[key]
                if self._current.get(w.symbol) is w:
                    del self._current[w.symbol]
                continue
            due = w.end if not w.emitted else w.end + self._grace
            nxt = min(nxt, due)
        self._next_check[partition] = nxt

    def _emit(self, w: _Window, out: list[Bar], dead: list[DeadLetter]) -> None:
        w.emitted = True
        if w.popen_t != math.inf:
            o, c = w.popen, w.pclose
        elif w.hl_open_t != math.inf:
            o, c = w.hl_open, w.hl_close
        else:
            if w.last_produced is None:
                self.counters.no_priced_windows += 1
                msg = (
                    f"{w.symbol} {self._bar_ts(w).isoformat()}: {w.trades} trades, {round(w.volume)} shares, "
                    "none of them may set the price"
                )
                dead.append(DeadLetter("no_priced_trade", msg))
            return
        produced = self._wall()
        if w.last_produced is not None:
            self.counters.corrections += 1
            if produced <= w.last_produced:
                produced = w.last_produced + _ONE_US
        w.last_produced = produced
        out.append(self._bar(w, o, c, produced))
        self.counters.bars += 1

    def _bar_ts(self, w: _Window) -> datetime:
        return self._bar_ts_at(w.start)

    def _bar_ts_at(self, start: float) -> datetime:
        """Window start in exchange time with a fixed UTC offset (a ZoneInfo datetime in the
        repeated fall-back hour compares equal to the hour before it; a fixed offset does not)."""
        found = self._stamps.get(start)
        if found is not None:
            return found
        if self._length is not None:
            stamp = _fixed(datetime.fromtimestamp(start, self._tz))
        else:
            day = datetime.fromtimestamp(start, self._tz).date()
            opened = _session_open(self.config.exchange, day)
            if opened is None:
                stamp = _fixed(datetime(day.year, day.month, day.day, 9, 30, tzinfo=self._tz))
            else:
                stamp = _fixed(opened.astimezone(self._tz))
        if len(self._stamps) >= 4096:
            self._stamps.clear()
        self._stamps[start] = stamp
        return stamp

    def _bar(self, w: _Window, o: float, c: float, produced: datetime) -> Bar:
        return self._make_bar(w.symbol, w.start, w.provider, o, w.high, w.low, c, w.volume, produced)

    def _make_bar(
        self,
        symbol: str,
        start: float,
        provider: str,
        o: float,
        high: float,
        low: float,
        c: float,
        volume: float,
        produced: datetime,
    ) -> Bar:
        # every value is built here from checked trades (the interval by AggregatorConfig):
        # construct without re-validating, the hot path of the aggregator
        values: dict[str, Any] = {
            "symbol": symbol,
            "interval": self.config.interval,
            "bar_ts": self._bar_ts_at(start),
            "open": o,
            "high": high,
            "low": low,
            "close": c,
            "volume": round(volume),
            "source": provider,
            "produced_at": produced,
            "schema_version": SCHEMA_VERSION,
        }
        return _construct_bar(values)

    def _make_bars(
        self,
        symbols: list[str],
        starts: list[float],
        providers: str | list[str],
        opens: list[float],
        highs: list[float],
        lows: list[float],
        closes: list[float],
        volumes: list[int],
        produced: datetime,
    ) -> list[Bar]:
        """``_make_bar`` for many bars at once (the batch path; ``volumes`` already rounded)."""
        interval = self.config.interval
        stamp = self._bar_ts_at
        stamps = {s: stamp(s) for s in set(starts)}
        if isinstance(providers, str):
            providers = [providers] * len(symbols)
        bars: list[Bar] = []
        append = bars.append
        rows = zip(symbols, starts, providers, opens, highs, lows, closes, volumes, strict=True)
        for symbol, start, provider, o, high, low, c, volume in rows:
            values = {
                "symbol": symbol,
                "interval": interval,
                "bar_ts": stamps[start],
                "open": o,
                "high": high,
                "low": low,
                "close": c,
                "volume": volume,
                "source": provider,
                "produced_at": produced,
                "schema_version": SCHEMA_VERSION,
            }
            append(_construct_bar(values))
        return bars

    def _late(self, trade: Trade, partition: int) -> DeadLetter:
        return self._late_at(trade, self._max_t.get(partition, -math.inf) - self._delay)

    def _late_at(self, trade: Trade, wm: float) -> DeadLetter:
        wm_text = datetime.fromtimestamp(wm, UTC).isoformat() if math.isfinite(wm) else "none"
        return DeadLetter(
            "late_trade",
            f"{trade.symbol} trade at {trade.ts.isoformat()} arrived after its window closed "
            f"(watermark {wm_text}, grace {self._grace:g} s)",
            trade,
        )


def _construct_bar(values: dict[str, Any]) -> Bar:
    """``Bar.model_construct(**values)`` for a complete set of field values, without its per-field
    bookkeeping (the aggregator's hot path; ``test_live_aggregate`` checks the bars re-validate)."""
    bar = Bar.__new__(Bar)
    object.__setattr__(bar, "__dict__", values)
    object.__setattr__(bar, "__pydantic_fields_set__", set(values))
    object.__setattr__(bar, "__pydantic_extra__", None)
    object.__setattr__(bar, "__pydantic_private__", None)
    return bar


def bars_and_dead(outputs: Iterable[Output]) -> Output:
    """Concatenate outputs (tests, batch use)."""
    bars: list[Bar] = []
    dead: list[DeadLetter] = []
    for o in outputs:
        bars.extend(o.bars)
        dead.extend(o.dead_letters)
    return Output(tuple(bars), tuple(dead))


__all__ = [
    "NOTHING",
    "Aggregator",
    "AggregatorConfig",
    "Counters",
    "DeadLetter",
    "Output",
    "bars_and_dead",
    "exchange_time",
]
