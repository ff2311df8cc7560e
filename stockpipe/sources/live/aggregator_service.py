"""The trades -> bars aggregator as a Kafka service: ``stock-trades`` in, ``stock-prices`` out.

A consumer group (``settings.kafka.aggregator_group_id``) reads the trades topic (keyed by symbol,
so a symbol's trades stay in order in one partition) and feeds the pure ``Aggregator`` per
partition. Each round (up to ``BATCH`` trades, or a second):

1. bars completed (watermark or quiet timeout) are produced to the bars topic and the producer is
   **flushed** (idempotent, acks=all);
2. dead letters (``late_trade``, ``no_priced_trade``, ``bad_trade``) are appended to
   ``<data>/dead_letters/<trades topic>.jsonl`` and fsynced;
3. a snapshot of the aggregator (open windows, watermarks, the last offset taken per partition) is
   written atomically to ``<data>/state/live/aggregator-<trades topic>.json``;
4. per partition the offset of the **oldest trade still in an open window** is committed (or one
   past the last trade when no window is open).

After ``kill -9`` the service restores the snapshot and re-reads from the committed offsets; trades
at or below the snapshot's offsets are skipped, later ones rebuild the open windows exactly. A
crash between 1 and 3 re-emits bars already sent: same key, same values (a newer ``produced_at``),
which silver keeps once. Without a snapshot (lost data folder) the committed offsets alone rebuild
the open windows. Dead-letter lines carry partition and offset, so a line written twice by such a
crash is recognisable. One aggregator process per data folder (the snapshot covers its partitions).

SIGTERM/SIGINT: the open windows' bars are emitted as they stand (the same as a quiet timeout; the
windows stay in the snapshot, so a trade arriving after a restart re-emits the corrected bar), then
flush, snapshot, commit, exit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe.errors import StockpipeError
from stockpipe.faults import fault_point
from stockpipe.ingest.broker import ensure_bootstrap, is_embedded
from stockpipe.ingest.client import consumer_config, producer_config
from stockpipe.ingest.topics import ensure_topic, ensure_trades_topic
from stockpipe.sources.live.aggregate import Aggregator, AggregatorConfig, DeadLetter
from stockpipe.sources.live.atomic import write_json_atomic
from stockpipe.sources.live.batch import TradeBatch, add_batch
from stockpipe.sources.live.status import StatusWriter
from stockpipe.sources.live.trades import Trade, TradeFormatError

if TYPE_CHECKING:
    from stockpipe.contract import Bar
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
BATCH = 5_000
POLL_SECONDS = 0.5
FLUSH_TIMEOUT = 120.0
AFTER_FLUSH_FAULT = "AGGREGATOR_AFTER_FLUSH"  # test-only: bars flushed, snapshot and commit not yet


class AggregatorDeliveryError(StockpipeError):
    """Bars could not be delivered to the bars topic; nothing was committed."""


def aggregator_config(settings: Settings) -> AggregatorConfig:
    """The aggregation settings (``STOCKPIPE_LIVE_*``)."""
    live = settings.live
    return AggregatorConfig(
        interval=live.interval,
        allowed_delay_seconds=live.allowed_delay_seconds,
        quiet_timeout_seconds=live.quiet_timeout_seconds,
        grace_seconds=live.grace_seconds,
        exchange=live.exchange,
        finnhub_volume_only_conditions=tuple(settings.finnhub.volume_only_conditions),
    )


def snapshot_path(settings: Settings) -> Path:
    return settings.state_dir / "live" / f"aggregator-{settings.kafka.trades_topic}.json"


def dead_letter_path(settings: Settings) -> Path:
    return settings.data_path / "dead_letters" / f"{settings.kafka.trades_topic}.jsonl"


@dataclass
class AggregatorResult:
    trades: int = 0
    bars: int = 0
    late_trades: int = 0
    dead_letters: int = 0
    rounds: int = 0
    seconds: float = 0.0


class AggregatorService:
    """See the module docstring. ``run()`` returns when ``stop`` is set (or ``idle_exit`` passes)."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: AggregatorConfig | None = None,
        stop: threading.Event | None = None,
        on_bars: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or aggregator_config(settings)
        self.stop = stop or threading.Event()
        self.on_bars = on_bars
        self._skew = 0.0  # added to the processing clock: a final tick emits every open window
        self.status = StatusWriter(settings, "aggregator", "aggregator")
        self.result = AggregatorResult()
        self.seen: dict[int, int] = {}  # last offset taken per partition (in the snapshot)
        self.aggregator = self._restore()

    def _clock(self) -> float:
        return time.monotonic() + self._skew

    def _restore(self) -> Aggregator:
        path = snapshot_path(self.settings)
        if not path.exists():
            return Aggregator(self.config, monotonic=self._clock)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            agg = Aggregator.restore(data["aggregator"], self.config, monotonic=self._clock)
        except (OSError, ValueError, KeyError) as exc:
            raise StockpipeError(
                f"The aggregator snapshot {path} is unusable ({exc}); move it away to rebuild from Kafka."
            ) from exc
        self.seen = {int(p): int(o) for p, o in data.get("seen", {}).items()}
        return agg

    # ---- one round ----
    def _take(self, messages: list[Any], bars: list[Bar], dead: list[dict[str, Any]]) -> int:
        """Parse the round's messages and aggregate them per partition as one batch each
        (``batch.add_batch``: the per-trade results, a bar corrected inside the round sent once)."""
        from confluent_kafka import KafkaError

        taken = 0
        pending: dict[int, tuple[list[Trade], list[int]]] = {}
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("aggregator consumer: %s", err)
                continue
            p, off = int(m.partition()), int(m.offset())
            if off <= self.seen.get(p, -1):
                continue  # already inside the restored snapshot
            self.seen[p] = off
            taken += 1
            try:
                trade = Trade.from_json_bytes(m.value() or b"")
            except TradeFormatError as exc:
                dead.append(_dead_record("bad_trade", str(exc), None, p, off, m.value()))
                continue
            trades, offsets = pending.setdefault(p, ([], []))
            trades.append(trade)
            offsets.append(off)
        for p, (trades, offsets) in pending.items():
            out = add_batch(self.aggregator, TradeBatch.from_trades(trades, offsets=offsets), partition=p)
            bars.extend(out.bars)
            if out.dead_letters:
                offset_of = {id(t): o for t, o in zip(trades, offsets, strict=True)}
                for d in out.dead_letters:
                    off_d = offset_of.get(id(d.trade)) if d.trade is not None else None
                    dead.append(_dead_record(d.reason, d.detail, d, p, off_d))
        return taken

    def _deliver(self, producer: Any, topic: str, bars: list[Bar], errors: list[str]) -> None:
        for bar in bars:
            while True:
                try:
                    producer.produce(topic, bar.to_json_bytes(), bar.key())
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = producer.flush(FLUSH_TIMEOUT)
        if errors or remaining:
            reason = errors[0] if errors else f"{remaining} bars not delivered in {FLUSH_TIMEOUT:.0f} s"
            raise AggregatorDeliveryError(f"The aggregator could not deliver bars to {topic}: {reason}.")

    def _persist(self, consumer: Any, dead: list[dict[str, Any]]) -> None:
        from confluent_kafka import TopicPartition

        if dead:
            _append_lines(dead_letter_path(self.settings), dead)
        state = {"aggregator": self.aggregator.state(), "seen": {str(p): o for p, o in self.seen.items()}}
        write_json_atomic(snapshot_path(self.settings), state)
        topic = self.settings.kafka.trades_topic
        offsets = []
        for p, last in sorted(self.seen.items()):
            oldest = self.aggregator.oldest_open_offset(p)
            offsets.append(
                TopicPartition(topic, p, min(oldest, last + 1) if oldest is not None else last + 1)
            )
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # e.g. a partition moved to another member: it re-reads, same result
                log.warning("aggregator commit failed: %s", exc)

    def run(self, *, idle_exit: float | None = None) -> AggregatorResult:
        from confluent_kafka import Consumer, Producer

        settings = self.settings
        bootstrap = ensure_bootstrap(settings)
        trades = ensure_trades_topic(settings)
        bars_topic = ensure_topic(settings).topic
        conf = consumer_config(settings, bootstrap, embedded=is_embedded(settings))
        conf["group.id"] = settings.kafka.aggregator_group_id
        consumer = Consumer(conf)
        errors: list[str] = []
        pconf = producer_config(settings, bootstrap)
        pconf["on_delivery"] = lambda err, _msg: errors.append(str(err)) if err is not None else None
        producer = Producer(pconf)
        consumer.subscribe([trades.topic])
        self.status.status.connected = True
        started = time.perf_counter()
        last_trade = time.monotonic()
        try:
            while not self.stop.is_set():
                messages = consumer.consume(BATCH, timeout=POLL_SECONDS)
                bars: list[Bar] = []
                dead: list[dict[str, Any]] = []
                taken = self._take(messages, bars, dead)
                ticked = self.aggregator.tick()
                bars.extend(ticked.bars)
                dead.extend(_dead_record(d.reason, d.detail, d, None, None) for d in ticked.dead_letters)
                if taken:
                    last_trade = time.monotonic()
                    self.status.message(taken)
                if taken or bars or dead:
                    self._round(consumer, producer, bars_topic, bars, dead, errors)
                self.status.write()
                if idle_exit is not None and time.monotonic() - last_trade >= idle_exit:
                    break
            # stopping: emit the open windows as they stand (they stay in the snapshot)
            self._skew += self.config.quiet_timeout_seconds + 1.0
            final = self.aggregator.tick()
            dead = [_dead_record(d.reason, d.detail, d, None, None) for d in final.dead_letters]
            self._round(consumer, producer, bars_topic, list(final.bars), dead, errors)
        finally:
            self.result.seconds = time.perf_counter() - started
            self.status.close()
            consumer.close()
        return self.result

    def _round(
        self,
        consumer: Any,
        producer: Any,
        bars_topic: str,
        bars: list[Bar],
        dead: list[dict[str, Any]],
        errors: list[str],
    ) -> None:
        self._deliver(producer, bars_topic, bars, errors)
        if bars:
            fault_point(AFTER_FLUSH_FAULT)
            if self.on_bars is not None:
                self.on_bars(len(bars))
        self._persist(consumer, dead)
        late = sum(1 for d in dead if d["reason"] == "late_trade")
        self.result.rounds += 1
        self.result.bars += len(bars)
        self.result.late_trades += late
        self.result.dead_letters += len(dead)
        counters = self.aggregator.counters
        self.result.trades = counters.trades
        st = self.status.status
        st.bars_emitted = counters.bars
        st.late_trades = counters.late_trades
        st.extra = {
            "open_windows": self.aggregator.open_windows,
            "dead_letters": self.result.dead_letters,
            "corrections": counters.corrections,
        }


def _dead_record(
    reason: str,
    detail: str,
    letter: DeadLetter | None,
    partition: int | None,
    offset: int | None,
    raw: Any = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "partition": partition,
        "offset": offset,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    if letter is not None and letter.trade is not None:
        record["trade"] = letter.trade.to_dict()
    if raw is not None:
        record["raw"] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return record


def _append_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """The dead-letter lines, one per (partition, offset, reason) (a crash may have written twice)."""
    path = dead_letter_path(settings)
    if not path.exists():
        return []
    seen: set[tuple[Any, Any, Any]] = set()
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        key = (record.get("partition"), record.get("offset"), record.get("reason"))
        if record.get("offset") is not None and key in seen:
            continue
        seen.add(key)
        out.append(record)
    return out
