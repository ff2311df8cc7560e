"""Exactly-once consumer: Kafka topic -> Parquet batch files in the spool.

The technique of the Kafka Connect HDFS/S3 sinks: every file holds one partition's
contiguous offset range and is named from it (``layout.BatchId``); offsets are committed
only after the file is durable; and when a partition is assigned, the consumer seeks to
``max(committed, highest offset already in spool or bronze + 1)``. A crash between the
file write and the commit therefore never produces a second copy of a record.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from stockpipe.ingest.batcher import ConsumeResult, SpoolBatcher, resume_offsets
from stockpipe.ingest.broker import is_embedded
from stockpipe.ingest.client import consumer_config
from stockpipe.ingest.spool import clean_temp_files
from stockpipe.ingest.topics import ensure_topic

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
__all__ = ["ConsumeResult", "EarlyJoin", "consume_to_spool", "resume_offsets"]

ProgressCallback = Callable[[int], None]
CONSUME_BATCH = 5_000
POLL_SECONDS = 0.2
FLUSH_RECORDS = 50_000
ASSIGN_GRACE = 30.0  # extra wait for the first group assignment in batch mode


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into ``stop.set()`` while following (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class FlushSignal:
    """Lets another thread have a following consumer write its buffers now, not when they age.

    A live ``stream`` asks at the start of each cycle, so records that arrived just before it reach this
    cycle's upload instead of waiting up to ``flush_seconds`` for the next one. ``request`` returns
    True once the consumer thread wrote (or had nothing to write), False after ``timeout``.
    """

    def __init__(self) -> None:
        self._asked = threading.Event()
        self._done = threading.Event()

    def request(self, timeout: float) -> bool:
        self._done.clear()
        self._asked.set()
        return self._done.wait(timeout)

    def serve(self, run: SpoolBatcher) -> bool:
        """In the consumer's thread: flush if asked; True if it did."""
        if not self._asked.is_set():
            return False
        self._asked.clear()
        run.flush()
        self._done.set()
        return True


def consume_to_spool(
    settings: Settings,
    *,
    max_messages: int | None = None,
    timeout: float = 10.0,
    follow: bool = False,
    flush_records: int = FLUSH_RECORDS,
    flush_seconds: float = 5.0,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    handle_signals: bool = True,
    flush_signal: FlushSignal | None = None,
    early: EarlyJoin | None = None,
) -> ConsumeResult:
    """Consume ``settings.kafka.topic`` into spool files; commit only after each file is durable.

    Batch mode (default) returns when caught up (every assigned partition at its end, or no
    message for ``timeout`` seconds) or after ``max_messages``. ``follow=True`` runs until
    ``stop`` is set or SIGINT/SIGTERM arrives, flushing a partition every ``flush_records``
    records or ``flush_seconds`` seconds (``handle_signals=False``: leave SIGINT/SIGTERM
    alone, e.g. when the caller owns them). ``on_progress(n)`` gets the records added since
    its previous call. ``flush_signal`` lets another thread ask for a flush now. ``early``: a
    consumer that began joining the group before this call (``EarlyJoin``); if its join failed,
    this call opens its own consumer.
    """
    stop = stop or threading.Event()
    joined = early.take() if early is not None else None
    consumer, run = joined or _open(settings, flush_records)
    run.flush_records = max(1, flush_records)
    started = time.monotonic()
    try:
        guard = _stop_on_signals(stop) if follow and handle_signals else contextlib.nullcontext()
        with guard:
            _loop(run, max_messages, timeout, follow, flush_seconds, stop, on_progress, flush_signal)
        run.flush()
    except BaseException:
        run.buffers.clear()  # nothing uncommitted is written on the way out of a failure
        raise
    finally:
        consumer.close()
    run.result.seconds = time.monotonic() - started
    return run.result


def _open(settings: Settings, flush_records: int, *, hold: bool = False) -> tuple[Any, SpoolBatcher]:
    """A consumer subscribed to the topic (created if missing) and its batcher; ``hold`` pauses
    partitions as they are assigned."""
    from confluent_kafka import Consumer

    info = ensure_topic(settings)
    clean_temp_files(settings.spool_dir)
    consumer = Consumer(consumer_config(settings, info.bootstrap, embedded=is_embedded(settings)))
    try:
        cluster = info.cluster_id or _cluster_id(consumer, info.topic)
        run = SpoolBatcher(settings, consumer, info.topic, cluster, flush_records)
        run.hold = hold
        consumer.subscribe(
            [info.topic], on_assign=run.on_assign, on_revoke=run.on_revoke, on_lost=run.on_lost
        )
    except BaseException:
        consumer.close()
        raise
    return consumer, run


