"""Repeats after a reconnect must not count volume twice; legitimate identical trades must stay.

Two rules, by what the provider gives us:

* **With a trade id** (Alpaca ``i``, unique per exchange ``x``): a trade whose ``(symbol, id)``
  was seen among the last ``max_ids`` trades is a repeat, always, connected or not.
* **Without an id** (Finnhub): two prints with the same symbol, time, price, size and conditions
  are legitimate (the tape has many), so nothing is dropped in normal flow. Only right after a
  reconnect, in the *overlap*: for each symbol, trades at or before the last trade time received
  before the drop are matched against the trades received in the last ``overlap_seconds`` before
  it, as a multiset (two identical prints before the drop cancel at most two identical prints
  after it). The overlap of a symbol ends with its first trade newer than that last time. A
  repeat older than the remembered tail cannot be recognised and is kept (counted as
  ``overlap_unmatched``) rather than dropped: double volume is visible, a dropped trade is not.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from stockpipe.sources.live.trades import Trade

Signature = tuple[float, float, float, tuple[str, ...]]


def _signature(trade: Trade) -> Signature:
    return (trade.ts.timestamp(), trade.price, trade.size, trade.conditions)


@dataclass
class DedupeCounters:
    repeats_by_id: int = 0
    repeats_in_overlap: int = 0
    overlap_unmatched: int = 0


class TradeDeduper:
    def __init__(self, *, max_ids: int = 200_000, overlap_seconds: float = 60.0) -> None:
        self.max_ids = max_ids
        self.overlap_seconds = overlap_seconds
        self.counters = DedupeCounters()
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tail: dict[str, deque[tuple[float, Signature]]] = {}
        self._last_t: dict[str, float] = {}
        self._overlap: dict[str, tuple[float, Counter[Signature]]] = {}

    def is_repeat(self, trade: Trade) -> bool:
        """True when ``trade`` repeats one already passed on (then it must be dropped)."""
        if trade.trade_id is not None:
            key = (trade.symbol, trade.trade_id)
            if key in self._ids:
                self.counters.repeats_by_id += 1
                return True
            self._ids[key] = None
            if len(self._ids) > self.max_ids:
                self._ids.popitem(last=False)
            return False
        sym = trade.symbol
        t = trade.ts.timestamp()
        overlap = self._overlap.get(sym)
        if overlap is not None:
            last_before, pending = overlap
            if t <= last_before:
                sig = _signature(trade)
                if pending[sig] > 0:
                    pending[sig] -= 1
                    self.counters.repeats_in_overlap += 1
                    return True
                self.counters.overlap_unmatched += 1
            else:
                del self._overlap[sym]
        self._remember(sym, t, trade)
        return False

    def begin_overlap(self) -> None:
        """Call on every reconnect, before the first message of the new connection."""
        for sym, tail in self._tail.items():
            if tail:
                self._overlap[sym] = (self._last_t[sym], Counter(sig for _, sig in tail))

    def _remember(self, sym: str, t: float, trade: Trade) -> None:
        tail = self._tail.get(sym)
        if tail is None:
            tail = self._tail[sym] = deque()
        tail.append((t, _signature(trade)))
        last = self._last_t.get(sym)
        if last is None or t > last:
            self._last_t[sym] = last = t
        horizon = last - self.overlap_seconds
        while tail and tail[0][0] < horizon:
            tail.popleft()
