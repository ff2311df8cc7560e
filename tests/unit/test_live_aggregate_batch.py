"""The vectorised batch path equals the per-trade aggregator (the reference), on random streams.

Seeded random cases (hypothesis is not installed): several symbols, trades out of order, late
within grace, late beyond grace, repeated provider ids, Alpaca sale conditions (volume-only,
high/low-only, ignored, Form T-only windows), replayed offsets, quiet-timeout ticks, different
intervals, delays and grace periods, and batch boundaries anywhere. For every batch: the bars it
emits are the last version of each bar the per-trade path emitted in that batch; the dead letters
are the same, in the same order; after every batch the aggregator state and counters are the
same (except how many bar versions went out).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stockpipe.contract import Bar
from stockpipe.sources.live.aggregate import Aggregator, AggregatorConfig, Output
from stockpipe.sources.live.batch import TradeBatch, add_batch
from stockpipe.sources.live.trades import Trade
from tests.helpers_clock import FakeClock
from tests.live_helpers import RECEIVED, trade

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
# mostly regular sales; odd lot (volume only), sold out of sequence (high/low only), official close
# (ignored), Form T (volume only), intermarket sweep (a regular sale)
CONDITIONS: list[tuple[str, ...]] = [("@",)] * 3 + [("@", "I"), ("@", "Z"), ("M",), ("T",), ("@", "F")]


class Wall:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _stream(rng: random.Random) -> list[Trade]:
    symbols = ["AAPL", "MSFT", "IBM", "SPY"][: rng.randint(1, 4)]
    seconds = rng.choice([90, 240, 600])
    n = rng.randint(1, 400)
    alpaca = rng.random() < 0.5
    price = {s: 100.0 + i for i, s in enumerate(symbols)}
    rows: list[tuple[float, Trade]] = []
    next_id = 0
    for _ in range(n):
        s = rng.choice(symbols)
        ms = rng.randrange(seconds * 1000)
        price[s] = round(max(1.0, price[s] + rng.choice([-0.02, 0.0, 0.01, 0.03])), 2)
        size = rng.choice([1, 5, 100, 250]) if rng.random() < 0.9 else rng.choice([0.5, 0.25, 1.1])
        if alpaca or rng.random() < 0.1:
            next_id += 1
            t = trade(
                s, T0 + timedelta(milliseconds=ms), price[s], size,
                trade_id=f"V:{next_id}", conditions=rng.choice(CONDITIONS), provider="alpaca",
            )  # fmt: skip
        else:
            t = trade(s, T0 + timedelta(milliseconds=ms), price[s], size)
        r = rng.random()
        arrival = ms / 1000 + (rng.random() * 3 if r < 0.8 else rng.random() * 300)  # some late
        rows.append((arrival, t))
        if t.trade_id is not None and rng.random() < 0.1:  # a repeat, soon or much later
            rows.append((arrival + rng.random() * 200, t))
    rows.sort(key=lambda x: x[0])
    return [t for _, t in rows]


def _batches(rng: random.Random, n: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 8)))) if n > 1 else []
    edges = [0, *cuts, n]
    return list(itertools.pairwise(edges))


def _last_versions(bars: tuple[Bar, ...]) -> dict[tuple[str, datetime], tuple[Any, ...]]:
    out: dict[tuple[str, datetime], tuple[Any, ...]] = {}
    for b in bars:  # in emission order: the last one wins
        out[(b.symbol, b.bar_ts)] = (b.open, b.high, b.low, b.close, b.volume, b.source, b.interval)
    return out


def _state(agg: Aggregator) -> dict[str, Any]:
    state = agg.state()
    for name in ("bars", "corrections"):
        state["counters"].pop(name)
    windows = []
    for w in state["windows"]:
        w = dict(w)
        w.pop("last_produced")
        w["ids"] = sorted(w["ids"]) if w["ids"] is not None else None
        windows.append(w)
    state["windows"] = sorted(windows, key=lambda w: (w["symbol"], w["start"]))
    return state


def _columns(trades: list[Trade], offsets: list[int] | None) -> TradeBatch:
    return TradeBatch.from_columns(
        [t.symbol for t in trades],
        [t.price for t in trades],
        [round(t.ts.timestamp() * 1000) for t in trades],
        [t.size for t in trades],
        trade_ids=[t.trade_id for t in trades],
        conditions=[t.conditions for t in trades],
        provider=[t.provider for t in trades],
        offsets=offsets,
        received_at=RECEIVED,
    )


def _case(seed: int) -> None:
    rng = random.Random(seed)
    trades = _stream(rng)
    cfg = AggregatorConfig(
        interval=rng.choice(["1min", "1min", "1min", "5min"]),
        allowed_delay_seconds=rng.choice([0.0, 2.0, 5.0]),
        grace_seconds=rng.choice([0.0, 30.0, 120.0]),
        quiet_timeout_seconds=10.0,
    )
    use_offsets = rng.random() < 0.5
    offsets = list(range(len(trades)))
    if use_offsets and len(trades) > 4 and rng.random() < 0.5:  # a consumer re-reading from earlier
        back = rng.randrange(len(trades) // 2, len(trades))
        again = rng.randrange(0, back)
        trades = trades[:back] + trades[again:]
        offsets = offsets[:back] + offsets[again:]
    columns = rng.random() < 0.5
    clocks = FakeClock(1000.0), FakeClock(1000.0)
    ref = Aggregator(cfg, monotonic=clocks[0].monotonic, wall=Wall())
    fast = Aggregator(cfg, monotonic=clocks[1].monotonic, wall=Wall())
    final: list[Output] = [Output(), Output()]
    for lo, hi in _batches(rng, len(trades)):
        chunk, offs = trades[lo:hi], offsets[lo:hi] if use_offsets else None
        bars: list[Bar] = []
        dead = []
        for i, t in enumerate(chunk):
            out = ref.add(t, offset=None if offs is None else offs[i])
            bars.extend(out.bars)
            dead.extend(out.dead_letters)
        batch = _columns(chunk, offs) if columns else TradeBatch.from_trades(chunk, offsets=offs)
        got = add_batch(fast, batch)
        where = f"seed {seed}, batch {lo}:{hi} of {len(trades)}, {cfg}"
        assert _last_versions(got.bars) == _last_versions(tuple(bars)), where
        assert len(got.bars) == len(_last_versions(got.bars)), where  # once per bar in a batch
        assert list(got.dead_letters) == dead, where
        assert _state(fast) == _state(ref), where
        if rng.random() < 0.3:  # the service ticks between rounds
            step = rng.choice([1.0, 11.0])
            for c in clocks:
                c.now += step
            a, b = ref.tick(), fast.tick()
            assert _last_versions(a.bars) == _last_versions(b.bars), where
            assert a.dead_letters == b.dead_letters, where
    final = [ref.flush(), fast.flush()]
    assert _last_versions(final[0].bars) == _last_versions(final[1].bars)
    assert final[0].dead_letters == final[1].dead_letters


@pytest.mark.parametrize("block", range(8))
def test_batch_path_equals_per_trade_path_on_random_streams(block: int) -> None:
    for seed in range(block * 100, block * 100 + 100):
        _case(seed)


def test_one_batch_of_a_day_of_trades_equals_per_trade() -> None:
    from tests.live_helpers import random_trades

    trades = random_trades(["AAPL", "MSFT", "IBM"], T0, 3600, 20, seed=3, jitter=2.0)
    ref = Aggregator(AggregatorConfig(), wall=Wall(), monotonic=FakeClock().monotonic)
    fast = Aggregator(AggregatorConfig(), wall=Wall(), monotonic=FakeClock().monotonic)
    expected = [ref.add(t) for t in trades]
    got = add_batch(fast, TradeBatch.from_trades(trades))
    want = _last_versions(tuple(b for o in expected for b in o.bars))
    assert _last_versions(got.bars) == want
    assert len(want) > 150
    assert _state(fast) == _state(ref)


def test_a_volume_only_window_goes_one_by_one_and_gives_the_same_dead_letters() -> None:
    def alpaca(seconds: float, size: float, ident: str, conditions: tuple[str, ...]) -> Trade:
        ts = T0 + timedelta(seconds=seconds)
        return trade("AAPL", ts, 10.0, size, trade_id=ident, conditions=conditions, provider="alpaca")

    t = [alpaca(0, 300, "1", ("T",)), alpaca(70, 100, "2", ("T",)), alpaca(130, 100, "3", ("@",))]
    ref, fast = Aggregator(AggregatorConfig(), wall=Wall()), Aggregator(AggregatorConfig(), wall=Wall())
    dead = [d for x in t for d in ref.add(x).dead_letters]
    got = add_batch(fast, TradeBatch.from_trades(t))
    assert [d.reason for d in got.dead_letters] == ["no_priced_trade", "no_priced_trade"]
    assert list(got.dead_letters) == dead


def _one_batch_equals_per_trade(trades: list[Trade], cfg: AggregatorConfig) -> int:
    """One batch of ``trades`` against ``add`` one by one (bars, dead letters, state, flush); how
    many bars (batch and flush)."""
    ref = Aggregator(cfg, wall=Wall(), monotonic=FakeClock().monotonic)
    fast = Aggregator(cfg, wall=Wall(), monotonic=FakeClock().monotonic)
    expected = [ref.add(t) for t in trades]
    got = add_batch(fast, _columns(trades, None))
    want = _last_versions(tuple(b for o in expected for b in o.bars))
    assert _last_versions(got.bars) == want
    assert list(got.dead_letters) == [d for o in expected for d in o.dead_letters]
    assert _state(fast) == _state(ref)
    flushed = _last_versions(fast.flush().bars)
    assert flushed == _last_versions(ref.flush().bars)
    return len(want | flushed)


@pytest.mark.parametrize(
    ("symbols", "minutes", "every"),
    [
        (700, 100, 99),  # 70,000 (symbol, minute) keys, 1,400 windows: numbered before the sort
        (1_100, 61, 1),  # 67,100 windows: a sort on 64-bit window numbers
    ],
)
def test_many_windows_in_one_batch_equal_per_trade(symbols: int, minutes: int, every: int) -> None:
    names = [f"S{i:04d}" for i in range(symbols)]
    trades = [
        trade(s, T0 + timedelta(minutes=m, seconds=(i * 7 + m) % 60), 10.0 + (i + m) % 13, 1 + i % 5)
        for m in range(0, minutes, every)
        for i, s in enumerate(names)
    ]
    trades += trades[:50]  # same trades again, late by then (windows past grace): dead letters
    bars = _one_batch_equals_per_trade(trades, AggregatorConfig())
    assert bars == symbols * len(range(0, minutes, every))


@pytest.mark.parametrize("interval", ["1min", "60min", "1day"])
def test_a_batch_across_a_dst_change_equals_per_trade(interval: str) -> None:
    from tests.live_helpers import random_trades

    start = datetime(2024, 3, 10, 6, 0, tzinfo=UTC)  # clocks go forward at 07:00 UTC (2:00 EST)
    trades = random_trades(["AAPL", "MSFT"], start, 7200, 5, seed=5, jitter=2.0)
    assert _one_batch_equals_per_trade(trades, AggregatorConfig(interval=interval)) > 0
