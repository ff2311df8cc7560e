"""Streaming mode: producer and consumer run continuously; a micro-batch cycle every N seconds.

A live source's cycle begins by having the consumer write what it holds, so its upload sees
every record received until then. After a cycle that found nothing (a live source's bars
arrive together, once per interval) the next one starts as soon as records arrive instead of
at the end of the period. A live source connects only after Spark was warmed up
(``clean.warmup``) and the dbt project parsed, so its first bars wait for neither.

Threads: the producer (simulator in real-time pacing, a polling live source, or a websocket feed
writing trades to ``stock-trades`` plus the trades -> bars aggregator) and the consumer
(``--follow`` mode, flushing small spool files every second) run in the background; the main thread
runs cycles of the seed's later steps — upload, clean (one warm SparkSession for the whole run),
load and the incremental dbt models — and measures freshness after each.

Stopping: ``request_stop()`` (SIGINT/SIGTERM in the CLI) stops the producer, lets the consumer
flush and commit, runs one last cycle so everything consumed reaches gold, then returns.
After ``kill -9`` nothing is lost or duplicated: the consumer resumes from its files and
committed offsets, the lake and warehouse steps are idempotent, and silver deduplicates bars
that a restarted producer sends again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from stockpipe.clean.companies import warn_unknown_symbols
from stockpipe.clean.job import run_clean
from stockpipe.clean.session import get_spark
from stockpipe.clean.warmup import warm_up
from stockpipe.errors import StockpipeError
from stockpipe.gold.runner import project_manifest, run_transform
from stockpipe.ingest.consumer import FlushSignal, consume_to_spool
from stockpipe.ingest.producer import produce_bars
from stockpipe.lake.bronze import upload_spool
from stockpipe.lake.unparsable import quarantine_unparsable
from stockpipe.orchestration.freshness import Freshness, newly_visible, record
from stockpipe.orchestration.lock import pipeline_lock
from stockpipe.orchestration.pipeline import resolve_kafka
from stockpipe.orchestration.status import record_cycle
from stockpipe.settings import Settings
from stockpipe.sources.base import Source, SourceOptions
from stockpipe.sources.live.aggregator_service import AggregatorService
from stockpipe.sources.live.feed_runner import run_feed
from stockpipe.sources.live.registry import FEED_SOURCES, build_feed, build_live_source
from stockpipe.sources.live.runtime import run_live
from stockpipe.sources.replay import ReplaySource
from stockpipe.sources.simulator import SimulatorSource
from stockpipe.warehouse.loader import run_load

log = logging.getLogger(__name__)

# dbt selection run every cycle that loaded rows: the gold star (staging, dims, fact). The marts
# (MART_MODELS) are rebuilt after it, every few cycles and only when the star changed since.
CYCLE_MODELS = "+fact_stock +dim_date +dim_companies"
MART_MODELS = "marts"
FLUSH_WAIT_SECONDS = 1.0  # a cycle waits this long at most for the consumer's flush
ARRIVAL_POLL_SECONDS = 0.05  # how often a waiting loop looks for records that arrived


@dataclass(frozen=True)
class StreamOptions:
    symbols: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    seed: int = 42
    speed: float = 60.0
    cycle_seconds: float = 5.0
    duration: float | None = None  # stop by itself after this many seconds
    drain: bool = False  # stop once a finite source is exhausted and everything reached gold
    marts_every: int = 6  # rebuild the marts every N cycles (and at the end)
    produce: bool = True  # False: only consume (another process produces)
    replay: SourceOptions | None = (
        None  # replay these files (sent as fast as possible) instead of the simulator
    )
    source: str = "simulator"  # or "replay" (with ``replay``) or a live source (sources.live.registry)


@dataclass
class CycleStats:
    number: int
    started_at: datetime
    seconds: float
    bronze_records: int
    silver_rows: int
    quarantined: int
    rows_loaded: int
    freshness: Freshness
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of the cycle
    # when this cycle's bars became visible in gold, and the newest produced_at visible then: a
    # bar was first visible in the first cycle whose watermark reaches its produced_at
    visible_at: datetime | None = None
    watermark: datetime | None = None


@dataclass
class StreamState:
    produced: int = 0
    consumed: int = 0
    producer_done: bool = False
    cycles: list[CycleStats] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class StreamRunner:
    """Runs the stream until stopped; ``on_cycle`` sees each cycle's stats."""

    def __init__(self, settings: Settings, options: StreamOptions) -> None:
        self.settings = resolve_kafka(settings)
        self.options = options
        self.state = StreamState()
        self.stop_requested = threading.Event()
        self._stop_producer = threading.Event()
        self._stop_consumer = threading.Event()
        self._stop_aggregator = threading.Event()
        self._aggregator: Any | None = None
        self._watermark: datetime | None = None
        self._threads: list[threading.Thread] = []
        self._dbt_manifest: Any | None = None  # the dbt project, parsed once per stream
        # the star is built once per stream even with nothing new; marts only after it changed
        self._star_due = True
        self._marts_stale = False
        self._replay: Source | None = None
        self._flush = FlushSignal()  # a live cycle has the consumer write what it holds first
        self._arrived = threading.Event()  # the consumer received records since the cycle began
        self.unparsable = 0  # replay rows quarantined as unparsable_row

    def request_stop(self) -> None:
        self.stop_requested.set()

    # ---- background workers ----
    def _bars(self) -> Iterator[Any]:
        if self._replay is not None:
            yield from self._replay.bars()
            return
        opts = self.options
        source = SimulatorSource(
            SourceOptions(
                symbols=opts.symbols,
                start=opts.start,
                end=opts.end,
                seed=opts.seed,
                realtime=True,
                speed=opts.speed,
            ),
            stop_event=self._stop_producer,
        )
        yield from source.bars()

    def _produce_feed(self) -> None:

        feed = build_feed(self.options.source, self.settings, self.options.symbols)
        run_feed(self.settings, feed, stop=self._stop_producer, on_bars=self._count_produced)

    def _aggregate(self) -> None:

        try:
            self._aggregator = AggregatorService(
                self.settings, stop=self._stop_aggregator, on_bars=self._count_produced
            )
            self._aggregator.run()
        except Exception as exc:
            log.exception("aggregator failed")
            self.state.errors.append(f"aggregator: {exc}")

    def _wait_aggregator_idle(self, timeout: float = 15.0) -> None:
        """After the feed stopped: until the aggregator has read the last trades (no new ones for 1.5 s)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline and not self.state.errors:
            agg = self._aggregator
            seen = agg.status.status.messages if agg is not None else 0
            if seen != last:
                last, since = seen, time.monotonic()
            elif time.monotonic() - since >= 1.5:
                return
            time.sleep(0.2)

    def _produce_live(self) -> None:

        live = build_live_source(
            self.options.source, self.settings, SourceOptions(symbols=self.options.symbols)
        )
        for line in live.describe():
            log.info("%s", line)
        run_live(
            self.settings,
            live,
            stop=self._stop_producer,
            on_batch=lambda b: self._count_produced(len(b.bars)),
        )

    def _produce(self) -> None:
        try:
            if self.options.source in FEED_SOURCES:
                self._produce_feed()
                return
            if self.options.source not in ("simulator", "replay"):
                self._produce_live()
                return
            result = produce_bars(self.settings, self._bars(), on_progress=self._count_produced)
            if result.failed:
                self.state.errors.append(f"{result.failed} messages not delivered: {result.first_error}")
        except Exception as exc:  # surfaced by the main loop
            log.exception("producer failed")
            self.state.errors.append(f"producer: {exc}")
        finally:
            self.state.producer_done = True

    def _count_produced(self, n: int) -> None:
        self.state.produced += n

    def _count_consumed(self, n: int) -> None:
        self.state.consumed += n
        self._arrived.set()

    def _consume(self) -> None:
        try:
            consume_to_spool(
                self.settings,
                follow=True,
                flush_seconds=1.0,
                stop=self._stop_consumer,
                handle_signals=False,
                on_progress=self._count_consumed,
                flush_signal=self._flush,
            )
        except Exception as exc:
            log.exception("consumer failed")
            self.state.errors.append(f"consumer: {exc}")

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _manifest(self) -> Any:
        """The dbt project, parsed once per stream (manifest.json rewritten only if it changed)."""
        if self._dbt_manifest is None:
            self._dbt_manifest = project_manifest(self.settings)
        return self._dbt_manifest

    def _build(self, select: str) -> None:
        result = run_transform(self.settings, select=select, manifest=self._manifest())
        if not result.success:
            failed = ", ".join(n.name for n in result.failed) or "see the dbt log"
            raise RuntimeError(f"dbt models failed: {failed}")

    # ---- one micro-batch ----
    def cycle(self, spark: Any, *, marts: bool) -> CycleStats:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        phases: dict[str, float] = {}
        mark = t0

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now

        self._arrived.clear()
        # a live source's bars arrive together: what just arrived makes this cycle. Not for a
        # steady simulator or replay stream, where waiting for the consumer's next poll (up to
        # 0.2 s) costs every cycle more than it saves (bench_stream: upload 0.02 -> 0.14 s)
        if self._live and any(t.name == "stockpipe-consumer" and t.is_alive() for t in self._threads):
            self._flush.request(timeout=FLUSH_WAIT_SECONDS)
        upload_spool(self.settings)
        lap("upload")
        clean = run_clean(self.settings, spark=spark)  # companies: the reference (reference_path)
        lap("clean")
        load = run_load(self.settings)
        lap("load")
        # new or replaced rows (bars, companies, quarantine); and once at the first marts cycle
        # even without (a previous run may have stopped between its load and dbt)
        if load.tables or (self._star_due and marts):
            self._build(CYCLE_MODELS)
            self._star_due, self._marts_stale = False, True
        lap("dbt")
        visible_at = datetime.now(UTC)
        fresh, self._watermark = newly_visible(self.settings, self._watermark, visible_at)
        if fresh.bars:
            record(self.settings, started_at, fresh)
        lap("freshness")
        # after the bars are visible, so a marts rebuild never delays them
        if marts and self._marts_stale:
            self._build(MART_MODELS)
            self._marts_stale = False
            lap("marts")
        stats = CycleStats(
            number=len(self.state.cycles) + 1,
            started_at=started_at,
            seconds=time.perf_counter() - t0,
            bronze_records=clean.bronze_records,
            silver_rows=clean.silver_rows_written,
            quarantined=clean.quarantined,
            rows_loaded=load.rows_loaded,
            freshness=fresh,
            phases=phases,
            visible_at=visible_at,
            watermark=self._watermark,
        )
        self.state.cycles.append(stats)
        record_cycle(self.settings, self._cycle_record(stats))
        log.info(
            "cycle %d: %.1fs, %d bronze records, %d loaded, freshness p50=%s p95=%s max=%s",
            stats.number, stats.seconds, stats.bronze_records, stats.rows_loaded,
            fresh.p50, fresh.p95, fresh.max,
        )  # fmt: skip
        return stats

    def _cycle_record(self, stats: CycleStats) -> dict[str, Any]:
        fresh = stats.freshness
        return {
            "cycle": stats.number,
            "started_at": stats.started_at.isoformat(),
            "seconds": round(stats.seconds, 3),
            "bronze_records": stats.bronze_records,
            "rows_loaded": stats.rows_loaded,
            "produced": self.state.produced,
            "consumed": self.state.consumed,
            "lag": max(0, self.state.produced - self.state.consumed),
            "visible_at": stats.visible_at.isoformat() if stats.visible_at else None,
            "watermark": stats.watermark.isoformat() if stats.watermark else None,
            "freshness": {
                "bars": fresh.bars,
                "p50": fresh.p50,
                "p95": fresh.p95,
                "max": fresh.max,
                "histogram": fresh.histogram,
            },
            "phases": stats.phases,
        }

    def _initial_watermark(self) -> None:
        """Bars already in gold before this run are not this run's freshness samples."""
        _, self._watermark = newly_visible(self.settings, None, datetime.now(UTC))

    def _finished(self, started: float) -> bool:
        if self.stop_requested.is_set():
            return True
        if self.options.duration is not None and time.monotonic() - started >= self.options.duration:
            return True
        return self.options.drain and self.state.producer_done and self._caught_up()

    def _prepare_replay(self, options: SourceOptions) -> None:
        """Read the replay files before anything is sent: a strict replay fails here; a lenient
        one quarantines its unparsable rows."""

        source = ReplaySource(options)
        self.unparsable = quarantine_unparsable(self.settings, source)
        warn_unknown_symbols(self.settings, sorted({b.symbol for b in source.load()}), options.exchange)
        self._replay = source

    def _caught_up(self) -> bool:
        return self.state.consumed >= self.state.produced

    def run(self, on_cycle: Callable[[CycleStats, StreamState], None] | None = None) -> StreamState:
        with pipeline_lock(self.settings, what="stream"):
            if self.options.produce and self.options.replay is not None:
                self._prepare_replay(self.options.replay)
            elif self.options.produce:
                warn_unknown_symbols(self.settings, self.options.symbols)
            spark = get_spark(self.settings)
            self._initial_watermark()
            if self._live:
                self._prepare_live(spark)
            started = time.monotonic()
            if self.options.produce:
                self._start(self._produce, "stockpipe-producer")
                if self.options.source in FEED_SOURCES:
                    self._start(self._aggregate, "stockpipe-aggregator")
            else:
                self.state.producer_done = True
            self._start(self._consume, "stockpipe-consumer")
            try:
                self._loop(spark, started, on_cycle)
            finally:
                self._shutdown()
            # everything consumed before the stop reaches gold, marts included
            final = self.cycle(spark, marts=True)
            if on_cycle:
                on_cycle(final, self.state)
        return self.state

    def _loop(
        self, spark: Any, started: float, on_cycle: Callable[[CycleStats, StreamState], None] | None
    ) -> None:
        next_at = time.monotonic()
        idle = False
        while not self._finished(started):
            if self.state.errors:
                raise StockpipeError(self.state.errors[0])
            if self._wait_for_cycle(next_at, early=idle):
                break
            next_at = time.monotonic() + self.options.cycle_seconds
            marts = len(self.state.cycles) % self.options.marts_every == self.options.marts_every - 1
            stats = self.cycle(spark, marts=marts)
            if on_cycle:
                on_cycle(stats, self.state)
            idle = not stats.bronze_records

    def _wait_for_cycle(self, next_at: float, *, early: bool) -> bool:
        """Wait until ``next_at``; True if a stop was requested meanwhile.

        After an idle cycle (``early``) the next one starts as soon as the consumer receives
        records: an idle cycle costs nothing, so this does not add load, and the bars of a live
        source (they arrive together, once per interval) do not wait out the rest of the period.
        """
        while True:
            wait = next_at - time.monotonic()
            if wait <= 0 or (early and self._arrived.is_set()):
                return self.stop_requested.is_set()
            if self.stop_requested.wait(min(wait, ARRIVAL_POLL_SECONDS)):
                return True

    @property
    def _live(self) -> bool:
        """A live source: its bars arrive once per interval (or poll), so most cycles are idle."""
        return self.options.produce and self.options.source not in ("simulator", "replay")

    def _prepare_live(self, spark: Any) -> None:
        """Before a live source connects: warm Spark up and parse dbt, so its first bars wait for neither.

        Up to ``stream.spark_warmup_rounds`` cleans of a synthetic batch (``clean.warmup``), fewer
        once one takes at most ``warmup.WARM_ENOUGH_SECONDS``. A failed warm-up is logged and the
        stream goes on cold; it never stops the stream.
        """
        warm_up(
            self.settings,
            spark,
            self.settings.stream.spark_warmup_rounds,
            stop=self.stop_requested.is_set,
        )
        self._manifest()

    def _shutdown(self) -> None:
        self._stop_producer.set()
        for thread in self._threads:
            if thread.name == "stockpipe-producer":
                thread.join(timeout=60)
        if any(t.name == "stockpipe-aggregator" for t in self._threads):
            self._wait_aggregator_idle()
            self._stop_aggregator.set()  # emits the open windows, flushes, snapshots, commits
            for thread in self._threads:
                if thread.name == "stockpipe-aggregator":
                    thread.join(timeout=60)
        # give the consumer a moment to read what the producer flushed, then stop it
        deadline = time.monotonic() + 10
        while not self._caught_up() and time.monotonic() < deadline and not self.state.errors:
            time.sleep(0.2)
        self._stop_consumer.set()
        for thread in self._threads:
            thread.join(timeout=60)
