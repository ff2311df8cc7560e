"""Benchmark: long daily histories vs intraday bars through the clean and load steps, in one run.

    .venv/bin/python benchmarks/bench_daily.py            # 500 symbols x 20 years daily vs 1M intraday
    .venv/bin/python benchmarks/bench_daily.py --small    # 50 symbols x 2 years vs 100k: checks the script

Daily bars live in ``silver/stock_prices_daily/trade_month=YYYY-MM`` (one folder per month),
intraday bars in ``silver/stock_prices/trade_date=YYYY-MM-DD``. On one warm local Spark session
(``local[*]``, warmed up by a small run of each shape first), each on a fresh lake:

* **daily history**: ``run_clean`` of N symbols x Y years of daily bars (about 252 sessions a
  year; one replayed file per symbol, written by the consumer in 50,000-record bronze files);
* **intraday**: ``run_clean`` of 1M 1-minute bars (``bench_clean``'s generator, 50 symbols);
* **one symbol**: ``run_clean`` of one symbol's Y-year daily file, end to end (goal ≤ 10 s);
* **cycles** on the daily-history lake: one new session of daily bars for every symbol (rewrites
  one month), and 5,000 intraday bars of one day (never touches the daily dataset);
* **load**: ``run_load`` of each lake into a fresh DuckDB file (the daily dataset is
  ``trade_month`` partitions; the intraday one ``trade_date`` partitions).

Both bronze sets have the same fault mix: ~4% bad records of four kinds, ~0.5% exact
re-deliveries. Goals (issue 16): daily rows/s ≥ intraday rows/s; one symbol ≤ 10 s; the load
step does not regress. Results go to ``docs/benchmarks.md`` (section ``daily``) and stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_section
from benchmarks.bench_clean import Timing, faulty_bar, local_spark
from benchmarks.bench_clean import generate as generate_intraday
from benchmarks.bench_clean import write_bronze_file as write_bronze
from stockpipe.contract.layout import (
    BatchId,
    cluster_tag,
)

TOPIC = "stock-prices"
PER_FILE = 50_000
SESSIONS_PER_YEAR = 252


def sessions(years: int, end: date = date(2024, 12, 31)) -> list[date]:
    """Weekdays of the last ``years`` years up to ``end`` (~252 a year after holidays: close enough)."""
    start = end.replace(year=end.year - years) + timedelta(days=1)
    days, d = [], start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def _daily_bar(i: int, symbol: str, day: date, produced: str) -> bytes:
    """One daily bar as JSON, with ``bench_clean``'s fault mix (by ``i % 97``)."""
    base = 20.0 + (i % 991) * 0.5
    return faulty_bar(
        i, symbol, "1day", f"{day.isoformat()}T00:00:00-05:00", base,
        base + ((i * 7919) % 21 - 10) * 0.05, spread=0.5, volume=100_000 + (i % 5_000_000),
        source="replay", produced=produced,
    )  # fmt: skip


def write_bronze_file(lake: Path, values: list[bytes], keys: list[bytes], first: int, ingest: date) -> Path:
    """One bronze file (consumer layout) and its manifest entry, stamped at ``ingest``'s midnight."""
    batch = BatchId(TOPIC, cluster_tag("bench-daily"), 0, first, first + len(values) - 1)
    kafka_ts = datetime.combine(ingest, datetime.min.time(), UTC)
    return write_bronze(lake, values, keys, batch, kafka_ts, "bench-daily")


def generate_daily(
    lake: Path,
    symbols: list[str],
    days: list[date],
    *,
    first_offset: int = 0,
    ingest: date = date(2025, 1, 2),
) -> int:
    """Daily bars of ``symbols`` over ``days``, symbol after symbol (a replay sends file by file)."""
    produced = f"{ingest.isoformat()}T12:00:00Z"
    values: list[bytes] = []
    keys: list[bytes] = []
    offset = first_offset
    total = 0
    i = first_offset
    for symbol in symbols:
        for day in days:
            values.append(_daily_bar(i, symbol, day, produced))
            keys.append(symbol.encode())
            if i % 199 == 198 and len(values) > 1:  # an exact re-delivery of the previous record
                values[-1], keys[-1] = values[-2], keys[-2]
            i += 1
            if len(values) == PER_FILE:
                write_bronze_file(lake, values, keys, offset, ingest)
                offset, total = offset + len(values), total + len(values)
                values, keys = [], []
    if values:
        write_bronze_file(lake, values, keys, offset, ingest)
        total += len(values)
    return total


