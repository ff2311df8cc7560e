"""The seven steps of the seed's DAG as ordinary functions, in one place; the step ids are
defined here (``STEP_NAMES``, in order) and every other module takes them from here.

The CLI (``stockpipe run``), the streaming loop and the Airflow DAG all call these; no logic
lives only in one of them. Each step takes the settings and the run options and returns a
``StepResult``; a step that fails raises ``StepFailedError`` naming itself and the cause.
Heavy libraries (Spark, dbt, Kafka client) are imported only inside the stage functions, so
importing this module stays cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from stockpipe.clean.companies import warn_unknown_symbols
from stockpipe.clean.job import run_clean
from stockpipe.clean.session import get_spark, open_in_background
from stockpipe.errors import StepFailedError, StockpipeError
from stockpipe.faults import fault_point
from stockpipe.gold.runner import preload as preload_dbt
from stockpipe.gold.runner import run_quality, run_transform
from stockpipe.ingest.broker import ensure_bootstrap
from stockpipe.ingest.consumer import EarlyJoin, consume_to_spool
from stockpipe.ingest.producer import open_producer, produce_bars
from stockpipe.ingest.topics import ensure_topic
from stockpipe.lake.bronze import upload_spool
from stockpipe.lake.unparsable import quarantine_unparsable
from stockpipe.orchestration.lock import pipeline_lock
from stockpipe.settings import Settings, redact_url
from stockpipe.sources import SourceOptions
from stockpipe.sources.calendar import latest_complete_session
from stockpipe.sources.companies import default_symbols, reference_path
from stockpipe.sources.live.registry import POLLING_SOURCES, build_live_source
from stockpipe.sources.live.runtime import run_live
from stockpipe.sources.registry import build_source
from stockpipe.sources.replay import ReplaySource
from stockpipe.warehouse.loader import run_load

log = logging.getLogger(__name__)

# The seven step ids of the seed's DAG, spelled here once (and in dags/stock_pipeline.py).
KAFKA_PRODUCER = "Kafka_Producer"
KAFKA_CONSUMER = "Kafka_Consumer"
UPLOAD_TO_HDFS = "Upload_to_HDFS"
SPARK_CLEANING_JOB = "Spark_Cleaning_Job"
UPLOAD_TO_SNOWFLAKE = "Upload_to_Snowflake"
BUILD_MODELS = "build_Models"
QUALITY_MODELS_TEST = "quality_Models_test"
STEP_NAMES: tuple[str, ...] = (
    KAFKA_PRODUCER,
    KAFKA_CONSUMER,
    UPLOAD_TO_HDFS,
    SPARK_CLEANING_JOB,
    UPLOAD_TO_SNOWFLAKE,
    BUILD_MODELS,
    QUALITY_MODELS_TEST,
)


class Reporter(Protocol):
    """Progress sink. The CLI renders it with Rich; the DAG and tests pass ``NullReporter``."""

    def start(self, step: str, total: int | None) -> None: ...
    def advance(self, step: str, n: int) -> None: ...
    def update(self, step: str, done: int, total: int | None, note: str = "") -> None: ...
    def finish(self, step: str, result: StepResult) -> None: ...


class NullReporter:
    def start(self, step: str, total: int | None) -> None:
        pass

    def advance(self, step: str, n: int) -> None:
        pass

    def update(self, step: str, done: int, total: int | None, note: str = "") -> None:
        pass

    def finish(self, step: str, result: StepResult) -> None:
        pass


@dataclass(frozen=True)
class RunOptions:
    """What to produce. Defaults: one full trading day of 1-minute bars for 20 symbols."""

    source: str = "simulator"
    symbols: tuple[str, ...] = ()
    n_symbols: int = 20
    start: date | None = None
    end: date | None = None
    seed: int = 42
    interval: str = "1min"
    paths: tuple[str, ...] = ()
    symbol: str | None = None
    limit: int | None = None
    column_map: dict[str, str] = field(default_factory=dict)  # replay: contract field -> file column
    date_format: str | None = None  # replay: strftime format of the date column
    exchange: str = "XNYS"  # replay: exchange_calendars code (zone, session opens)
    lenient: bool = True  # replay: quarantine unparsable rows (False: abort before sending)

    def trading_days(self) -> tuple[date, date]:
        """The explicit range, or the latest complete NYSE session before today."""
        if self.start is not None:
            return self.start, self.end or self.start

        day = latest_complete_session(datetime.now(UTC))
        return day, day


@dataclass
class StepResult:
    step: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[[Settings, RunOptions, Reporter], StepResult]


def resolve_kafka(settings: Settings) -> Settings:
    """Settings with concrete bootstrap servers: the configured cluster, or the embedded broker."""

    servers = ensure_bootstrap(settings)
    resolved = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": servers})}
    )
    ensure_topic(resolved)
    return resolved


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, prefixed with its type, for a one-sentence error."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if type(exc).__name__ == "Py4JJavaError" and len(lines) > 1:  # line 1 only names the JVM call
        text = lines[1].lstrip(": ")  # the Java exception, e.g. "...ParentNotDirectoryException: <path>"
    text = redact_url(text)  # a Spark Connect or database URL may carry a token
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _progress(reporter: Reporter, step: str) -> Callable[[int], None]:
    return lambda n: reporter.advance(step, n)


def kafka_producer(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """Send the source's bars to the topic (idempotent producer)."""
    from pathlib import Path

    step = KAFKA_PRODUCER
    if options.source in POLLING_SOURCES and options.start is None:
        return _poll_live_source(settings, options, reporter)
    early = _EARLY_JOIN.get()
    if early is not None:  # run_step made sure of the broker and the topic: the consumer joins meanwhile
        early.start(settings)
    # opened first: the client's connection and producer-id handshake (0.5-1 s of librdkafka
    # timers) overlap with building the source (the trading calendar alone takes ~0.9 s)
    opened = open_producer(settings)
    first, last = options.trading_days()
    symbols = options.symbols or (default_symbols(options.n_symbols) if options.source == "simulator" else ())
    warn_unknown_symbols(settings, symbols)

    source = build_source(
        options.source,
        settings,
        SourceOptions(
            symbols=tuple(symbols),
            start=first,
            end=last,
            interval=options.interval,
            seed=options.seed,
            paths=tuple(Path(p) for p in options.paths),
            symbol=options.symbol,
            limit=options.limit,
            column_map=dict(options.column_map),
            date_format=options.date_format,
            exchange=options.exchange,
            on_error="skip-and-report" if options.lenient else "raise",
        ),
    )
    unparsable = quarantine_unparsable(settings, source)
    if isinstance(source, ReplaySource):  # the symbols are known once the files are read
        warn_unknown_symbols(settings, sorted({b.symbol for b in source.load()}), options.exchange)
    reporter.start(step, source.estimated_count())
    result = produce_bars(settings, source.bars(), on_progress=_progress(reporter, step), opened=opened)
    if result.failed:
        raise StepFailedError(
            step,
            f"{result.failed} of {result.sent + result.failed} messages were not delivered "
            f"({result.first_error})",
        )
    counts = {"bars_sent": result.sent}
    if options.source == "replay":
        counts["unparsable"] = unparsable
    return StepResult(
        step,
        counts=counts,
        details={"first_day": first.isoformat(), "last_day": last.isoformat()},
    )


