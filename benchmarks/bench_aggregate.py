"""Benchmark: trades -> 1-minute bars, stockpipe's aggregator vs a bare pandas resample, one core.

    .venv/bin/python benchmarks/bench_aggregate.py --symbols 50 --minutes 390 --per-second 40 --rounds 3

The same trades (arrival order, up to 2 s out of order) go through, each timed, in one run, with
the process pinned to one CPU:

* ``stockpipe batch, columns``: ``batch.add_batch`` on a ``TradeBatch`` of the columns (symbol
  array, prices, times in ms, sizes) + ``flush`` (watermark, grace, dedupe, conditions; emits
  ``Bar`` objects);
* ``pandas, columns ready``: ``groupby(symbol)[price].resample("1min").ohlc()`` and the volume
  sum, from a DataFrame of the same columns already built (the bare batch operation, sorting
  included; times already datetime64);
* ``stockpipe batch, from trades`` / ``pandas, from trades``: the same, starting from the ``Trade``
  objects (building the columns / the DataFrame included);
* ``stockpipe per trade``: ``Aggregator.add`` for each ``Trade`` + ``flush`` (the reference path).

Every stockpipe output is compared with pandas (0 mismatches required). Goal: stockpipe >= 1x
pandas on the same columns. As ``timeit`` does, the garbage collector is off while a run is timed
(the benchmark holds all trades as Python objects, whose full collections would otherwise be
charged to whichever run allocates objects).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from benchmarks._report import write_section
from stockpipe.sources.live.aggregate import Aggregator, AggregatorConfig
from stockpipe.sources.live.batch import TradeBatch, add_batch
from stockpipe.sources.live.trades import Trade
from tests.live_helpers import bars_frame, mismatches, random_trades

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def run_stockpipe(trades: list[Trade]) -> tuple[float, list]:
    agg = Aggregator(AggregatorConfig())
    bars: list = []
    with gc_off():
        started = time.perf_counter()
        add = agg.add
        for t in trades:
            out = add(t)
            if out.bars:
                bars.extend(out.bars)
        bars.extend(agg.flush().bars)
        return time.perf_counter() - started, bars


@contextmanager
def gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def columns_of(trades: list[Trade]) -> dict[str, np.ndarray]:
    """The trades as plain columns: what both the batch path and the DataFrame are built from."""
    return {
        "symbol": np.array([t.symbol for t in trades], dtype=object),
        "ms": np.array([round(t.ts.timestamp() * 1000) for t in trades], dtype=np.int64),
        "price": np.array([t.price for t in trades], dtype=np.float64),
        "size": np.array([t.size for t in trades], dtype=np.float64),
    }


def run_batch(make: Callable[[], TradeBatch]) -> tuple[float, list]:
    agg = Aggregator(AggregatorConfig())
    with gc_off():
        started = time.perf_counter()
        bars = list(add_batch(agg, make()).bars)
        bars.extend(agg.flush().bars)
        return time.perf_counter() - started, bars


def frame_of(trades: list[Trade]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [t.symbol for t in trades],
            "ts": pd.to_datetime([t.ts.timestamp() for t in trades], unit="s", utc=True),
            "price": [t.price for t in trades],
            "size": [t.size for t in trades],
        }
    )


def frame_of_columns(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": cols["symbol"],
            "ts": pd.to_datetime(cols["ms"], unit="ms", utc=True),
            "price": cols["price"],
            "size": cols["size"],
        }
    )


def resample(df: pd.DataFrame) -> pd.DataFrame:
    df = df.sort_values("ts", kind="stable").set_index("ts")
    grouped = df.groupby("symbol")
    ohlc = grouped["price"].resample("1min").ohlc()
    ohlc["volume"] = grouped["size"].resample("1min").sum()
    return ohlc.dropna(subset=["open"])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    with gc_off():
        started = time.perf_counter()
        out = fn()
        return time.perf_counter() - started, out


def one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def versus_pandas(bars: list, theirs: pd.DataFrame) -> int:
    return mismatches(bars_frame(bars), theirs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--minutes", type=int, default=390)
    ap.add_argument("--per-second", type=float, default=40.0, help="trades per second, all symbols")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    pinned = one_core()

    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    trades = random_trades(symbols, T0, args.minutes * 60, args.per_second, seed=1, jitter=2.0)
    cols = columns_of(trades)
    prebuilt = frame_of_columns(cols)
    n = len(trades)

    def batch_cols() -> TradeBatch:
        return TradeBatch.from_columns(cols["symbol"], cols["price"], cols["ms"], cols["size"])

    runs: dict[str, Callable[[], tuple[float, object]]] = {
        "stockpipe batch `add_batch`, columns ready": lambda: run_batch(batch_cols),
        "pandas `resample().ohlc()`, columns ready": lambda: timed(lambda: resample(prebuilt)),
        "stockpipe batch, from the `Trade` objects": lambda: run_batch(
            lambda: TradeBatch.from_trades(trades)
        ),
        "pandas, DataFrame built from the `Trade` objects": lambda: timed(lambda: resample(frame_of(trades))),
        "stockpipe per trade `Aggregator.add` (reference)": lambda: run_stockpipe(trades),
    }
    best = dict.fromkeys(runs, float("inf"))
    outputs: dict[str, object] = {}
    for i in range(args.rounds):
        for name, run in runs.items():
            sec, out = run()
            best[name] = min(best[name], sec)
            outputs[name] = out
        print(
            f"round {i + 1}: " + ", ".join(f"{name.split(',')[0]} {n / best[name]:,.0f}/s" for name in runs)
        )

    ref = outputs["pandas `resample().ohlc()`, columns ready"]
    assert isinstance(ref, pd.DataFrame)
    theirs = ref.reset_index().rename(columns={"ts": "bar_ts"})
    theirs["bar_ts"] = theirs["bar_ts"].dt.tz_convert("America/New_York")
    theirs["volume"] = theirs["volume"].round().astype("int64")
    theirs = theirs.set_index(["symbol", "bar_ts"]).sort_index()
    bad = {name: versus_pandas(out, theirs) for name, out in outputs.items() if isinstance(out, list)}
    nbars = len(theirs)
    print(f"{n:,} trades -> {nbars:,} bars; mismatches vs pandas: {bad}")
    if any(bad.values()):
        raise SystemExit("aggregator and pandas disagree")

    names = list(runs)
    table = "\n".join(f"| {name} | {n / best[name]:,.0f} | {best[name]:.3f} |" for name in names)
    ratio_cols = best[names[1]] / best[names[0]]
    ratio_trades = best[names[3]] / best[names[2]]
    ratio_ref = best[names[1]] / best[names[4]]
    command = (
        f"benchmarks/bench_aggregate.py --symbols {args.symbols} --minutes {args.minutes} "
        f"--per-second {args.per_second:g}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    goal = "met" if ratio_cols >= 1 else "not met"
    markdown = f"""## Trades -> bars aggregation (issue 14)

`{command}`: {n:,} trades of {args.symbols} symbols over {args.minutes} minutes, arriving up to
2 s out of order, to {nbars:,} one-minute bars; best of {args.rounds} rounds, one process {pinned},
1-minute load average {load:.1f} at the end. Every stockpipe output equals pandas (0 mismatches).

| aggregation | trades/s | seconds |
|---|---:|---:|
{table}

Ratio stockpipe / pandas on the same columns: **{ratio_cols:.2f}x** (goal 1x: {goal}); from the
`Trade` objects {ratio_trades:.2f}x; the per-trade reference path is {ratio_ref:.2f}x of the bare
resample. The batch path (`stockpipe/sources/live/batch.py`) computes what the per-trade path
decides (watermark, lateness, grace, id dedupe, sale conditions) with numpy over the batch and
emits `Bar` objects; within one batch a corrected bar is emitted once, in its last version. The
aggregator service feeds it one batch per partition and consumer round."""
    print(markdown)
    if not args.no_write:
        write_section("aggregate", markdown)


if __name__ == "__main__":
    main()
