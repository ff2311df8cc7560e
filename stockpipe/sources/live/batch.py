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
* **bar values** per window from one stable sort by (window, trade time): open/close are the
  first/last price-setting trade (ties in arrival order), high/low a max/min, volume a
  ``bincount`` in arrival order starting from the window's earlier volume (the same float sums);
* **emission**: every window with an accepted trade is marked changed, then one watermark step
  (``_advance``) emits each changed or newly passed window once and drops windows past grace; a
  window opened and already past its grace within the batch never becomes a ``_Window``: its one
  bar is built straight from the arrays (the common case for a large batch).

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


def _bounds(agg: Aggregator, t: Any) -> tuple[Any, Any]:
    """Window start and end per trade, as ``Aggregator._bounds`` computes them one by one."""
    import numpy as np

    sec = np.floor(t)
    lo, hi = float(sec.min()), float(sec.max())
    off_lo, off_hi = agg._offset(lo), agg._offset(hi)
    off: Any
    if off_lo == off_hi and hi - lo < 86_400:  # UTC offsets change at most twice a year
        off = off_lo
    else:
        import pandas as pd

        utc = pd.to_datetime(sec.astype(np.int64), unit="s", utc=True)
        local = utc.tz_convert(agg._tz).tz_localize(None)
        off = ((local - utc.tz_localize(None)).total_seconds()).to_numpy(dtype=np.float64)
    length = agg._length
    if length is not None:
        start = np.floor_divide(t + off, length) * length - off
        return start, start + length
    day = np.floor_divide(t + off, 86_400)
    days, first, inverse = np.unique(day, return_index=True, return_inverse=True)
    starts = np.empty(len(days))
    ends = np.empty(len(days))
    for k, i in enumerate(first.tolist()):
        starts[k], ends[k] = agg._bounds(float(t[i]))
    return starts[inverse], ends[inverse]


@dataclass
class _Plan:
    rows: Any  # batch rows not replayed (the arrays below are over these rows)
    replayed: int
    last_offset: int | None
    t: Any = None
    symbols: Any = None
    starts: Any = None
    ends: Any = None
    effects: Any = None
    ids: Any = None  # object array of trade ids (None where none), or None
    late: Any = None
    dup: Any = None
    accepted: Any = None
    wm_before: Any = None  # watermark before each row
    max_t: float = -math.inf
    wcode: Any = None  # window code per row (first appearance order)
    order: Any = None  # touched rows sorted by (window, time, arrival)
    bounds: Any = None  # start of each window's run in ``order``
    existing: list[_Window | None] | None = None  # per window code
    volumes: Any = None  # per window code, in arrival order from the window's earlier volume


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
    starts, ends = _bounds(agg, t)
    effects = _effects(agg, batch, rows)

    # window codes (first appearance order)
    s_int = starts.astype(np.int64)
    wkey = codes.astype(np.int64) * (1 << 32) + (s_int - s_int.min())
    wcode, _ = pd.factorize(wkey)
    nw = int(wcode.max()) + 1

    # the existing window of each code (``add`` finds them by (symbol, start))
    windows = agg._windows
    existing: list[_Window | None] = [None] * nw
    if windows:
        first_of = np.flatnonzero(~pd.Series(wcode).duplicated().to_numpy())  # code k first at first_of[k]
        existing = [windows.get((symbols[i], float(starts[i]))) for i in first_of.tolist()]

    # repeats by provider trade id
    repeat = np.zeros(m, dtype=bool)
    ids = None
    if batch.trade_ids is not None:
        ids = take(batch.trade_ids, object)
        has = pd.notna(ids)
        if has.any():
            idc, _ = pd.factorize(ids)
            h = np.flatnonzero(has)
            key = wcode[h].astype(np.int64) * (int(idc.max()) + 1) + idc[h]
            repeat[h] = pd.Series(key).duplicated().to_numpy()
            known = {k for k, w in enumerate(existing) if w is not None and w.ids}
            if known:
                for r in h[np.isin(wcode[h], list(known))].tolist():
                    w = existing[wcode[r]]
                    if w is not None and w.ids is not None and ids[r] in w.ids:
                        repeat[r] = True

    # the watermark before each trade; late trades
    pre_max = agg._max_t.get(p, -math.inf)
    moves = np.where(repeat | (effects == _IGNORE), -np.inf, t)
    incl = np.maximum(np.maximum.accumulate(moves), pre_max)
    excl = np.empty(m)
    excl[0] = pre_max
    excl[1:] = incl[:-1]
    wm_before = excl - agg._delay
    late = (ends + agg._grace) <= wm_before
    dup = repeat & ~late
    touched = ~late & ~dup
    accepted = touched & (effects != _IGNORE)

    # touched rows by (window, time, arrival): stable sorts, the time one on nearly sorted data
    trows = np.flatnonzero(touched)
    by_t = trows[np.argsort(t[trows], kind="stable")]
    wdtype = np.uint16 if nw <= 0xFFFF else np.int64
    order = by_t[np.argsort(wcode[by_t].astype(wdtype), kind="stable")]
    g = wcode[order]
    change = np.empty(len(order), dtype=bool)
    if len(order):
        change[0] = True
        np.not_equal(g[1:], g[:-1], out=change[1:])
    bounds = np.flatnonzero(change)

    # volumes in arrival order, from each window's earlier volume
    pre_codes = [k for k, w in enumerate(existing) if w is not None and w.volume]
    arows = np.flatnonzero(accepted)
    sizes = take(batch.sizes, np.float64)
    pre_volumes = [w.volume for w in existing if w is not None and w.volume]
    volumes = np.bincount(
        np.concatenate([np.asarray(pre_codes, dtype=np.int64), wcode[arows]]),
        weights=np.concatenate([np.asarray(pre_volumes, dtype=np.float64), sizes[arows]]),
        minlength=nw,
    )

    plan = _Plan(
        rows, replayed, last_offset, t, symbols, starts, ends, effects, ids, late, dup, accepted,
        wm_before, float(incl[-1]), wcode, order, bounds, existing, volumes,
    )  # fmt: skip
    if _unpriced_emission(agg, p, plan, incl - agg._delay):
        return None
    return plan


