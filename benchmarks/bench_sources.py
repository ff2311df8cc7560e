"""Benchmark: simulator bar generation and replay parsing throughput.

    .venv/bin/python benchmarks/bench_sources.py --symbols 500 --days 1 --rounds 3

Simulator: time from ``SimulatorSource(...)`` to the last yielded ``Bar`` (the calendar and
imports are warmed first), vs a floor that only builds the same number of plain dicts.
Replay: a Yahoo-layout CSV of the same bars (one symbol column), parsed and validated.
Goal: 195,000 simulated bars (500 symbols x 1 day) well under 5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_section
from stockpipe.sources import SourceOptions
from stockpipe.sources.calendar import trading_days
from stockpipe.sources.replay import ReplaySource
from stockpipe.sources.simulator import SimulatorSource


def simulate(symbols: tuple[str, ...], start: date, end: date) -> tuple[int, float]:
    started = time.perf_counter()
    count = sum(1 for _ in SimulatorSource(SourceOptions(symbols=symbols, start=start, end=end)).bars())
    return count, time.perf_counter() - started


def dict_floor(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        _ = {"symbol": "A", "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": i}
    return time.perf_counter() - started


def write_csv(path: Path, symbols: tuple[str, ...], start: date, end: date) -> int:
    src = SimulatorSource(SourceOptions(symbols=symbols, start=start, end=end))
    lines = ["symbol,datetime,open,high,low,close,volume"]
    lines += [
        f"{b.symbol},{b.bar_ts.isoformat()},{b.open},{b.high},{b.low},{b.close},{b.volume}"
        for b in src.bars()
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()

    symbols = tuple(f"S{i:03d}" for i in range(args.symbols))
    days = trading_days(date(2024, 3, 4), date(2024, 12, 31))[: args.days]
    start, end = days[0], days[-1]
    simulate(symbols[:1], start, start)  # warm imports and the calendar

    best_sim = best_floor = best_replay = float("inf")
    count = replayed = 0
    with tempfile.TemporaryDirectory(prefix="stockpipe-bench-sources-") as tmp:
        csv_path = Path(tmp) / "bars.csv"
        write_csv(csv_path, symbols, start, end)
        for i in range(args.rounds):
            count, seconds = simulate(symbols, start, end)
            best_sim = min(best_sim, seconds)
            best_floor = min(best_floor, dict_floor(count))
            started = time.perf_counter()
            replayed = sum(1 for _ in ReplaySource(SourceOptions(paths=(csv_path,))).bars())
            best_replay = min(best_replay, time.perf_counter() - started)
            sim_rate, replay_rate = count / best_sim, replayed / best_replay
            print(f"round {i + 1}: simulator {sim_rate:,.0f} bars/s, replay {replay_rate:,.0f} bars/s")

    markdown = "\n".join(
        [
            "## Sources (simulator generation, CSV replay)",
            "",
            f"{count:,} bars ({args.symbols} symbols x {len(days)} session(s) of 1-minute bars), "
            f"best of {args.rounds} rounds.",
            "",
            "| run | seconds | bars/s | goal |",
            "|---|---:|---:|---|",
            f"| floor: build {count:,} plain dicts | {best_floor:.2f} | {count / best_floor:,.0f} | — |",
            f"| `SimulatorSource` backfill | {best_sim:.2f} | {count / best_sim:,.0f} | "
            "195,000 bars well under 5 s |",
            f"| `ReplaySource` CSV (parse + validate + sort) | {best_replay:.2f} | "
            f"{replayed / best_replay:,.0f} | — |",
        ]
    )
    print(markdown)
    if not args.no_write:
        write_section("sources", markdown)


if __name__ == "__main__":
    main()
