"""The clean step: new bronze files → silver ``stock_prices`` / ``stock_prices_daily`` + ``quarantine``.

``run_clean`` is the I/O around the pure functions of ``transforms``:

1. over Spark Connect, stop what a killed run's client left running on the server
   (``clean.orphans``); finish a previous run's commit if its journal is still there
   (``commit.apply_journal``) and drop any other leftover staging (every attempt stages in a
   folder of its own: ``commit.attempt_staging``); move a lake written before the daily
   dataset existed to the current layout once (``clean.migrate``);
2. list the bronze manifest and subtract the ledger: only bronze files never cleaned are read,
   all in ONE Spark read;
3. parse, normalise and validate the batch ONCE, onto the executors' local disks (the raw
   payload kept only for failed records), counting everything on the way (a Spark
   ``Observation``: records, reasons, affected partitions of each bar dataset): a small batch is
   checkpointed, a large one cached (``_on_local_disk`` says why); the quarantine rows are written
   to staging (a small batch: only when a record failed);
4. pass 2 reads the good rows from there; per bar dataset (intraday bars by ``trade_date``,
   daily bars by ``trade_month``: ``contract.layout.PRICE_DATASETS``) it reads the existing
   silver rows of the affected partitions, deduplicates them together (one shuffle,
   hash-partitioned by the partition column so each folder is written by one task) and writes
   the affected partitions to staging, counting the existing and the written rows on the way
   (``Observation``s, no counting job). Even for a small batch keeping the parsed batch pays:
   the plan of the wide parse is what costs (analysing and optimising it), and pass 2 skips it;
5. write the journal, then swap partitions in, move quarantine files to their deterministic names
   (``part-<run id>-<n>.parquet``; the run id is a hash of the bronze file names) and add the
   files to the ledger.

Accounting (exact, per run): ``bronze_records = silver_rows_added + quarantined +
duplicates_dropped``, where ``silver_rows_added`` is the change of the silver row count and
``duplicates_dropped`` counts the rows that lost deduplication (new or previously stored).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stockpipe.clean import transforms
from stockpipe.clean.bronze_reader import LakePaths, new_manifest_entries, read_bronze
from stockpipe.clean.commit import apply_journal, attempt_staging, maybe_fault
from stockpipe.clean.companies import read_companies, sync_companies, write_companies
from stockpipe.clean.migrate import ensure_layout
from stockpipe.clean.orphans import owned_session
from stockpipe.clean.rules import ALL_REASONS
from stockpipe.clean.session import (
    apply_job_conf,
    get_spark,
    is_connect,
    lake_uri,
    observe_batch,
    session_url,
)
from stockpipe.clean.sessions import SessionCalendar, session_calendar
from stockpipe.clean.state import Journal, load_journal, load_ledger, write_journal
from stockpipe.contract.layout import PRICE_DATASETS, SILVER_LAYOUT_VERSION
from stockpipe.lake.fs import LakeFS
from stockpipe.lake.manifest import ManifestEntry
from stockpipe.sources.companies import Company, reference_path

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import Column, DataFrame, Observation, SparkSession

    from stockpipe.settings import Settings

__all__ = ["CleanResult", "ProgressFn", "new_manifest_entries", "read_bronze", "run_clean", "write_companies"]

ProgressFn = Callable[[str, int, int], None]
"""``on_progress(phase, done, total)``; phases: recover, manifest, clean, write, swap, companies."""


@dataclass
class CleanResult:
    """What one ``run_clean`` did (all zeros when there was no new bronze file)."""

    bronze_files: int = 0
    bronze_records: int = 0
    silver_rows_written: int = 0
    silver_rows_added: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    partitions_rewritten: list[str] = field(default_factory=list)  # paths under silver/
    seconds: float = 0.0
    companies_rows: int | None = None
    recovered: bool = False
    run_id: str | None = None
    orphans_stopped: int = 0  # operations a killed run had left running on the Connect server

    def summary(self) -> list[tuple[str, Any]]:
        """Rows for the CLI summary table."""
        rows: list[tuple[str, Any]] = [
            ("bronze files processed", self.bronze_files),
            ("bronze records processed", self.bronze_records),
            ("silver rows written (rewritten partitions)", self.silver_rows_written),
            ("silver rows added", self.silver_rows_added),
            ("duplicates dropped", self.duplicates_dropped),
            ("quarantined", self.quarantined),
        ]
        rows += [(f"  quarantined: {rule}", n) for rule, n in sorted(self.by_rule.items())]
        rows.append(("partitions rewritten", len(self.partitions_rewritten)))
        if self.companies_rows is not None:
            rows.append(("companies rows written", self.companies_rows))
        if self.recovered:
            rows.append(("interrupted run completed first", "yes"))
        if self.orphans_stopped:
            rows.append(("Spark operations of a killed run stopped", self.orphans_stopped))
        rows.append(("seconds", f"{self.seconds:.1f}"))
        return rows


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


@dataclass(frozen=True)
class Reference:
    """The companies reference a cleaning run validates against."""

    csv: Path
    companies: list[Company]
    known: frozenset[str] | None  # None: unknown symbols are kept (spark.unknown_symbols=keep)

    @property
    def exchanges(self) -> dict[str, str | None]:
        return {c.symbol: c.exchange for c in self.companies}


def load_reference(settings: Settings, csv: Path | None = None) -> Reference:
    """``csv``, else the reference (``sources.companies.reference_path``), read once."""
    path = csv or reference_path(settings)
    companies = read_companies(path)
    keep = settings.spark.unknown_symbols != "quarantine"
    return Reference(path, companies, None if keep else frozenset(c.symbol for c in companies))


def recover(fs: LakeFS, paths: LakePaths) -> bool:
    """Finish a commit a killed run left in its journal and clear staging; True if there was one."""
    journal = load_journal(fs, paths.state)
    if journal is not None:
        apply_journal(fs, journal, silver_root=paths.silver, state_dir=paths.state)
    fs.delete(paths.staging_root)
    return journal is not None


def run_clean(
    settings: Settings,
    *,
    spark: SparkSession | None = None,
    on_progress: ProgressFn | None = None,
    now: datetime | None = None,
    companies_csv: Path | None = None,
    with_companies: bool = True,
) -> CleanResult:
    """Clean every bronze file not cleaned yet into silver; see the module docstring.

    ``now`` fixes the run's clock (plausible ``bar_ts`` range, ``quarantined_at``); with
    ``with_companies`` the companies CSV (``companies_csv``, else the reference:
    ``sources.companies.reference_path``) is converted to ``silver/companies`` too when it changed. With
    ``settings.spark.unknown_symbols == "quarantine"`` (the default) a bar whose symbol that CSV
    does not list is quarantined as ``unknown_symbol``.
    """
    started = time.monotonic()
    progress = on_progress or _noop
    ref = load_reference(settings, companies_csv)
    session = spark or get_spark(settings)
    apply_job_conf(session)
    paths = LakePaths(lake_uri(settings), settings.kafka.topic)
    fs = LakeFS(paths.root, settings.lake.storage_options)
    try:
        with owned_session(fs, paths.state, session, session_url(settings, session)) as stopped:
            progress("recover", 0, 1)
            recovered = recover(fs, paths)
            new_lake = ensure_layout(session, fs, paths)
            progress("recover", 1, 1)
            ledger = load_ledger(fs, paths.state)
            entries = new_manifest_entries(fs, paths, set(ledger.files), progress)
            result = CleanResult(recovered=recovered)
            if entries:
                calendar = session_calendar(session, ref.exchanges)
                at = now or datetime.now(UTC)
                known = ref.known
                result = _clean_batch(session, fs, paths, entries, at, progress, known, calendar, new_lake)
                result.recovered = recovered
            if with_companies:
                progress("companies", 0, 1)
                result.companies_rows = sync_companies(session, fs, paths.root, ref.csv)
                progress("companies", 1, 1)
        result.orphans_stopped = stopped
    finally:
        fs.close()
    result.seconds = time.monotonic() - started
    return result


def _clean_batch(
    spark: SparkSession,
    fs: LakeFS,
    paths: LakePaths,
    entries: list[ManifestEntry],
    now: datetime,
    progress: ProgressFn,
    known_symbols: frozenset[str] | None,
    calendar: SessionCalendar,
    new_lake: bool = False,
) -> CleanResult:
    from pyspark.sql import functions as F

    names = sorted(e.file for e in entries)
    run_id = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    staging = attempt_staging(paths.staging_root, run_id)
    expected = sum(e.records for e in entries)
    progress("clean", 0, expected)

    failed = F.size(F.col("failed_rules")) > 0
    validated = transforms.clean(
        read_bronze(spark, [paths.bronze(e) for e in sorted(entries, key=lambda e: e.file)]),
        now=now,
        known_symbols=known_symbols,
        calendar=calendar,
    )
    # Pass 1 puts the validated batch on the executors' local disks and counts everything on
    # the way (records, bad records, reasons, affected partitions), writing the quarantine; the
    # good rows are written from there. Parsing is most of the cost, so parsing once and keeping
    # the result on local disk beats parsing twice (1M bars: about 12 s instead of 15 s, measured).
    per_dataset = [
        metric
        for ds in PRICE_DATASETS
        for metric in (
            F.collect_set(F.when(~failed & transforms.in_dataset(ds), transforms.partition_value(ds))).alias(
                f"partitions_{ds.name}"
            ),
            F.sum((~failed & transforms.in_dataset(ds)).cast("long")).alias(f"rows_{ds.name}"),
        )
    ]
    counts = [
        F.count(F.lit(1)).alias("records"),
        F.sum(failed.cast("long")).alias("bad"),
        *per_dataset,
        *(F.sum(F.array_contains("failed_rules", r).cast("long")).alias(r) for r in ALL_REASONS),
    ]
    quarantine = QuarantineTarget(staging, now, n_ingest=len({e.ingest_date for e in entries}))
    progress("write", 0, 2)
    narrow = transforms.narrow_for_split(validated)
    with _on_local_disk(narrow, counts, quarantine, records=expected) as (batch, metrics):
        bronze_records = int(metrics["records"])
        quarantined = int(metrics["bad"] or 0)
        touched = {ds.name: sorted(str(v) for v in metrics[f"partitions_{ds.name}"]) for ds in PRICE_DATASETS}
        new_rows = {ds.name: int(metrics[f"rows_{ds.name}"] or 0) for ds in PRICE_DATASETS}
        by_rule = {r: int(metrics[r]) for r in ALL_REASONS if metrics[r]}
        progress("clean", bronze_records, max(expected, bronze_records))
        progress("write", 1, 2)
        existing_rows, written, parts = _write_silver(spark, fs, paths, batch, touched, staging, new_rows)
        progress("write", 2, 2)
    good_rows = bronze_records - quarantined

    moves = _quarantine_moves(fs, paths, staging, run_id)
    journal = Journal(
        run_id=run_id,
        staging=staging,
        partitions=parts,
        quarantine_moves=moves,
        ledger_add={e.file: e.records for e in entries},
        layout_version=SILVER_LAYOUT_VERSION if new_lake else None,
    )
    maybe_fault("after_staging")
    write_journal(fs, paths.state, journal)
    maybe_fault("after_journal")
    apply_journal(
        fs,
        journal,
        silver_root=paths.silver,
        state_dir=paths.state,
        on_swap=lambda done, total: progress("swap", done, total),
    )
    return CleanResult(
        bronze_files=len(entries),
        bronze_records=bronze_records,
        silver_rows_written=written,
        silver_rows_added=written - existing_rows,
        quarantined=quarantined,
        duplicates_dropped=good_rows + existing_rows - written,
        by_rule=by_rule,
        partitions_rewritten=parts,
        run_id=run_id,
    )


@dataclass(frozen=True)
class QuarantineTarget:
    """Where and how a batch's failed rows are staged (``<staging>/quarantine``)."""

    staging: str
    now: datetime
    n_ingest: int  # ingest dates in the batch: one task (one file) per ``ingest_date`` folder


