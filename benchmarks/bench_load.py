"""Benchmark: ``run_load`` into DuckDB vs DuckDB's own ``INSERT … SELECT * FROM read_parquet(…)``.

Both read the same silver Parquet files (Spark layout: ``trade_date=…`` folders, partition column
in the path only) into a fresh database; best of N rounds each, in one run. ``run_load`` is timed
end to end (list and fingerprint partitions, one transaction with deletes, inserts and
load_history, state file), with DuckDB's native scan of local files and with the Arrow path
that non-local lakes use. Goal: ≥ 0.5 of the native rate.

    .venv/bin/python benchmarks/bench_load.py --rows 1500000 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_section
from stockpipe.settings import Settings
from stockpipe.warehouse import loader
from stockpipe.warehouse.loader import run_load
from stockpipe.warehouse.tables import create_table_sql, silver_stock_prices_schema

BARS_PER_DAY = 390  # 09:30-16:00, 1-minute bars


def _day(d: date, symbols: int, rng: np.random.Generator, offset: int) -> pa.Table:
    n = symbols * BARS_PER_DAY
    sym = np.repeat(np.array([f"S{i:04d}" for i in range(symbols)]), BARS_PER_DAY)
    open_utc = np.datetime64(f"{d.isoformat()}T14:30:00", "us")
    ts = open_utc + np.tile(np.arange(BARS_PER_DAY) * 60_000_000, symbols).astype("timedelta64[us]")
    close = np.round(100 + rng.normal(0, 1, n).cumsum() * 0.01, 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.001, n)), 2)
    high = np.maximum(open_, close) + 0.05
    low = np.minimum(open_, close) - 0.05
    utc = pa.timestamp("us", tz="UTC")
    columns = {
        "symbol": pa.array(sym),
        "interval": pa.array(["1min"] * n),
        "bar_ts": pa.array(ts, utc),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": rng.integers(0, 50_000, n),
        "source": pa.array(["simulator"] * n),
        "produced_at": pa.array(ts + np.timedelta64(61, "s"), utc),
        "schema_version": pa.array(np.ones(n, dtype=np.int32)),
        "is_regular_session": pa.array(np.ones(n, dtype=bool)),
        "kafka_topic": pa.array(["stock-prices"] * n),
        "kafka_partition": pa.array((np.arange(n) % 3).astype(np.int32)),
        "kafka_offset": np.arange(offset, offset + n, dtype=np.int64),
        "kafka_ts": pa.array(ts + np.timedelta64(62, "s"), utc),
        "ingest_date": pa.array([d] * n, pa.date32()),
        "bronze_file": pa.array(
            ["stock-prices+0123456789ab+00000+00000000000000000000+00000000000000000999.parquet"] * n
        ),
    }
    return pa.table(columns)


def write_lake(lake: Path, rows: int, seed: int = 1) -> list[Path]:
    """Silver stock_prices of about ``rows`` rows: 100 symbols, as many trading days as needed."""
    rng = np.random.default_rng(seed)
    symbols = 100
    days = max(1, round(rows / (symbols * BARS_PER_DAY)))
    files: list[Path] = []
    d, offset = date(2024, 1, 2), 0
    while len(files) < days:
        if d.weekday() < 5:
            folder = lake / "silver" / "stock_prices" / f"trade_date={d.isoformat()}"
            folder.mkdir(parents=True)
            path = folder / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
            table = _day(d, symbols, rng, offset)
            pq.write_table(table, path, compression="snappy")
            files.append(path)
            offset += table.num_rows
        d += timedelta(days=1)
    return files


def native(files: list[Path], db: Path) -> tuple[int, float]:
    """Fresh table with the silver DDL, then INSERT … SELECT * FROM read_parquet(…)."""
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    con.execute(create_table_sql("bench", silver_stock_prices_schema(), "duckdb", lambda n: f'"{n}"'))
    started = time.perf_counter()
    con.execute(
        "insert into bench by name select * from read_parquet(?, hive_partitioning = true)",
        [[str(f) for f in files]],
    )
    seconds = time.perf_counter() - started
    rows = con.execute("select count(*) from bench").fetchone()
    con.close()
    return int(rows[0]) if rows else 0, seconds


def stockpipe_load(lake: Path, data_dir: Path, *, arrow_path: bool = False) -> tuple[int, float]:
    """``run_load`` end to end; ``arrow_path`` disables DuckDB's native scan (the path remote lakes take)."""
    settings = Settings(data_dir=data_dir, lake={"root": lake.as_uri()}, _env_file=None)
    saved = loader._native_for
    if arrow_path:
        loader._native_for = lambda *_a, **_k: None
    try:
        result = run_load(settings)
    finally:
        loader._native_for = saved
    return result.rows_loaded, result.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=1_500_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stockpipe-bench-load-"))
    try:
        files = write_lake(work / "lake", args.rows)
        size = sum(f.stat().st_size for f in files)
        best = {"native": float("inf"), "load": float("inf"), "arrow": float("inf")}
        rows: dict[str, int] = {}
        for i in range(args.rounds):
            rows["native"], s = native(files, work / f"native-{i}.duckdb")
            best["native"] = min(best["native"], s)
            rows["load"], s = stockpipe_load(work / "lake", work / f"data-{i}")
            best["load"] = min(best["load"], s)
            rows["arrow"], s = stockpipe_load(work / "lake", work / f"arrow-{i}", arrow_path=True)
            best["arrow"] = min(best["arrow"], s)
            print(f"round {i + 1}: " + ", ".join(f"{k} {rows[k] / best[k]:,.0f} rows/s" for k in best))
        assert rows["native"] == rows["load"] == rows["arrow"], rows
        rate = {k: rows[k] / best[k] for k in best}
        n = rows["load"]
        markdown = "\n".join(
            [
                "## Load (silver Parquet → DuckDB raw.stock_prices)",
                "",
                f"{n:,} rows in {len(files)} `trade_date` partitions ({size / 2**20:,.0f} MiB snappy "
                f"Parquet, 100 symbols x 390 one-minute bars per day), best of {args.rounds} rounds, each "
                "into a fresh database file. Native: `insert into … by name select * from "
                "read_parquet([files], hive_partitioning = true)` into a table with the same DDL. "
                "`run_load` is timed end to end "
                "(listing, fingerprints, one transaction with delete + insert + load_history, load state); "
                "for a local lake DuckDB scans the files itself (`insert … select cast(…) from "
                "read_parquet(…)`), the Arrow path (pyarrow read + normalise, then insert from Arrow) is "
                "what non-local lakes (hdfs://, s3://) use.",
                "",
                "| run | seconds | rows/s | vs native | goal |",
                "|---|---:|---:|---:|---|",
                f"| DuckDB `INSERT … SELECT * FROM read_parquet(…)` | {best['native']:.2f} "
                f"| {rate['native']:,.0f} | — | — |",
                f"| stockpipe `run_load` (DuckDB, local lake) | {best['load']:.2f} | {rate['load']:,.0f} "
                f"| {rate['load'] / rate['native']:.0%} | ≥ 50% |",
                f"| stockpipe `run_load` (DuckDB, Arrow path) | {best['arrow']:.2f} | {rate['arrow']:,.0f} "
                f"| {rate['arrow'] / rate['native']:.0%} | |",
            ]
        )
        print(markdown)
        if not args.no_write:
            write_section("load", markdown)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
