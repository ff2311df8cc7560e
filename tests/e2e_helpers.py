"""Helpers for end-to-end tests: run the CLI as a user would, snapshot gold for comparisons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

SYMBOLS = "AAPL,MSFT,NVDA"
DAY = "2024-03-04"  # a regular Monday session: 390 one-minute bars per symbol
RUN_ARGS = ["run", "--symbols", SYMBOLS, "--start", DAY, "--end", DAY]

# Columns that record *when* something happened rather than *what* the data is; two runs over
# the same input legitimately differ in them, so gold comparisons leave them out.
VOLATILE_COLUMNS = frozenset({"produced_at", "loaded_at", "kafka_ts", "ingested_at", "_loaded_at"})
GOLD_TABLES = (
    "dim_companies",
    "dim_date",
    "fact_stock",
    "mart_daily_ohlcv",
    "mart_daily_returns",
    "mart_moving_averages",
    "mart_sector_daily",
)


def stockpipe_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(
        STOCKPIPE_DATA_DIR=str(data_dir),
        STOCKPIPE_CONFIG=str(data_dir / "no-stockpipe.toml"),
        STOCKPIPE_KAFKA_PARTITIONS="2",
        STOCKPIPE_SPARK_MASTER="local[2]",
        STOCKPIPE_SPARK_SHUFFLE_PARTITIONS="2",
        STOCKPIPE_SPARK_MODE="classic",  # in-process Spark: no warm server left behind per test
        COLUMNS="200",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 900, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """``stockpipe <args>`` as a user runs it; ``popen`` goes to ``subprocess.run`` (e.g. ``preexec_fn``)."""
    return subprocess.run(
        [sys.executable, "-m", "stockpipe", *args],
        env=env,
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


def stop_embedded_broker(env: dict[str, str]) -> None:
    run_cli(["broker", "stop"], env, timeout=60)


def gold_snapshot(duckdb_path: Path, schema: str = "gold") -> dict[str, list[tuple[Any, ...]]]:
    """Every gold table's rows (volatile columns dropped), sorted, for exact comparison."""
    import duckdb

    snap: dict[str, list[tuple[Any, ...]]] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for table in GOLD_TABLES:
            cols = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table],
                ).fetchall()
            ]
            keep = [c for c in cols if c not in VOLATILE_COLUMNS]
            assert keep, f"gold table {schema}.{table} is missing"
            select = ", ".join(f'"{c}"' for c in keep)
            rows = con.execute(f'select {select} from "{schema}"."{table}"').fetchall()
            snap[table] = sorted(rows, key=repr)
    return snap