SMALL_BATCH_MAX_RECORDS = 100_000
"""Batches up to this many bronze records are checkpointed, larger ones cached: ``_on_local_disk``."""
BATCH_COUNTS = "clean"  # the name of the Observation that counts a batch as it is stored


@contextmanager
def _on_local_disk(
    df: DataFrame, counts: list[Column], quarantine: QuarantineTarget, *, records: int
) -> Iterator[tuple[DataFrame, dict[str, Any]]]:
    """``df`` on the executors' local disks for the block, with its ``counts``; its failed rows staged.

    ``records`` (bronze records in the batch) chooses how:

    * a small batch (``SMALL_BATCH_MAX_RECORDS``: a day of a few symbols, a stream's cycle) is
      **checkpointed** (``localCheckpoint``, ``DISK_ONLY``) and counted by an ``Observation`` on
      the way (``_checkpoint_counts``), and the quarantine is written only when a record failed. Everything
      after the checkpoint plans over the stored rows instead of the wide parse: over Spark
      Connect each later operation would otherwise send, convert and analyse the parse again, and
      match it against the cache (a warm 7,800-bar clean: about 1.1 s instead of 1.75 s,
      measured). Most small batches have no failed record, and writing an empty quarantine
      still plans, shuffles and commits. The checkpoint's blocks are released when its frame is
      dropped: over Connect pyspark then removes the server's reference, and Spark's
      ``ContextCleaner`` deletes the blocks once the JVM has collected the RDD (a 2 s
      ``stream`` for 150 s held the blocks of 10 to 17 recent cycles, 0.6 MB, not growing);
    * a larger batch is **cached** (``persist(DISK_ONLY)``, dropped at the end of the block)
      and counted by an ``Observation`` in the pass that fills the cache, which writes the
      quarantine too: a second pass over a large batch costs more than the plans (1M records
      with 4% failed: about 2 s more, measured). A checkpoint would also lose the batch with an
      executor, where a cache recomputes the lost blocks.
    """
    from pyspark import StorageLevel
    from pyspark.sql import Observation

    obs = Observation(BATCH_COUNTS)
    observed = observe_batch(df, obs, *counts)
    if records <= SMALL_BATCH_MAX_RECORDS:
        batch = observed.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
        metrics = _checkpoint_counts(observed, obs) or batch.agg(*counts).collect()[0].asDict()
        if metrics["bad"]:
            _write_quarantine(batch, quarantine)
        yield batch, metrics
        return
    cached = observed.persist(StorageLevel.DISK_ONLY)
    try:
        _write_quarantine(cached, quarantine)
        yield cached, dict(obs.get)
    finally:
        cached.unpersist()


