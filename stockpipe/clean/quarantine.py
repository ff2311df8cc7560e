"""Quarantine operations: what is quarantined and why, and replaying it after the cause is fixed.

- ``list_quarantine`` (no Spark): counts by rule and samples with the raw payload and its origin
  — Kafka topic/partition/offset for records the cleaning job quarantined, file/line for rows a
  lenient replay could not parse (rule ``unparsable_row``; those files carry ``source_file`` /
  ``source_line`` / ``detail`` and no Kafka lineage).
- ``run_replay`` (Spark): re-runs the quarantined Kafka records (optionally only those failing
  one rule) through the current rules and reference data — e.g. after a company was added to the
  companies reference. Admitted records are merged into silver exactly like the cleaning job
  merges new bronze (deduplicated with the stored rows of their partitions), the rest stay in
  the quarantine with their current reasons. Rows without a Kafka origin (``unparsable_row``)
  cannot be re-parsed here: they stay, and fixing the file and replaying it re-sends them.

Exactly once, safe to kill: the replay stages the new silver partitions and the rewritten
quarantine files, writes the cleaning job's journal (partitions to swap, quarantine files to
move in or delete) and only then swaps. A killed replay is finished by the next replay or
``stockpipe clean`` (both replay a journal first); a kill before the journal changes nothing.
A record leaves the quarantine in the same commit that puts it in silver, so a second replay
never sees it again, and silver's deduplication on (symbol, interval, bar_ts) keeps one row even
so. The warehouse load then reloads the changed partitions, and ``fact_stock`` is keyed on the
bar, so each bar is in gold once.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from stockpipe.clean import transforms
from stockpipe.clean.bronze_reader import LakePaths
from stockpipe.clean.commit import apply_journal, attempt_staging, maybe_fault
from stockpipe.clean.companies import sync_companies
from stockpipe.clean.job import _write_silver, load_reference, recover
from stockpipe.clean.migrate import ensure_layout
from stockpipe.clean.orphans import owned_session
from stockpipe.clean.session import apply_job_conf, get_spark, lake_uri, session_url
from stockpipe.clean.sessions import SessionCalendar, session_calendar
from stockpipe.clean.state import Journal, write_journal
from stockpipe.contract.layout import PRICE_DATASETS, SILVER_LAYOUT_VERSION, price_dataset, silver_dir
from stockpipe.contract.unparsable import unparsable_schema
from stockpipe.lake.fs import LakeFS, filesystem

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from stockpipe.settings import Settings

RECORD_KEY = ("bronze_file", "kafka_partition", "kafka_offset")  # one Kafka record


def conform(table: pa.Table) -> pa.Table:
    """A quarantine file's table with every column of ``unparsable_schema`` (missing: null)."""
    import pyarrow as pa

    schema = unparsable_schema()
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


# ---- list ----
@dataclass(frozen=True)
class QuarantineSample:
    rule: str
    origin: str  # "topic/partition/offset" or "file:line"
    ingest_date: str
    failed_rules: tuple[str, ...]
    raw_payload: str | None
    detail: str | None = None


@dataclass
class QuarantineListing:
    records: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    samples: list[QuarantineSample] = field(default_factory=list)


def origin_of(row: dict[str, Any]) -> str:
    if row.get("kafka_offset") is not None:
        return f"{row.get('kafka_topic')}/{row.get('kafka_partition')}/{row.get('kafka_offset')}"
    if row.get("source_file") is not None:
        return f"{row.get('source_file')}:{row.get('source_line')}"
    return "unknown"


def summarise(table: pa.Table, *, rule: str | None = None, limit: int = 5) -> QuarantineListing:
    """Counts by rule and up to ``limit`` samples per rule (pure; ``table`` as ``conform`` makes it
    plus an ``ingest_date`` column). With ``rule``, only records that failed that rule."""
    if rule is not None and table.num_rows:
        table = table.filter(_has_rule(table, rule))
    counts: Counter[str] = Counter()
    samples: dict[str, list[QuarantineSample]] = {}
    for row in table.to_pylist():
        rules = tuple(row.get("failed_rules") or ())
        for r in rules:
            if rule is not None and r != rule:
                continue
            counts[r] += 1
            bucket = samples.setdefault(r, [])
            if len(bucket) < limit:
                bucket.append(
                    QuarantineSample(
                        r,
                        origin_of(row),
                        str(row.get("ingest_date") or ""),
                        rules,
                        row.get("raw_payload"),
                        row.get("detail"),
                    )
                )
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return QuarantineListing(
        records=table.num_rows,
        by_rule=dict(ordered),
        samples=[s for r, _ in ordered for s in samples[r]],
    )


def _has_rule(table: pa.Table, rule: str) -> pa.Array:
    import pyarrow as pa

    return pa.array([rule in (rules or ()) for rules in table["failed_rules"].to_pylist()], pa.bool_())