def _poll_live_source(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """A scheduled run of a polling source: one round of the symbols that are due, incremental."""

    step = "Kafka_Producer"
    source = build_live_source(
        options.source, settings, SourceOptions(symbols=options.symbols, interval=options.interval)
    )
    reporter.start(step, None)
    result = run_live(settings, source, once=True, on_batch=lambda b: reporter.advance(step, len(b.bars)))
    return StepResult(
        step,
        counts={"bars_sent": result.sent, "polls": result.batches},
        details={"plan": source.describe(), "polls": result.notes},
    )


def kafka_consumer(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """Drain the topic into the spool (files fsynced before offsets are committed)."""

    step = KAFKA_CONSUMER
    reporter.start(step, None)
    result = consume_to_spool(settings, on_progress=_progress(reporter, step), early=_EARLY_JOIN.get())
    return StepResult(step, counts={"records": result.records, "files": result.files})


def upload_to_lake(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """Publish spool files into bronze (atomic, idempotent, manifested)."""

    step = UPLOAD_TO_HDFS
    reporter.start(step, None)
    result = upload_spool(settings, on_progress=_progress(reporter, step))
    return StepResult(
        step,
        counts={
            "files": result.files,
            "records": result.records,
            "already_in_bronze": result.skipped_existing,
        },
    )


def spark_cleaning(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """Bronze -> silver with validation, quarantine and deduplication."""

    step = SPARK_CLEANING_JOB
    reporter.start(step, None)
    spark = get_spark(settings)
    result = run_clean(
        settings,
        spark=spark,
        companies_csv=reference_path(settings),
        on_progress=lambda phase, done, total: reporter.update(step, done, total, phase),
    )
    return StepResult(
        step,
        counts={
            "bronze_records": result.bronze_records,
            "silver_rows": result.silver_rows_written,
            "quarantined": result.quarantined,
            "duplicates_dropped": result.duplicates_dropped,
        },
        details={"by_rule": dict(result.by_rule), "partitions": list(result.partitions_rewritten)},
    )


def load_warehouse(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """Silver -> the warehouse's raw schema, changed partitions only, one transaction."""

    step = UPLOAD_TO_SNOWFLAKE
    reporter.start(step, None)
    result = run_load(
        settings,
        on_progress=lambda p: reporter.update(step, p.done, p.total, f"{p.table} {p.partition_key}"),
    )
    return StepResult(
        step,
        counts={
            "rows_loaded": result.rows_loaded,
            "partitions_loaded": result.partitions_loaded,
            "partitions_unchanged": result.partitions_skipped,
        },
    )


def _dbt_step(step: str, settings: Settings, reporter: Reporter, quality: bool) -> StepResult:
    reporter.start(step, None)

    def progress(p: Any) -> None:
        reporter.update(step, p.done, p.total, f"{p.name} {p.status}")

    run = run_quality if quality else run_transform
    result = run(settings, on_progress=progress)
    if not result.success:
        named = ", ".join(f"{n.name} ({n.status})" for n in result.failed[:5]) or "see the dbt log"
        stale = any(n.resource_type == "source" for n in result.failed)
        rule = f" ({result.note})" if stale and result.note else ""
        raise StepFailedError(step, f"dbt reported {len(result.failed)} failure(s): {named}{rule}")
    return StepResult(step, counts=result.counts(), details={"note": result.note} if result.note else {})


def build_models(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """dbt: build the gold models (staging, dims, fact, marts)."""
    return _dbt_step(BUILD_MODELS, settings, reporter, quality=False)


def quality_models_test(settings: Settings, options: RunOptions, reporter: Reporter) -> StepResult:
    """dbt: run the data tests and source freshness."""
    return _dbt_step(QUALITY_MODELS_TEST, settings, reporter, quality=True)


STEPS: dict[str, StepFn] = {
    KAFKA_PRODUCER: kafka_producer,
    KAFKA_CONSUMER: kafka_consumer,
    UPLOAD_TO_HDFS: upload_to_lake,
    SPARK_CLEANING_JOB: spark_cleaning,
    UPLOAD_TO_SNOWFLAKE: load_warehouse,
    BUILD_MODELS: build_models,
    QUALITY_MODELS_TEST: quality_models_test,
}
KAFKA_STEPS = frozenset({KAFKA_PRODUCER, KAFKA_CONSUMER})
_EARLY_JOIN: ContextVar[EarlyJoin | None] = ContextVar("stockpipe_early_join", default=None)
"""Within ``run_pipeline`` when the consumer step directly follows the producer step: the
consumer's group join (``EarlyJoin``), started by the producer step, taken by the consumer step."""


def run_step(
    name: str,
    settings: Settings,
    options: RunOptions | None = None,
    reporter: Reporter | None = None,
) -> StepResult:
    """Run one step by its seed task id, timing it and naming it in any failure."""
    options = options or RunOptions()
    reporter = reporter or NullReporter()
    fn = STEPS[name]
    started = time.perf_counter()
    try:
        if name in KAFKA_STEPS:
            settings = resolve_kafka(settings)
        result = fn(settings, options, reporter)
    except StepFailedError:
        raise
    except StockpipeError as exc:
        raise StepFailedError(name, str(exc)) from exc
    except Exception as exc:  # engine errors (Spark, dbt, drivers): one sentence, full trace in the log
        log.exception("step %s failed", name)
        raise StepFailedError(name, one_line(exc)) from exc
    result.seconds = time.perf_counter() - started
    reporter.finish(name, result)
    fault_point(f"AFTER_STEP_{name}")  # test-only crash point at the step boundary (unset: no-op)
    return result


def run_pipeline(
    settings: Settings,
    options: RunOptions | None = None,
    reporter: Reporter | None = None,
    steps: tuple[str, ...] = STEP_NAMES,
) -> list[StepResult]:
    """Run the steps in the seed's order under the data folder's lock; stop at the first failure."""

    # dbt's import (about 2 s of CPU) runs in the background from the first step instead of at the
    # start of build_Models: the producer and the consumer mostly wait for the broker. Started
    # after the producer, as it once was, the import still held the interpreter during the next
    # cleaning step once the consumer had become quick, and the clean step's client-side work
    # waited for it (a warm 7,800-bar clean: persist 0.5-0.8 s instead of 0.3 s, measured).
    dbt_steps = (BUILD_MODELS, QUALITY_MODELS_TEST)
    preload = bool(steps) and steps[0] not in dbt_steps and any(s in dbt_steps for s in steps)
    results = []
    pair = (KAFKA_PRODUCER, KAFKA_CONSUMER)
    early = EarlyJoin() if any(steps[i : i + 2] == pair for i in range(len(steps))) else None
    token = _EARLY_JOIN.set(early)
    try:
        with pipeline_lock(settings):
            if SPARK_CLEANING_JOB in steps[1:]:
                # the Spark Connect session opens (and a stopped server starts) during the steps before
                open_in_background(settings)
            try:
                if preload:
                    preload_dbt(settings)
                for name in steps:
                    results.append(run_step(name, settings, options, reporter))
            finally:
                if early is not None:  # not taken (the run stopped before the consumer step):
                    early.close()  # leave the group while this run still holds the lock
    finally:
        _EARLY_JOIN.reset(token)
    return results