def _checkpoint_counts(observed: DataFrame, obs: Observation) -> dict[str, Any] | None:
    """What ``obs`` counted while ``observed`` was checkpointed; None when it did not report.

    A classic session hands the counts to the ``Observation``. pyspark's Spark Connect client
    does not (its ``localCheckpoint`` passes no observations along, and ``obs.get`` is then
    empty), but keeps them in the frame's ``executionInfo``. The caller counts with a query of
    its own when neither has them.
    """
    if not is_connect(observed.sparkSession):
        return dict(obs.get) or None
    info = observed.executionInfo
    found = dict(info.flows).get(BATCH_COUNTS) if info is not None else None
    return dict(found) if found else None


def _write_quarantine(batch: DataFrame, target: QuarantineTarget) -> None:
    """Write the failed rows of ``batch`` to ``<staging>/quarantine``, by ``ingest_date``."""
    from pyspark.sql import functions as F

    _, bad = transforms.split(batch, quarantined_at=target.now)
    # quarantined_at is added after the shuffle, so the (heavy) parse stage's generated code does
    # not change with the clock and a long-running process reuses it warm.
    (
        bad.select(*(c for c in transforms.QUARANTINE_COLUMNS if c != "quarantined_at"))
        .repartition(target.n_ingest, "ingest_date")
        .select(
            *(
                F.lit(target.now).cast("timestamp").alias(c) if c == "quarantined_at" else F.col(c)
                for c in transforms.QUARANTINE_COLUMNS
            )
        )
        .write.mode("overwrite")
        .partitionBy("ingest_date")
        .parquet(f"{target.staging}/quarantine")
    )