def read_quarantine(settings: Settings) -> pa.Table:
    """Every quarantine row of the lake (pyarrow through the lake filesystem), with ``ingest_date``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = filesystem(settings)
    base = silver_dir(root, "quarantine")
    tables = []
    for folder in sorted(fs.ls(base, detail=False)) if fs.exists(base) else []:
        name = str(folder).rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith("ingest_date="):
            continue
        day = date.fromisoformat(name.split("=", 1)[1])
        for path in sorted(fs.ls(folder, detail=False)):
            file_name = str(path).rsplit("/", 1)[-1]
            if not file_name.endswith(".parquet") or file_name.startswith((".", "_")):
                continue
            with fs.open(path, "rb") as fh:
                t = conform(pq.read_table(fh))
            tables.append(t.append_column("ingest_date", pa.array([day] * t.num_rows, pa.date32())))
    if not tables:
        return conform(pa.table({})).append_column("ingest_date", pa.array([], pa.date32()))
    return pa.concat_tables(tables)


def list_quarantine(settings: Settings, *, rule: str | None = None, limit: int = 5) -> QuarantineListing:
    return summarise(read_quarantine(settings), rule=rule, limit=limit)


# ---- replay ----
@dataclass
class ReplayResult:
    considered: int = 0  # quarantined Kafka records re-run through the rules
    admitted: int = 0  # moved to silver
    still_quarantined: dict[str, int] = field(default_factory=dict)  # by current rule
    not_replayable: int = 0  # rows without a Kafka origin (unparsable_row), left as they are
    silver_rows_added: int = 0
    partitions_rewritten: list[str] = field(default_factory=list)
    quarantine_files_rewritten: int = 0
    quarantine_files_removed: int = 0
    recovered: bool = False
    seconds: float = 0.0

    def summary(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("quarantined records replayed", self.considered),
            ("moved to silver", self.admitted),
            ("still quarantined", self.considered - self.admitted),
        ]
        rows += [(f"  still quarantined: {r}", n) for r, n in sorted(self.still_quarantined.items())]
        rows += [
            ("not replayable (no Kafka origin, e.g. unparsable_row)", self.not_replayable),
            ("silver rows added", self.silver_rows_added),
            ("silver partitions rewritten", len(self.partitions_rewritten)),
            (
                "quarantine files rewritten / removed",
                f"{self.quarantine_files_rewritten} / {self.quarantine_files_removed}",
            ),
        ]
        if self.recovered:
            rows.append(("interrupted run completed first", "yes"))
        rows.append(("seconds", f"{self.seconds:.1f}"))
        return rows


@dataclass(frozen=True)
class _QFile:
    uri: str  # the quarantine file
    folder: str  # ingest_date=YYYY-MM-DD
    table: pa.Table  # conformed
    schema: pa.Schema  # the file's own schema (a rewrite keeps it)


def _quarantine_files(fs: LakeFS, paths: LakePaths) -> list[_QFile]:
    import pyarrow.parquet as pq

    out: list[_QFile] = []
    if not fs.exists(paths.quarantine):
        return out
    for folder in fs.list(paths.quarantine):
        if not folder.is_dir or not folder.name.startswith("ingest_date="):
            continue
        for f in fs.list(folder.uri):
            if f.name.endswith(".parquet") and not f.name.startswith((".", "_")):
                table = pq.read_table(io.BytesIO(fs.read_bytes(f.uri)))
                out.append(_QFile(f.uri, folder.name, conform(table), table.schema))
    return out


def _replayable(table: pa.Table, rule: str | None) -> pa.Array:
    """Rows that came from Kafka (re-parseable) and, with ``rule``, failed it."""
    import pyarrow.compute as pc

    mask = pc.is_valid(table["kafka_offset"])
    if rule is not None:
        mask = pc.and_(mask, _has_rule(table, rule))
    return mask


def _as_bronze(candidates: pa.Table) -> pa.Table:
    """Quarantine rows back in the bronze record shape the cleaning transforms read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa.table(
        {
            "topic": candidates["kafka_topic"],
            "partition": candidates["kafka_partition"],
            "offset": candidates["kafka_offset"],
            "kafka_ts": candidates["kafka_ts"],
            "key": pc.cast(candidates["key"], pa.binary()),
            "value": pc.cast(candidates["raw_payload"], pa.binary()),
            "bronze_file": candidates["bronze_file"],
            "ingest_date": candidates["ingest_date"],
        }
    )