def _unpriced_emission(agg: Aggregator, p: int, plan: _Plan, wm_after: Any) -> bool:
    """Could ``add`` emit some window of this batch while it has no price-setting trade? (Then the
    ``no_priced_trade`` dead letters depend on the exact moment: the batch goes one by one.)"""
    import numpy as np

    wm_final = float(wm_after[-1])
    wm_pre = agg._max_t.get(p, -math.inf) - agg._delay
    order, bounds = plan.order, plan.bounds
    existing = plan.existing or []
    touched: set[int] = set()
    first_touch = None
    if len(order):
        first_touch = np.minimum.reduceat(order, bounds)
        codes = plan.wcode[first_touch].tolist()
        touched = {id(existing[k]) for k in codes if existing[k] is not None}
    for w in agg._by_partition.get(p, {}).values():
        if w.popen_t != math.inf or w.hl_open_t != math.inf or w.end > wm_final:
            continue  # priced, or not behind the watermark by the end of the batch
        if w.emitted and w.end <= wm_pre and id(w) not in touched:
            continue  # already out, and nothing in this batch changes it
        return True  # a volume-only window kept from before (rare: pre-market Form T and the like)
    if first_touch is None:
        return False
    big = np.iinfo(np.int64).max
    priced = plan.accepted[order] & (plan.effects[order] <= _HIGH_LOW)
    first_priced = np.minimum.reduceat(np.where(priced, order, big), bounds)
    ends = plan.ends[first_touch]
    crossing = np.searchsorted(wm_after, ends, side="left")  # first row after which wm >= end
    # a window kept from before is priced here (else the loop above answered); a new one is
    # emitted first when it is created behind the watermark or when the watermark passes its end
    new = np.fromiter((existing[k] is None for k in codes), dtype=bool)
    emit_at = np.maximum(crossing, first_touch)
    return bool(np.any(new & (ends <= wm_final) & (first_priced > emit_at)))


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
    c.late_trades += int(late.sum())
    c.duplicates += int(plan.dup.sum())
    c.ignored += int((~late & ~plan.dup & (effects == _IGNORE)).sum())
    c.volume_only += int((accepted & (effects == _VOLUME)).sum())
    c.trades += int(accepted.sum())
    if plan.max_t > agg._max_t.get(p, -math.inf):
        agg._max_t[p] = plan.max_t

    bars: list[Any] = []
    dead: list[DeadLetter] = []
    if len(plan.order):
        _update_windows(agg, batch, p, plan, bars)
    for j in np.flatnonzero(late).tolist():
        dead.append(agg._late_at(batch.trade(int(rows[j])), float(plan.wm_before[j])))
    if p in agg._max_t:
        agg._advance(p, bars, dead)
    return Output(tuple(bars), tuple(dead)) if bars or dead else NOTHING


