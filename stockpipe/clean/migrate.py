"""Silver layout migration: daily bars out of ``stock_prices/trade_date=D`` into ``stock_prices_daily``.

Layout 1 (every lake before the daily dataset existed) kept daily bars in the intraday dataset,
one folder per trade date. Layout 2 (``layout.SILVER_LAYOUT_VERSION``) keeps them in
``stock_prices_daily/trade_month=YYYY-MM``. ``ensure_layout`` runs at the start of every clean and
quarantine replay (after a pending journal is finished): when the marker ``_state/layout.json``
says the lake is older, it moves the daily rows once, as one commit through the cleaning job's
journal, so a kill at any point is finished by the next run:

1. find the trade dates whose ``trade_date=D`` folder holds daily bars (one scan of the
   ``interval`` column); none: just write the marker (a lake with no bars at all gets it with
   its first commit);
2. stage each such day without its daily rows (a day left empty is removed instead) and each
   affected month of the daily dataset (its daily rows merged and deduplicated with any already
   there, as a clean run merges);
3. write the journal (swaps, removals, ``layout_version``), then apply it: the marker is written
   after every swap, so a lake is migrated exactly once.

The warehouse loader never loads a daily row from ``stock_prices`` (each dataset owns its
intervals), so nothing is loaded twice whichever side of the migration a load runs.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from stockpipe.clean import transforms
from stockpipe.clean.commit import apply_journal, attempt_staging, maybe_fault
from stockpipe.clean.state import Journal, load_layout_version, write_journal, write_layout_version
from stockpipe.contract.layout import DAILY_PRICES, INTRADAY_PRICES, SILVER_LAYOUT_VERSION

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from stockpipe.clean.bronze_reader import LakePaths
    from stockpipe.lake.fs import LakeFS


def ensure_layout(spark: SparkSession, fs: LakeFS, paths: LakePaths) -> bool:
    """Bring the lake to ``SILVER_LAYOUT_VERSION``.

    Returns True when the lake has no marker and no bars yet (a new lake, already in the current
    layout): the caller's next commit records the marker (``Journal.layout_version``), so a run
    that commits nothing leaves the lake untouched.
    """
    if load_layout_version(fs, paths.state) >= SILVER_LAYOUT_VERSION:
        return False
    prefix = f"{INTRADAY_PRICES.partition}="
    folders = [e.name for e in fs.list(paths.prices) if e.is_dir and e.name.startswith(prefix)]
    if not folders:
        return True
    rows = transforms.read_silver(spark, INTRADAY_PRICES, paths.prices, folders)
    daily = rows.where(transforms.in_dataset(DAILY_PRICES)).select("trade_date").distinct().collect()
    days = sorted(str(r[0]) for r in daily)
    if days:
        _move_daily_bars(spark, fs, paths, days)
    else:
        write_layout_version(fs, paths.state, SILVER_LAYOUT_VERSION)
    return False


def _move_daily_bars(spark: SparkSession, fs: LakeFS, paths: LakePaths, days: list[str]) -> None:
    run_id = "layout-" + hashlib.sha256("\n".join(days).encode()).hexdigest()[:16]
    staging = attempt_staging(paths.staging_root, run_id)
    day_folders = [f"{INTRADAY_PRICES.partition}={d}" for d in days]
    stored = transforms.read_silver(spark, INTRADAY_PRICES, paths.prices, day_folders)

    intraday_out = f"{staging}/{INTRADAY_PRICES.name}"
    rest = stored.where(~transforms.in_dataset(DAILY_PRICES))
    # already deduplicated: only regrouped, one file per remaining day
    (
        rest.repartition(max(1, min(len(days), 8)), INTRADAY_PRICES.partition)
        .write.mode("overwrite")
        .partitionBy(INTRADAY_PRICES.partition)
        .parquet(intraday_out)
    )
    kept = {e.name for e in fs.list(intraday_out) if e.is_dir}

    months = sorted({d[:7] for d in days})
    month_folders = [f"{DAILY_PRICES.partition}={m}" for m in months]
    daily_root = paths.dataset(DAILY_PRICES)
    present = {e.name for e in fs.list(daily_root)}
    old = [f for f in month_folders if f in present]
    existing = transforms.read_silver(spark, DAILY_PRICES, daily_root, old) if old else None
    daily = stored.where(transforms.in_dataset(DAILY_PRICES))
    merged = transforms.deduplicate(
        daily, existing, partitions=max(1, min(len(months), 8)), dataset=DAILY_PRICES
    )
    merged.write.mode("overwrite").partitionBy(DAILY_PRICES.partition).parquet(
        f"{staging}/{DAILY_PRICES.name}"
    )

    journal = Journal(
        run_id=run_id,
        staging=staging,
        partitions=[f"{INTRADAY_PRICES.name}/{f}" for f in day_folders if f in kept]
        + [f"{DAILY_PRICES.name}/{f}" for f in month_folders],
        quarantine_moves=[],
        ledger_add={},
        removed_partitions=[f"{INTRADAY_PRICES.name}/{f}" for f in day_folders if f not in kept],
        layout_version=SILVER_LAYOUT_VERSION,
    )
    maybe_fault("after_staging")
    write_journal(fs, paths.state, journal)
    maybe_fault("after_journal")
    apply_journal(fs, journal, silver_root=paths.silver, state_dir=paths.state)