def _dates(folder: str, n: int) -> pa.Array:
    import pyarrow as pa

    return pa.array([date.fromisoformat(folder.split("=", 1)[1])] * n, pa.date32())


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def run_replay(
    settings: Settings,
    *,
    rule: str | None = None,
    spark: SparkSession | None = None,
    now: datetime | None = None,
) -> ReplayResult:
    """Re-run quarantined records through the current rules; see the module docstring."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    ref = load_reference(settings)
    session = spark or get_spark(settings)
    apply_job_conf(session)
    paths = LakePaths(lake_uri(settings), settings.kafka.topic)
    fs = LakeFS(paths.root, settings.lake.storage_options)
    try:
        with owned_session(fs, paths.state, session, session_url(settings, session)):
            recovered = recover(fs, paths)
            new_lake = ensure_layout(session, fs, paths)
            # the reference the rules just used becomes silver/companies too (dim_companies)
            sync_companies(session, fs, paths.root, ref.csv)
            calendar = session_calendar(session, ref.exchanges)
            result = _replay(session, fs, paths, rule, now, ref.known, calendar, new_lake)
            result.recovered = recovered
    finally:
        fs.close()
    result.seconds = time.monotonic() - started
    return result


def _replay(
    spark: SparkSession,
    fs: LakeFS,
    paths: LakePaths,
    rule: str | None,
    now: datetime,
    known: frozenset[str] | None,
    calendar: SessionCalendar,
    new_lake: bool = False,
) -> ReplayResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    files = _quarantine_files(fs, paths)
    result = ReplayResult()
    picked: list[tuple[_QFile, pa.Array]] = []
    for qf in files:
        mask = _replayable(qf.table, rule)
        result.not_replayable += qf.table.num_rows - pc.sum(pc.is_valid(qf.table["kafka_offset"])).as_py()
        if pc.any(mask).as_py():
            picked.append((qf, mask))
    if not picked:
        return result
    candidates = pa.concat_tables(
        qf.table.filter(mask).append_column("ingest_date", _dates(qf.folder, pc.sum(mask).as_py()))
        for qf, mask in picked
    )
    result.considered = candidates.num_rows
    run_id = (
        "replay-"
        + hashlib.sha256(
            "\n".join(sorted(f"{qf.uri}:{pc.sum(m).as_py()}" for qf, m in picked)).encode()
        ).hexdigest()[:16]
    )
    staging = attempt_staging(paths.staging_root, run_id)

    bronze = spark.createDataFrame(_as_bronze(candidates))
    validated = transforms.clean(bronze, now=now, known_symbols=known, calendar=calendar).cache()
    try:
        verdicts = {
            (r["bronze_file"], r["kafka_partition"], r["kafka_offset"]): tuple(r["failed_rules"] or ())
            for r in validated.select(*RECORD_KEY, "failed_rules").collect()
        }
        kept = validated.where(F.size("failed_rules") == 0).select("interval", "trade_date").distinct()
        values: dict[str, set[str]] = {ds.name: set() for ds in PRICE_DATASETS}
        for r in kept.collect():
            ds = price_dataset(r["interval"])
            values[ds.name].add(ds.value(r["trade_date"]))
        touched = {name: sorted(v) for name, v in values.items()}
        existing_rows, written, parts = _write_silver(spark, fs, paths, validated, touched, staging)
    finally:
        validated.unpersist()

    moves, deletes = [], []
    for qf, mask in picked:
        keep, changed = _rewrite(qf.table, mask, verdicts)
        if not changed:
            continue
        if keep.num_rows == 0:
            deletes.append(qf.uri)
        else:
            staged = f"{staging}/quarantine/{qf.folder}/{qf.uri.rsplit('/', 1)[-1]}"
            own = keep.select(qf.schema.names).cast(qf.schema)
            fs.write_atomic(staged, _parquet_bytes(own))
            moves.append((staged, qf.uri))
    admitted = sum(1 for rules in verdicts.values() if not rules)
    result.admitted = admitted
    result.still_quarantined = dict(Counter(r for rules in verdicts.values() for r in rules))
    result.silver_rows_added = written - existing_rows
    result.partitions_rewritten = parts
    result.quarantine_files_rewritten, result.quarantine_files_removed = len(moves), len(deletes)
    if not (parts or moves or deletes):
        return result
    journal = Journal(
        run_id=run_id,
        staging=staging,
        partitions=parts,
        quarantine_moves=moves,
        ledger_add={},
        quarantine_deletes=deletes,
        layout_version=SILVER_LAYOUT_VERSION if new_lake else None,
    )
    maybe_fault("after_staging")
    write_journal(fs, paths.state, journal)
    maybe_fault("after_journal")
    apply_journal(fs, journal, silver_root=paths.silver, state_dir=paths.state)
    return result


def _rewrite(
    table: pa.Table, mask: pa.Array, verdicts: dict[tuple[Any, ...], tuple[str, ...]]
) -> tuple[pa.Table, bool]:
    """The file's rows minus the admitted records, still-failing ones with their current rules."""
    import pyarrow as pa

    rows = table.to_pylist()
    picked = mask.to_pylist()
    keep, changed = [], False
    for row, was_picked in zip(rows, picked, strict=True):
        if not was_picked:
            keep.append(row)
            continue
        rules = verdicts.get(tuple(row[k] for k in RECORD_KEY))
        if rules is None:  # not re-run (cannot happen: every picked row was validated)
            keep.append(row)
        elif not rules:
            changed = True  # admitted: leaves the quarantine in the commit that adds it to silver
        else:
            if list(rules) != list(row["failed_rules"] or []):
                changed = True
                row = {**row, "failed_rules": list(rules)}
            keep.append(row)
    return pa.Table.from_pylist(keep, schema=table.schema), changed
