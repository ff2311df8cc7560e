"""Trades -> bars for a whole batch at once: the vectorised (numpy) path of ``aggregate.Aggregator``.

``add_batch(agg, batch, partition=p)`` leaves ``agg`` in the state that calling ``agg.add`` for
every trade of ``batch`` in order would leave it in (windows, watermark, offsets, counters), and
returns the same dead letters, in the same order, and the same final bars. **Emissions inside one
batch collapse**: where the per-trade path emits a bar and, later in the same batch, a corrected
version of it, the batch emits only the last version (downstream keeps the newest version per
``(symbol, bar_ts)``, so the data is the same; the counters ``bars`` and ``corrections`` count
the collapsed emissions). ``tick``, ``flush``, ``state`` and ``add`` work on as before, so batch
and per-trade calls can be mixed. The per-trade ``Aggregator.add`` stays the reference; a
randomized test holds the two equal (``tests/unit/test_live_aggregate_batch.py``).

How the per-trade rules become array operations (``n`` trades of one partition):

* **replayed** (offset at or below the last one taken): ``offset <= max(previous offsets)``;
* **window** ``[start, end)`` per trade, with the exchange's UTC offset at the trade time (one
  offset for the batch when it does not change inside it);
* **watermark before each trade**: a running maximum of the trade times, leaving out repeats and
  ignored trades (which do not move it in ``add``); a late trade cannot move it either;
* **late**: ``end + grace <= watermark before the trade`` (a window is dropped exactly when the
  watermark passes its end plus grace, and never re-created, so "its window is gone" is this);
* **repeat**: the same provider trade id earlier in the same window (in the batch or in the
  window's kept ids); a repeat that is not late is a duplicate;
* **windows**: one stable sort of the rows by a small integer key per (symbol, window), the
  symbol's code times the batch's window span plus the window number (numbered densely first
  when that exceeds 16 bits), a radix sort that keeps arrival order inside each window;
* **bar values** per window by segment reductions over that order (``ufunc.reduceat``): open is
  the first arriving price-setting trade at the window's earliest trade time, close the last
  arriving one at its latest (as ``add``'s ``t < open_t`` / ``t >= close_t`` settle ties),
  high/low a max/min, volume a ``bincount`` in arrival order starting from the window's earlier
  volume (the same float sums);
* **emission**: every window with an accepted trade is marked changed, then one watermark step
  (``_advance``) emits each changed or newly passed window once and drops windows past grace; a
  window opened and already past its grace within the batch never becomes a ``_Window``: its one
  bar is built straight from the arrays, all such bars at once with one wall-clock read (they
  share ``produced_at``; the common case for a large batch).

One case is not vectorised: a window that could be emitted while no trade in it may set the price
(a ``no_priced_trade`` dead letter, whose text counts the trades at that moment) — for example
pre-market Form T trades only. A batch where that can happen, or whose symbols also have windows
in another partition, is handed to ``add`` one trade at a time (same results, slower; its bars
collapse the same way).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stockpipe.sources.live.aggregate import NOTHING, Aggregator, DeadLetter, Output, _Window
from stockpipe.sources.live.conditions import ConditionRules, Effect, rules_for
from stockpipe.sources.live.trades import Trade

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRICE, _HIGH_LOW, _VOLUME, _IGNORE = (
    int(Effect.PRICE),
    int(Effect.HIGH_LOW),
    int(Effect.VOLUME),
    int(Effect.IGNORE),
)


@dataclass
class TradeBatch:
    """Trades as columns (one row per trade, in arrival order).

    ``t`` is epoch seconds as a float (what ``Trade.ts.timestamp()`` gives); ``effects`` are
    ``conditions.Effect`` codes per trade (default: from ``conditions`` and the provider's rules,
    or every trade a regular sale); ``offsets`` the Kafka offsets (default: none, like
    ``add(offset=None)``). ``trades`` keeps the ``Trade`` objects when the batch was built from
    them (dead letters then carry the same objects)."""

    symbols: Any
    prices: Any
    t: Any
    sizes: Any
    trade_ids: Sequence[str | None] | None = None
    conditions: Sequence[tuple[str, ...]] | None = None
    effects: Any = None
    provider: str | Sequence[str] = "finnhub"
    offsets: Any = None
    trades: Sequence[Trade] | None = None
    received_at: datetime | None = None

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_columns(
        cls,
        symbols: Sequence[str] | Any,
        prices: Any,
        times_ms: Any,
        sizes: Any,
        *,
        trade_ids: Sequence[str | None] | None = None,
        conditions: Sequence[tuple[str, ...]] | None = None,
        effects: Any = None,
        provider: str | Sequence[str] = "finnhub",
        offsets: Any = None,
        received_at: datetime | None = None,
    ) -> TradeBatch:
        """A batch from columns; ``times_ms`` are epoch milliseconds (Finnhub's ``t``)."""
        import numpy as np

        ms = np.asarray(times_ms, dtype=np.int64)
        return cls(
            symbols=np.asarray(symbols, dtype=object),
            prices=np.asarray(prices, dtype=np.float64),
            t=ms / 1000.0,
            sizes=np.asarray(sizes, dtype=np.float64),
            trade_ids=trade_ids,
            conditions=conditions,
            effects=None if effects is None else np.asarray(effects, dtype=np.int8),
            provider=provider,
            offsets=None if offsets is None else np.asarray(offsets, dtype=np.int64),
            received_at=received_at,
        )

    @classmethod
    def from_trades(cls, trades: Sequence[Trade], *, offsets: Any = None) -> TradeBatch:
        """A batch of ``Trade`` objects (the objects are kept for dead letters)."""
        import numpy as np

        n = len(trades)
        ids = [t.trade_id for t in trades]
        conds = [t.conditions for t in trades]
        providers = {t.provider for t in trades}
        return cls(
            symbols=np.array([t.symbol for t in trades], dtype=object),
            prices=np.fromiter((t.price for t in trades), dtype=np.float64, count=n),
            t=np.fromiter((t.ts.timestamp() for t in trades), dtype=np.float64, count=n),
            sizes=np.fromiter((t.size for t in trades), dtype=np.float64, count=n),
            trade_ids=ids if any(i is not None for i in ids) else None,
            conditions=conds if any(conds) else None,
            provider=next(iter(providers)) if len(providers) == 1 else [t.provider for t in trades],
            offsets=None if offsets is None else np.asarray(offsets, dtype=np.int64),
            trades=trades,
        )

    def provider_of(self, i: int) -> str:
        return self.provider if isinstance(self.provider, str) else self.provider[i]

    def trade(self, i: int) -> Trade:
        """Row ``i`` as a ``Trade`` (the original object when there is one)."""
        if self.trades is not None:
            return self.trades[i]
        return Trade(
            symbol=str(self.symbols[i]),
            price=float(self.prices[i]),
            size=float(self.sizes[i]),
            ts=EPOCH + timedelta(microseconds=round(float(self.t[i]) * 1_000_000)),
            trade_id=None if self.trade_ids is None else self.trade_ids[i],
            conditions=() if self.conditions is None else tuple(self.conditions[i]),
            provider=self.provider_of(i),
            received_at=self.received_at or datetime.now(UTC),
        )


def add_batch(agg: Aggregator, batch: TradeBatch, *, partition: int = 0) -> Output:
    """Take a batch of one partition's trades; see the module doc for what equals ``add``."""
    if len(batch) == 0:
        return NOTHING
    plan = _plan(agg, batch, partition)
    if plan is None:
        return _one_by_one(agg, batch, partition)
    return _apply(agg, batch, partition, plan)


def _one_by_one(agg: Aggregator, batch: TradeBatch, partition: int) -> Output:
    bars: list[Any] = []
    dead: list[DeadLetter] = []
    offsets = batch.offsets
    for i in range(len(batch)):
        out = agg.add(
            batch.trade(i), partition=partition, offset=None if offsets is None else int(offsets[i])
        )
        if out is not NOTHING:
            bars.extend(out.bars)
            dead.extend(out.dead_letters)
    last = {(b.symbol, b.bar_ts): b for b in bars}  # collapsed like the vectorised path
    return Output(tuple(last.values()), tuple(dead)) if bars or dead else NOTHING


def _rules(agg: Aggregator, provider: str) -> ConditionRules:
    rules = agg._rules.get(provider)
    if rules is None:
        volume_only = agg.config.finnhub_volume_only_conditions
        rules = agg._rules[provider] = rules_for(provider, finnhub_volume_only=volume_only)
    return rules


def _effects(agg: Aggregator, batch: TradeBatch, rows: Any) -> Any:
    import numpy as np

    if batch.effects is not None:
        eff = np.asarray(batch.effects, dtype=np.int8)
        return eff if len(rows) == len(eff) else eff[rows]
    eff = np.zeros(len(rows), dtype=np.int8)
    conds = batch.conditions
    if conds is None:
        return eff
    cache: dict[tuple[str, tuple[str, ...]], int] = {}
    for j, i in enumerate(rows.tolist()):
        c = conds[i]
        if c:
            key = (batch.provider_of(i), c)
            e = cache.get(key)
            if e is None:
                e = cache[key] = int(_rules(agg, key[0]).effect(tuple(c)))
            eff[j] = e
    return eff


def _bounds(agg: Aggregator, t: Any) -> tuple[Any, Any, Any]:
    """Window number, start and end per trade, as ``Aggregator._bounds`` computes them one by one
    (the number, ``floor((t + UTC offset) / length)`` or the day, orders one symbol's windows)."""
    import numpy as np

    lo, hi = math.floor(float(t.min())), math.floor(float(t.max()))
    off_lo, off_hi = agg._offset(float(lo)), agg._offset(float(hi))
    off: Any
    if off_lo == off_hi and hi - lo < 86_400:  # UTC offsets change at most twice a year
        off = off_lo
    else:
        import pandas as pd

        utc = pd.to_datetime(np.floor(t).astype(np.int64), unit="s", utc=True)
        local = utc.tz_convert(agg._tz).tz_localize(None)
        off = ((local - utc.tz_localize(None)).total_seconds()).to_numpy(dtype=np.float64)
    length = agg._length
    if length is not None:
        local = t + off
        # ``local // length`` (Python's float floor division: the floor of the exact quotient),
        # 10x faster: the rounded quotient's floor is at most one too high, and ``number *
        # length`` is exact (whole numbers below 2**53) to check it
        number = np.divide(local, length)
        np.floor(number, out=number)
        start = number * length
        high = start > local
        if high.any():
            number[high] -= 1
            start = number * length
        start -= off
        return number.astype(np.int64), start, start + length
    day = np.floor_divide(t + off, 86_400)
    days, first, inverse = np.unique(day, return_index=True, return_inverse=True)
    starts = np.empty(len(days))
    ends = np.empty(len(days))
    for k, i in enumerate(first.tolist()):
        starts[k], ends[k] = agg._bounds(float(t[i]))
    return inverse.astype(np.int64), starts[inverse], ends[inverse]


@dataclass
class _Plan:
    rows: Any  # batch rows not replayed (the arrays below are over these rows)
    replayed: int
    last_offset: int | None
    t: Any = None
    symbols: Any = None
    ends: Any = None
    effects: Any = None
    conditional: bool = False  # some trade is not a regular sale (else ``effects`` are all PRICE)
    ids: Any = None  # object array of trade ids (None where none), or None
    late: Any = None
    dup: Any = None  # None: no repeats
    touched: Any = None  # not late, not a repeat (None: every row)
    accepted: Any = None  # touched and not ignored (None: every row)
    wm_before: Any = None  # watermark before each row
    max_t: float = -math.inf
    order: Any = None  # rows sorted by (window, arrival)
    bounds: Any = None  # start of each window's run in ``order``
    first: Any = None  # first row of each window (as all the per-window values below)
    starts: Any = None
    first_touch: Any = None  # first touched row (NO_ROW: none)
    existing: list[_Window | None] | None = None  # None: the aggregator had no windows
    volumes: Any = None  # in arrival order from the window's earlier volume


NO_ROW = 2**62


def _plan(agg: Aggregator, batch: TradeBatch, p: int) -> _Plan | None:
    """Everything ``add`` would decide, as arrays; None when the batch must go one by one."""
    import numpy as np
    import pandas as pd

    n = len(batch)
    t_all = np.asarray(batch.t, dtype=np.float64)
    replayed = 0
    last_offset = None
    rows = np.arange(n)
    if batch.offsets is not None:
        off = np.asarray(batch.offsets, dtype=np.int64)
        pre = agg._last_offset.get(p, -1)
        before = np.empty(n, dtype=np.int64)
        before[0] = pre
        if n > 1:
            before[1:] = np.maximum.accumulate(off[:-1])
        is_replay = off <= np.maximum(before, pre)
        replayed = int(is_replay.sum())
        last_offset = max(pre, int(off.max()))
        if replayed:
            rows = np.flatnonzero(~is_replay)
    m = len(rows)
    if m == 0:
        return _Plan(rows, replayed, last_offset)

    def take(values: Any, dtype: Any) -> Any:
        arr = np.asarray(values, dtype=dtype)
        return arr if m == n else arr[rows]

    t = take(t_all, np.float64)
    symbols = take(batch.symbols, object)
    codes, names = pd.factorize(symbols)
    elsewhere = {w.symbol for w in agg._windows.values() if w.partition != p}
    if elsewhere and any(s in elsewhere for s in names):
        return None
    number, starts, ends = _bounds(agg, t)
    effects = _effects(agg, batch, rows)
    conditional = bool(effects.any())

    # one stable sort by window: (symbol code, window number) as one small integer key
    low = int(number.min())
    span = int(number.max()) - low + 1
    nkeys = len(names) * span
    wkey = codes * span
    wkey += number
    if low:
        wkey -= low
    if nkeys > 1 << 16:  # sparse: number the windows that occur
        wkey, uniques = pd.factorize(wkey)
        nkeys = len(uniques)
    if nkeys <= 1 << 16:
        wkey = wkey.astype(np.uint16)  # a radix sort
    order = np.argsort(wkey, kind="stable")
    g = wkey[order]
    change = np.empty(m, dtype=bool)
    change[0] = True
    np.not_equal(g[1:], g[:-1], out=change[1:])
    bounds = np.flatnonzero(change)
    first = order[bounds]  # first row (arrival) of each window
    keys = g[bounds].astype(np.int64)

    # the existing window of each (``add`` finds them by (symbol, start))
    windows = agg._windows
    existing: list[_Window | None] | None = None
    if windows:
        existing = [windows.get(k) for k in zip(symbols[first].tolist(), starts[first].tolist(), strict=True)]

    # repeats by provider trade id
    repeat = None
    ids = None
    if batch.trade_ids is not None:
        ids = take(batch.trade_ids, object)
        has = pd.notna(ids)
        if has.any():
            idc, _ = pd.factorize(ids)
            h = np.flatnonzero(has)
            key = wkey[h].astype(np.int64) * (int(idc.max()) + 1) + idc[h]
            repeat = np.zeros(m, dtype=bool)
            repeat[h] = pd.Series(key).duplicated().to_numpy()
            known = [] if existing is None else [k for k, w in enumerate(existing) if w is not None and w.ids]
            if known and existing is not None:
                window_of_key = np.empty(nkeys, dtype=np.int64)
                window_of_key[keys] = np.arange(len(keys))
                win = window_of_key[wkey[h]]
                for r, k in zip(h.tolist(), win.tolist(), strict=True):
                    w = existing[k]
                    if w is not None and w.ids is not None and ids[r] in w.ids:
                        repeat[r] = True

    # the watermark before each trade; late trades
    pre_max = agg._max_t.get(p, -math.inf)
    ignored = effects == _IGNORE if conditional else None
    stops = repeat if ignored is None else ignored if repeat is None else repeat | ignored
    incl = np.maximum.accumulate(t if stops is None else np.where(stops, -np.inf, t))
    if pre_max > -math.inf:
        np.maximum(incl, pre_max, out=incl)
    wm_before = np.empty(m)
    wm_before[0] = pre_max
    wm_before[1:] = incl[:-1]
    wm_before -= agg._delay
    late = (ends + agg._grace) <= wm_before
    any_late = bool(late.any())
    dup = None if repeat is None else repeat & ~late
    touched = None
    if dup is not None:
        touched = ~(late | dup)
    elif any_late:
        touched = ~late
    accepted = touched
    if ignored is not None:
        accepted = ~ignored if touched is None else touched & ~ignored

    first_touch = first
    if touched is not None:
        first_touch = np.minimum.reduceat(np.where(touched[order], order, NO_ROW), bounds)

    # volumes in arrival order, from each window's earlier volume (adding 0.0 changes no sum)
    sizes = take(batch.sizes, np.float64)
    weights = sizes if accepted is None else np.where(accepted, sizes, 0.0)
    earlier = []
    if existing is not None:
        earlier = [(k, w.volume) for k, w in enumerate(existing) if w is not None and w.volume]
    if earlier:
        pre_keys = keys[[k for k, _ in earlier]]
        pre_volumes = np.array([v for _, v in earlier], dtype=np.float64)
        volumes = np.bincount(
            np.concatenate([pre_keys, wkey]), np.concatenate([pre_volumes, weights]), minlength=nkeys
        )
    else:
        volumes = np.bincount(wkey, weights, minlength=nkeys)

    plan = _Plan(
        rows, replayed, last_offset, t, symbols, ends, effects, conditional, ids, late, dup, touched,
        accepted, wm_before, float(incl[-1]), order, bounds, first, starts[first], first_touch, existing,
        volumes[keys],
    )  # fmt: skip
    if _unpriced_emission(agg, p, plan, incl):
        return None
    return plan


def _unpriced_emission(agg: Aggregator, p: int, plan: _Plan, incl: Any) -> bool:
    """Could ``add`` emit some window of this batch while it has no price-setting trade? (Then the
    ``no_priced_trade`` dead letters depend on the exact moment: the batch goes one by one.)"""
    import numpy as np

    wm_final = plan.max_t - agg._delay
    wm_pre = agg._max_t.get(p, -math.inf) - agg._delay
    existing = plan.existing
    touched: set[int] = set()
    if existing is not None:
        hit = (plan.first_touch != NO_ROW).tolist()
        touched = {id(w) for w, h in zip(existing, hit, strict=True) if w is not None and h}
    for w in agg._by_partition.get(p, {}).values():
        if w.popen_t != math.inf or w.hl_open_t != math.inf or w.end > wm_final:
            continue  # priced, or not behind the watermark by the end of the batch
        if w.emitted and w.end <= wm_pre and id(w) not in touched:
            continue  # already out, and nothing in this batch changes it
        return True  # a volume-only window kept from before (rare: pre-market Form T and the like)
    if not plan.conditional:
        return False  # every trade taken sets the price
    order, bounds = plan.order, plan.bounds
    priced = plan.effects <= _HIGH_LOW
    if plan.accepted is not None:
        priced &= plan.accepted
    first_priced = np.minimum.reduceat(np.where(priced[order], order, NO_ROW), bounds)
    first_touch = plan.first_touch
    # a window kept from before is priced here (else the loop above answered); a new one is
    # emitted first when it is created behind the watermark or when the watermark passes its end
    new = first_touch != NO_ROW
    if existing is not None:
        new &= np.fromiter((w is None for w in existing), dtype=bool, count=len(existing))
    first_touch, first_priced = first_touch[new], first_priced[new]
    ends = plan.ends[first_touch]
    crossing = np.searchsorted(incl - agg._delay, ends, side="left")  # first row after which wm >= end
    emit_at = np.maximum(crossing, first_touch)
    return bool(np.any((ends <= wm_final) & (first_priced > emit_at)))


def _apply(agg: Aggregator, batch: TradeBatch, p: int, plan: _Plan) -> Output:
    import numpy as np

    c = agg.counters
    c.replayed += plan.replayed
    if plan.last_offset is not None:
        agg._last_offset[p] = plan.last_offset
    rows = plan.rows
    if not len(rows):
        return NOTHING
    late, accepted, effects = plan.late, plan.accepted, plan.effects
    m = len(rows)
    c.late_trades += int(np.count_nonzero(late))
    if plan.dup is not None:
        c.duplicates += int(np.count_nonzero(plan.dup))
    if plan.conditional:
        ign = effects == _IGNORE
        vol = effects == _VOLUME
        if plan.touched is not None:
            ign &= plan.touched
            vol &= plan.touched
        c.ignored += int(np.count_nonzero(ign))
        c.volume_only += int(np.count_nonzero(vol))  # touched and not ignored: accepted
    c.trades += m if accepted is None else int(np.count_nonzero(accepted))
    if plan.max_t > agg._max_t.get(p, -math.inf):
        agg._max_t[p] = plan.max_t

    bars: list[Any] = []
    dead: list[DeadLetter] = []
    _update_windows(agg, batch, p, plan, bars)
    for j in np.flatnonzero(late).tolist():
        dead.append(agg._late_at(batch.trade(int(rows[j])), float(plan.wm_before[j])))
    if p in agg._max_t:
        agg._advance(p, bars, dead)
    return Output(tuple(bars), tuple(dead)) if bars or dead else NOTHING


def _open_close(t_o: Any, bounds: Any, counts: Any, mask: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Per window, over the trades in ``mask`` (None: all; in arrival order per window): whether
    there is one, and the positions of the open (the first of the earliest) and the close (the
    last of the latest), as ``add`` sets them (``t < open_t``, ``t >= close_t``)."""
    import numpy as np

    n_o = len(t_o)
    if mask is None:
        lo = np.minimum.reduceat(t_o, bounds)
        hi = np.maximum.reduceat(t_o, bounds)
        at_lo = t_o == np.repeat(lo, counts)
        at_hi = t_o == np.repeat(hi, counts)
        found = np.ones(len(bounds), dtype=bool)
    else:
        lo = np.minimum.reduceat(np.where(mask, t_o, np.inf), bounds)
        hi = np.maximum.reduceat(np.where(mask, t_o, -np.inf), bounds)
        at_lo = (t_o == np.repeat(lo, counts)) & mask
        at_hi = (t_o == np.repeat(hi, counts)) & mask
        found = lo != np.inf
    pos = np.arange(n_o)
    first = np.minimum.reduceat(np.where(at_lo, pos, n_o), bounds)
    last = np.maximum.reduceat(np.where(at_hi, pos, -1), bounds)
    return found, np.where(found, first, 0), np.where(found, last, 0), lo, hi


def _update_windows(agg: Aggregator, batch: TradeBatch, p: int, plan: _Plan, bars: list[Any]) -> None:
    """Fold each window's trades into its ``_Window``; a window opened and closed (past grace)
    within this batch needs none: its one bar is built straight from the arrays."""
    import numpy as np

    order, bounds = plan.order, plan.bounds
    n_o = len(order)
    counts = np.diff(bounds, append=n_o)
    prices = np.asarray(batch.prices, dtype=np.float64)
    if len(plan.rows) != len(prices):
        prices = prices[plan.rows]
    t_o = plan.t[order]
    price_o = prices[order]
    acc = None if plan.accepted is None else plan.accepted[order]
    is_p = is_h = is_ph = acc
    any_h = False
    if plan.conditional:
        eff = plan.effects[order]
        is_p = eff == _PRICE
        is_h = eff == _HIGH_LOW
        if acc is not None:
            is_p &= acc
            is_h &= acc
        any_h = bool(is_h.any())
        is_ph = is_p | is_h
    h_open = h_close = h_open_t = h_close_t = None
    has_p, p_first, p_last, p_open_t, p_close_t = _open_close(t_o, bounds, counts, is_p)
    p_open, p_close = price_o[p_first], price_o[p_last]
    if any_h:
        has_h, h_first, h_last, h_open_t, h_close_t = _open_close(t_o, bounds, counts, is_h)
        h_open, h_close = price_o[h_first], price_o[h_last]
    else:
        has_h = np.zeros(len(bounds), dtype=bool)
    if is_ph is None:
        high = np.maximum.reduceat(price_o, bounds)
        low = np.minimum.reduceat(price_o, bounds)
        n_acc = counts
    else:
        high = np.maximum.reduceat(np.where(is_ph, price_o, -np.inf), bounds)
        low = np.minimum.reduceat(np.where(is_ph, price_o, np.inf), bounds)
        n_acc = np.add.reduceat(acc, bounds, dtype=np.int64) if acc is not None else counts
    first_touch = plan.first_touch
    hit = first_touch != NO_ROW
    starts = plan.starts
    ends = plan.ends[plan.first]
    one = batch.provider if isinstance(batch.provider, str) else None
    providers: Any = None  # per window, when the batch has no one provider
    if one is None:
        by_row = plan.rows[np.where(hit, first_touch, 0)].tolist()
        providers = np.array([batch.provider[i] for i in by_row], dtype=object)
    symbols = plan.symbols[plan.first]
    existing = plan.existing

    # opened and final (past grace) within this batch: bars straight from the arrays (priced, or
    # the batch went one by one), by the price-setting trades or else the high/low-only ones
    final = hit & (ends + agg._grace <= plan.max_t - agg._delay)
    if existing is not None:
        final &= np.fromiter((w is None for w in existing), dtype=bool, count=len(existing))
    k_final = np.flatnonzero(final)
    if len(k_final):
        opens = np.where(has_p, p_open, h_open if any_h else 0.0)[k_final]
        closes = np.where(has_p, p_close, h_close if any_h else 0.0)[k_final]
        bars.extend(
            agg._make_bars(
                symbols[k_final].tolist(),
                starts[k_final].tolist(),
                one if one is not None else providers[k_final].tolist(),
                opens.tolist(),
                high[k_final].tolist(),
                low[k_final].tolist(),
                closes.tolist(),
                np.rint(plan.volumes[k_final]).astype(np.int64).tolist(),
                agg._wall(),
            )
        )
        agg.counters.bars += len(k_final)

    # the others fold into their (new or kept) window
    rest = np.flatnonzero(hit & ~final)
    if not len(rest):
        return
    rest_l = rest.tolist()

    def pick(values: Any) -> list[Any]:
        return values[rest].tolist()

    r_sym, r_start, r_end = pick(symbols), pick(starts), pick(ends)
    r_prov = [one] * len(rest_l) if one is not None else pick(providers)
    r_has_p, r_po_t, r_po, r_pc_t, r_pc = (pick(x) for x in (has_p, p_open_t, p_open, p_close_t, p_close))
    r_has_h = pick(has_h)
    r_ho_t = r_ho = r_hc_t = r_hc = r_has_h  # read only where r_has_h
    if any_h:
        r_ho_t, r_ho, r_hc_t, r_hc = (pick(x) for x in (h_open_t, h_open, h_close_t, h_close))
    r_high, r_low, r_n, r_vol = pick(high), pick(low), pick(n_acc), pick(plan.volumes)
    min_off: list[int] | None = None
    if batch.offsets is not None:
        off_o = np.asarray(batch.offsets, dtype=np.int64)[plan.rows[order]]
        if acc is not None:
            off_o = np.where(acc, off_o, np.iinfo(np.int64).max)
        min_off = np.minimum.reduceat(off_o, bounds)[rest].tolist()
    ids_o = None
    if plan.ids is not None:
        ids_o = plan.ids[order]
        if plan.touched is not None:
            ids_o = np.where(plan.touched[order], ids_o, None)
    run_ends = [*bounds.tolist(), n_o]
    now = agg._now
    for j, k in enumerate(rest_l):
        w = None if existing is None else existing[k]
        if w is None:
            w = _Window(r_sym[j], p, r_start[j], r_end[j], r_prov[j])
            agg._register(w)
        if r_has_p[j]:
            if r_po_t[j] < w.popen_t:
                w.popen_t, w.popen = r_po_t[j], r_po[j]
            if r_pc_t[j] >= w.pclose_t:
                w.pclose_t, w.pclose = r_pc_t[j], r_pc[j]
        if r_has_h[j]:
            if r_ho_t[j] < w.hl_open_t:
                w.hl_open_t, w.hl_open = r_ho_t[j], r_ho[j]
            if r_hc_t[j] >= w.hl_close_t:
                w.hl_close_t, w.hl_close = r_hc_t[j], r_hc[j]
        if r_high[j] > w.high:
            w.high = r_high[j]
        if r_low[j] < w.low:
            w.low = r_low[j]
        if ids_o is not None:
            got = [x for x in ids_o[run_ends[k] : run_ends[k + 1]].tolist() if x is not None]
            if got:
                if w.ids is None:
                    w.ids = set()
                w.ids.update(got)
        if r_n[j]:
            w.volume = r_vol[j]
            w.trades += r_n[j]
            w.last_update = now
            w.emitted = False  # changed: the watermark step below emits it once it is behind
            if min_off is not None and (w.min_offset is None or min_off[j] < w.min_offset):
                w.min_offset = min_off[j]


__all__ = ["TradeBatch", "add_batch"]