def _write_silver(
    spark: SparkSession,
    fs: LakeFS,
    paths: LakePaths,
    batch: DataFrame,
    touched: dict[str, list[str]],
    staging: str,
    new_rows: dict[str, int] | None = None,
) -> tuple[int, int, list[str]]:
    """Deduplicate the good rows with silver's rows of the touched partitions; write them to staging.

    ``touched`` maps each bar dataset's name to the partition values (trade dates, months) its
    good rows fall in. Each dataset is merged and written on its own (``<staging>/<dataset>``),
    so an intraday batch never reads or rewrites a daily partition and vice versa. Returns
    ``(existing silver rows of those partitions, rows written, partitions staged)``, the
    partitions as paths under ``silver/`` (``stock_prices/trade_date=…``,
    ``stock_prices_daily/trade_month=…``). Both counts come from the Spark jobs that write
    (``Observation``s), not from extra counting jobs.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    good, _ = transforms.split(batch)
    # one task per folder at most (one file per folder); at least 8 tasks when there are enough
    # folders, so each task's sort stays small (measured ~10% faster than 2 tasks on 2 cores);
    # but no more than one per ROWS_PER_TASK new rows (``new_rows``): one symbol's 20-year daily
    # history is 5,000 rows in 240 month folders, which one task writes faster than eight
    shuffle = int(spark.conf.get("spark.sql.shuffle.partitions") or "8")
    existing_rows, written, parts = 0, 0, []
    for ds in PRICE_DATASETS:
        values = touched.get(ds.name) or []
        if not values:
            continue
        root = paths.dataset(ds)
        folders = [f"{ds.partition}={v}" for v in values]
        present = {e.name for e in fs.list(root)}
        old = [f for f in folders if f in present]
        existing, seen = None, None
        if old:
            seen = Observation(f"silver_existing_{ds.name}")
            existing = observe_batch(
                transforms.read_silver(spark, ds, root, old), seen, F.count(F.lit(1)).alias("rows")
            )
        merged = transforms.deduplicate(
            good.where(transforms.in_dataset(ds)),
            existing,
            partitions=_tasks(len(values), max(shuffle, 8), None if new_rows is None else new_rows[ds.name]),
            dataset=ds,
        )
        # counted after the shuffle, in the writing stage itself: each written row once
        out = Observation(f"silver_written_{ds.name}")
        merged = observe_batch(merged, out, F.count(F.lit(1)).alias("rows"))
        merged.write.mode("overwrite").partitionBy(ds.partition).parquet(f"{staging}/{ds.name}")
        existing_rows += int(seen.get["rows"]) if seen is not None else 0
        written += int(out.get["rows"])
        parts += [f"{ds.name}/{f}" for f in folders]
    return existing_rows, written, parts


ROWS_PER_TASK = 100_000


def _tasks(folders: int, most: int, rows: int | None) -> int:
    """Tasks that merge and write a dataset's ``folders`` partitions (see ``_write_silver``)."""
    if rows is not None:
        most = min(most, -(-rows // ROWS_PER_TASK))
    return max(1, min(folders, most))


def _quarantine_moves(fs: LakeFS, paths: LakePaths, staging: str, run_id: str) -> list[tuple[str, str]]:
    moves: list[tuple[str, str]] = []
    for folder in fs.list(f"{staging}/quarantine"):
        if not folder.is_dir or not folder.name.startswith("ingest_date="):
            continue
        files = [f for f in fs.list(folder.uri) if f.name.endswith(".parquet") and not f.name.startswith(".")]
        for i, f in enumerate(files):
            moves.append((f.uri, f"{paths.quarantine}/{folder.name}/part-{run_id}-{i:05d}.parquet"))
    return moves