class EarlyJoin:
    """The consumer's group join, begun while an earlier step runs (``stockpipe run``: the producer).

    A new member of a consumer group gets its partitions only after the coordinator's rebalance
    delay: ``group.initial.rebalance.delay.ms`` on Kafka (3 s by default), about 1 s on the
    embedded broker. ``start`` opens and subscribes the consumer in a thread that keeps polling
    (so the group protocol and ``max.poll.interval.ms`` are served) until ``take``; partitions
    assigned meanwhile are paused at once (``SpoolBatcher.hold``), so nothing is read before the
    consumer step, which resumes them. Where a partition resumes is decided on assignment exactly
    as for a consumer the step opens itself (committed offset or spool/bronze, see the module
    docstring): nothing else commits or writes this spool in between (a run holds the data
    folder's lock). Any end-of-partition seen before ``take`` is forgotten, since the producer may
    still have been sending. A failed join only logs: the step opens its own consumer and reports
    the error. ``close`` closes a consumer that was never taken (the run stopped earlier).
    """

    HOLD_POLL_SECONDS = 0.05

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._joined: tuple[Any, SpoolBatcher] | None = None
        self._run: SpoolBatcher | None = None  # while joining

    def start(self, settings: Settings) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._join, args=(settings,), name="stockpipe-consumer-join", daemon=True
        )
        self._thread.start()

    def _join(self, settings: Settings) -> None:
        try:
            consumer, run = _open(settings, FLUSH_RECORDS, hold=True)  # the step sets its own
        except Exception as exc:  # the step opens its own consumer and reports it
            log.debug("joining the consumer group early failed: %s", exc)
            return
        self._run = run
        log.info("consumer subscribed to %s ahead of its step (group %s)", run.topic, settings.kafka.group_id)
        try:
            while not self._stop.is_set():
                msgs = consumer.consume(num_messages=CONSUME_BATCH, timeout=self.HOLD_POLL_SECONDS)
                if msgs:  # none expected (paused as assigned); any that come are handled as in
                    run.result.records += run.add(msgs)  # the step: buffered, flushed, committed
        except Exception as exc:
            log.debug("the early consumer failed: %s", exc)
            run.buffers.clear()
            consumer.close()
            return
        self._joined = (consumer, run)

    def assigned(self) -> bool:
        """True once the group gave this consumer its partitions (held paused until ``take``)."""
        run = self._run
        return run is not None and run.assigned_at is not None

    def held_records(self) -> int:
        """Records read before ``take`` (0: the partitions are paused as they are assigned)."""
        run = self._run
        return run.result.records if run is not None else 0

    def _halt(self) -> tuple[Any, SpoolBatcher] | None:
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        self._thread = None
        joined, self._joined = self._joined, None
        self._run = None
        return joined

    def take(self) -> tuple[Any, SpoolBatcher] | None:
        """Stop polling; the consumer and its batcher with the partitions resumed, or None."""
        joined = self._halt()
        if joined is None:
            return None
        consumer, run = joined
        run.hold = False
        run.eof.clear()
        try:
            assignment = consumer.assignment()
            if assignment:
                consumer.resume(assignment)
                if not run.result.records:
                    _restart_fetches(consumer, run, assignment)
        except BaseException:
            consumer.close()
            raise
        return joined

    def close(self) -> None:
        joined = self._halt()
        if joined is not None:
            joined[0].close()


def _restart_fetches(consumer: Any, run: SpoolBatcher, assignment: list[Any]) -> None:
    """Seek each resumed partition to the offset it was assigned at (where it still is: nothing
    was read while it was paused). A resumed partition otherwise waited up to about 1 s for its
    first fetch (measured on the embedded broker, about one run in two); a seek starts it at once.
    A partition assigned without an offset (no commit yet) is left to ``auto.offset.reset``; one
    that cannot be sought (revoked meanwhile) fetches by itself, as without the seek."""
    from confluent_kafka import KafkaException, TopicPartition

    for tp in assignment:
        offset = run.start_offsets.get(tp.partition, -1)
        if offset >= 0:
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                log.debug("no seek for %s[%d]: %s", tp.topic, tp.partition, exc)


def _cluster_id(consumer: Any, topic: str) -> str:
    md = consumer.list_topics(topic, timeout=10)
    return str(md.cluster_id)


def _loop(
    run: SpoolBatcher,
    max_messages: int | None,
    timeout: float,
    follow: bool,
    flush_seconds: float,
    stop: threading.Event,
    on_progress: ProgressCallback | None,
    flush_signal: FlushSignal | None = None,
) -> None:
    consume = run.consumer.consume
    subscribed = last_data = time.monotonic()
    while not stop.is_set():
        want = CONSUME_BATCH
        if max_messages is not None:
            want = min(want, max_messages - run.result.records)
            if want <= 0:
                return
        msgs = consume(num_messages=want, timeout=POLL_SECONDS)
        now = time.monotonic()
        if msgs:
            added = run.add(msgs)
            if added:
                run.result.records += added
                last_data = now
                if on_progress is not None:
                    on_progress(added)
        if flush_signal is None or not flush_signal.serve(run):
            run.flush(older_than=flush_seconds)
        if follow:
            continue
        if run.caught_up():
            return
        if run.assigned_at is None:
            if now - subscribed > timeout + ASSIGN_GRACE:
                return
        elif now - max(last_data, run.assigned_at) > timeout:
            return
