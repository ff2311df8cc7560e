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
__all__ = ["ConsumeResult", "consume_to_spool", "resume_offsets"]

ProgressCallback = Callable[[int], None]
CONSUME_BATCH = 5_000
POLL_SECONDS = 0.2
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
    flush_records: int = 50_000,
    flush_seconds: float = 5.0,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    handle_signals: bool = True,
    flush_signal: FlushSignal | None = None,
) -> ConsumeResult:
    """Consume ``settings.kafka.topic`` into spool files; commit only after each file is durable.

    Batch mode (default) returns when caught up (every assigned partition at its end, or no
    message for ``timeout`` seconds) or after ``max_messages``. ``follow=True`` runs until
    ``stop`` is set or SIGINT/SIGTERM arrives, flushing a partition every ``flush_records``
    records or ``flush_seconds`` seconds (``handle_signals=False``: leave SIGINT/SIGTERM
    alone, e.g. when the caller owns them). ``on_progress(n)`` gets the records added since
    its previous call. ``flush_signal`` lets another thread ask for a flush now.
    """
    from confluent_kafka import Consumer

    info = ensure_topic(settings)
    clean_temp_files(settings.spool_dir)
    stop = stop or threading.Event()
    consumer = Consumer(consumer_config(settings, info.bootstrap, embedded=is_embedded(settings)))
    cluster = info.cluster_id or _cluster_id(consumer, info.topic)
    run = SpoolBatcher(settings, consumer, info.topic, cluster, flush_records)
    started = time.monotonic()
    try:
        consumer.subscribe(
            [info.topic], on_assign=run.on_assign, on_revoke=run.on_revoke, on_lost=run.on_lost
        )
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