def _update_windows(agg: Aggregator, batch: TradeBatch, p: int, plan: _Plan, bars: list[Any]) -> None:
    """Fold each window's trades into its ``_Window``; a window opened and closed (past grace)
    within this batch needs none: its one bar is built straight from the arrays."""
    import numpy as np

    order, bounds = plan.order, plan.bounds
    n_o = len(order)
    prices = np.asarray(batch.prices, dtype=np.float64)
    if len(plan.rows) != len(prices):
        prices = prices[plan.rows]
    acc = plan.accepted[order]
    eff = plan.effects[order]
    pos = np.arange(n_o)
    is_p = acc & (eff == _PRICE)
    is_h = acc & (eff == _HIGH_LOW)
    is_ph = is_p | is_h
    t_o = plan.t[order]
    price_o = prices[order]

    def first_last(mask: Any) -> tuple[list[bool], list[float], list[float], list[float], list[float]]:
        """Per window: any such trade; time and price of the first and the last of them."""
        first = np.minimum.reduceat(np.where(mask, pos, n_o), bounds)
        last = np.maximum.reduceat(np.where(mask, pos, -1), bounds)
        found = first < n_o
        f, la = np.where(found, first, 0), np.where(found, last, 0)
        return found.tolist(), t_o[f].tolist(), price_o[f].tolist(), t_o[la].tolist(), price_o[la].tolist()

    has_p, p_open_t, p_open, p_close_t, p_close = first_last(is_p)
    has_h, h_open_t, h_open, h_close_t, h_close = first_last(is_h)
    high = np.maximum.reduceat(np.where(is_ph, price_o, -np.inf), bounds).tolist()
    low = np.minimum.reduceat(np.where(is_ph, price_o, np.inf), bounds).tolist()
    n_acc = np.add.reduceat(acc.astype(np.int64), bounds).tolist()
    first_touch = np.minimum.reduceat(order, bounds)
    codes = plan.wcode[first_touch]
    volumes = plan.volumes[codes].tolist()
    wcodes = codes.tolist()
    starts = plan.starts[first_touch].tolist()
    ends = plan.ends[first_touch].tolist()
    symbols = plan.symbols[first_touch].tolist()
    if isinstance(batch.provider, str):
        providers = [batch.provider] * len(wcodes)
    else:
        providers = [batch.provider[i] for i in plan.rows[first_touch].tolist()]
    min_off: list[int] | None = None
    if batch.offsets is not None:
        off_o = np.asarray(batch.offsets, dtype=np.int64)[plan.rows[order]]
        min_off = np.minimum.reduceat(np.where(acc, off_o, np.iinfo(np.int64).max), bounds).tolist()
    ids_o = None
    if plan.ids is not None:
        ids_o = plan.ids[order]
    run_ends = [*bounds.tolist(), n_o]
    now = agg._now
    existing = plan.existing or []
    wm_final = plan.max_t - agg._delay
    grace = agg._grace
    wall = agg._wall
    make_bar = agg._make_bar
    emitted = 0
    for k, code in enumerate(wcodes):
        w = existing[code]
        if w is None and ends[k] + grace <= wm_final:  # opened and final in this batch
            if has_p[k]:
                o, c = p_open[k], p_close[k]
            else:  # priced (else the batch went one by one): by high/low-only trades
                o, c = h_open[k], h_close[k]
            bars.append(
                make_bar(symbols[k], starts[k], providers[k], o, high[k], low[k], c, volumes[k], wall())
            )
            emitted += 1
            continue
        if w is None:
            w = _Window(symbols[k], p, starts[k], ends[k], providers[k])
            agg._register(w)
        if has_p[k]:
            if p_open_t[k] < w.popen_t:
                w.popen_t, w.popen = p_open_t[k], p_open[k]
            if p_close_t[k] >= w.pclose_t:
                w.pclose_t, w.pclose = p_close_t[k], p_close[k]
        if has_h[k]:
            if h_open_t[k] < w.hl_open_t:
                w.hl_open_t, w.hl_open = h_open_t[k], h_open[k]
            if h_close_t[k] >= w.hl_close_t:
                w.hl_close_t, w.hl_close = h_close_t[k], h_close[k]
        if high[k] > w.high:
            w.high = high[k]
        if low[k] < w.low:
            w.low = low[k]
        if ids_o is not None:
            got = [x for x in ids_o[run_ends[k] : run_ends[k + 1]].tolist() if x is not None]
            if got:
                if w.ids is None:
                    w.ids = set()
                w.ids.update(got)
        if n_acc[k]:
            w.volume = volumes[k]
            w.trades += n_acc[k]
            w.last_update = now
            w.emitted = False  # changed: the watermark step below emits it once it is behind
            if min_off is not None and (w.min_offset is None or min_off[k] < w.min_offset):
                w.min_offset = min_off[k]
    agg.counters.bars += emitted


__all__ = ["TradeBatch", "add_batch"]