def settings_for(lake: Path) -> Any:
    from stockpipe.settings import Settings

    return Settings(
        data_dir=lake.parent, lake={"root": lake.as_uri()}, spark={"unknown_symbols": "keep"}, _env_file=None
    )


def clean(spark: Any, lake: Path, rows: int, name: str) -> tuple[Timing, Any]:
    from stockpipe.clean.job import run_clean

    started = time.perf_counter()
    result = run_clean(settings_for(lake), spark=spark, with_companies=False)
    seconds = time.perf_counter() - started
    note = (
        f"silver {result.silver_rows_written:,}, quarantined {result.quarantined:,}, "
        f"duplicates {result.duplicates_dropped:,}, {len(result.partitions_rewritten)} partitions"
    )
    return Timing(name, rows, seconds, note), result


def load(lake: Path, name: str) -> Timing:
    from stockpipe.warehouse.loader import run_load

    result = run_load(settings_for(lake))
    return Timing(name, result.rows_loaded, result.seconds, f"{result.partitions_loaded} partitions")


def folders(lake: Path, dataset: str) -> int:
    root = lake / "silver" / dataset
    return sum(1 for p in root.iterdir() if p.is_dir()) if root.exists() else 0


def warm_up(spark: Any, workdir: Path) -> None:
    """Small runs of both shapes first (clean and load): JIT compilation and first imports are not
    what this measures."""
    root = workdir / "warmup"
    generate_daily(root / "daily" / "lake", [f"W{i:03d}" for i in range(20)], sessions(2))
    clean(spark, root / "daily" / "lake", 0, "warm-up")
    load(root / "daily" / "lake", "warm-up")
    generate_intraday(root / "intraday" / "lake", 100_000)
    clean(spark, root / "intraday" / "lake", 0, "warm-up")
    load(root / "intraday" / "lake", "warm-up")
    shutil.rmtree(root, ignore_errors=True)


def run(symbols: int, years: int, intraday_rows: int, workdir: Path, driver_memory: str) -> str:
    spark = local_spark(driver_memory, "bench-daily")
    days = sessions(years)
    names = [f"D{i:04d}" for i in range(symbols)]
    cleans: list[Timing] = []
    others: list[Timing] = []
    loads: list[Timing] = []
    try:
        warm_up(spark, workdir)
        # daily history
        daily_lake = workdir / "daily" / "lake"
        t0 = time.perf_counter()
        daily_rows = generate_daily(daily_lake, names, days)
        print(f"[daily] {daily_rows:,} bronze records in {time.perf_counter() - t0:.0f}s", flush=True)
        daily, _ = clean(spark, daily_lake, daily_rows, f"daily: {symbols} symbols x {years} years")
        daily.note += f"; {folders(daily_lake, 'stock_prices_daily')} month folders"
        cleans.append(daily)
        print(f"[daily] {daily.seconds:.1f}s {daily.rate:,.0f} rows/s", flush=True)
        # intraday
        intraday_lake = workdir / "intraday" / "lake"
        generate_intraday(intraday_lake, intraday_rows)
        intraday, _ = clean(spark, intraday_lake, intraday_rows, f"intraday: {intraday_rows:,} 1-minute bars")
        intraday.note += f"; {folders(intraday_lake, 'stock_prices')} day folders"
        cleans.append(intraday)
        print(f"[intraday] {intraday.seconds:.1f}s {intraday.rate:,.0f} rows/s", flush=True)
        # one symbol's history, end to end
        single_lake = workdir / "single" / "lake"
        single_rows = generate_daily(single_lake, ["ONE"], days)
        single, _ = clean(spark, single_lake, single_rows, f"one symbol: {years} years of daily bars")
        single.note += f"; {folders(single_lake, 'stock_prices_daily')} month folders"
        others.append(single)
        print(f"[single] {single.seconds:.1f}s", flush=True)
        # cycles on the daily-history lake
        next_day = days[-1] + timedelta(days=3)
        new = generate_daily(daily_lake, names, [next_day], first_offset=10**9, ingest=date(2025, 1, 3))
        cycle, _ = clean(spark, daily_lake, new, "daily cycle: one new session for every symbol")
        others.append(cycle)
        intraday_new = _intraday_cycle(daily_lake, next_day)
        icycle, _ = clean(spark, daily_lake, intraday_new, "intraday cycle on the daily lake: 5,000 bars")
        others.append(icycle)
        # load
        loads.append(load(daily_lake, "load: daily-history lake (+ the two cycles)"))
        loads.append(load(intraday_lake, "load: intraday lake"))
        loads.append(load(single_lake, "load: one symbol's history"))
        for t in loads:
            print(f"[load] {t.name}: {t.seconds:.1f}s {t.rate:,.0f} rows/s", flush=True)
    finally:
        spark.stop()
    return _report(cleans, others, loads, daily, intraday, single)


def _intraday_cycle(lake: Path, day: date) -> int:
    """5,000 1-minute bars of 50 symbols on ``day`` (a stream cycle's worth), appended to bronze."""
    values, keys = [], []
    produced = f"{day.isoformat()}T21:00:00Z"
    for s in range(50):
        for m in range(100):
            minute = 570 + m
            ts = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00-05:00"
            doc = (
                f'{{"symbol":"I{s:03d}","interval":"1min","bar_ts":"{ts}","open":10.0,"high":10.5,'
                f'"low":9.5,"close":10.2,"volume":100,"source":"simulator","produced_at":"{produced}",'
                f'"schema_version":1}}'
            )
            values.append(doc.encode())
            keys.append(f"I{s:03d}".encode())
    write_bronze_file(lake, values, keys, 2 * 10**9, day)
    return len(values)


def _report(
    cleans: list[Timing],
    others: list[Timing],
    loads: list[Timing],
    daily: Timing,
    intraday: Timing,
    single: Timing,
) -> str:
    lines = [
        "| step | rows | seconds | rows/s | note |",
        "|---|---:|---:|---:|---|",
    ]
    for t in [*cleans, *others, *loads]:
        lines.append(f"| {t.name} | {t.rows:,} | {t.seconds:.1f} | {t.rate:,.0f} | {t.note} |")
    ratio = daily.rate / intraday.rate if intraday.rate else 0.0
    goals = [
        f"- daily / intraday clean rows/s = {ratio:.2f} (goal ≥ 1): {'met' if ratio >= 1 else 'NOT met'}",
        f"- one symbol's history cleans in {single.seconds:.1f} s (goal ≤ 10 s): "
        f"{'met' if single.seconds <= 10 else 'NOT met'} (before the daily dataset: 2,816 bars took "
        "51.5 s, one folder per day — issue 16)",
    ]
    avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n".join(
        [
            *lines,
            "",
            *goals,
            "",
            f"Load average (1, 5, 15 min) at the end: {avg} (other processes share the CPUs).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--symbols", type=int, default=None, help="symbols of the daily history (default 500)"
    )
    parser.add_argument("--years", type=int, default=None, help="years of daily bars per symbol (default 20)")
    parser.add_argument("--intraday-rows", type=int, default=None, help="intraday bars (default 1M)")
    parser.add_argument(
        "--small", action="store_true", help="50 symbols x 2 years vs 100k: checks the script"
    )
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-report", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    sizes = (50, 2, 100_000) if args.small else (500, 20, 1_000_000)  # explicit flags win
    args.symbols = args.symbols or sizes[0]
    args.years = args.years or sizes[1]
    args.intraday_rows = args.intraday_rows or sizes[2]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-daily-"))
    try:
        body = run(args.symbols, args.years, args.intraday_rows, workdir, args.driver_memory)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    size = f"`--symbols {args.symbols} --years {args.years} --intraday-rows {args.intraday_rows}`"
    small = " **Small sizes (a check of the script, not the goal sizes).**" if args.small else ""
    text = (
        "## Daily histories (clean and load, daily vs intraday)\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_daily.py` ({size}).{small} One warm `local[*]` "
        "Spark session (a small run of each shape first), a fresh lake per clean; bronze in "
        "50,000-record files with ~4% bad records and ~0.5% re-deliveries; daily bars land in "
        "`stock_prices_daily/trade_month=YYYY-MM`, intraday bars in `stock_prices/trade_date=…`; "
        "loads into a fresh DuckDB file.\n\n"
        f"{body}\n"
    )
    print(text)
    if not args.no_report:
        write_section("daily", text)


if __name__ == "__main__":
    main()
