"""The consumer's batching state: per-partition buffers, rebalance callbacks, durable flushes.

``SpoolBatcher`` is driven by ``consume_to_spool``: it buffers records column-wise, writes a
partition's buffer as one spool file (``spool.write_batch``), then commits ``last + 1``; on
assignment it seeks past what spool and bronze already hold (see ``stockpipe.ingest.consumer``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockpipe.contract.layout import BatchId, cluster_tag
from stockpipe.contract.spool import spool_batches
from stockpipe.errors import BrokerUnavailableError
from stockpipe.faults import fault_point
from stockpipe.ingest.spool import PartitionBuffer, batch_table, highest_offsets, write_batch
from stockpipe.lake.manifest import published_batches

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ConsumeResult:
    """Outcome of one consume run."""

    records: int
    files: int
    seconds: float
    last_offsets: dict[int, int] = field(default_factory=dict)  # partition -> last offset written
    file_names: list[str] = field(default_factory=list)
    cluster_id: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def resume_offsets(settings: Settings, topic: str, cluster: str) -> dict[int, int]:
    """Per partition, the first offset not yet in spool or bronze for this cluster tag."""

    batches = spool_batches(settings.spool_dir) + published_batches(settings, topic)
    return {p: last + 1 for p, last in highest_offsets(batches, topic, cluster).items()}


class SpoolBatcher:
    """State of one consume run: buffers, assignment, end-of-partition flags, totals."""

    def __init__(
        self, settings: Settings, consumer: Any, topic: str, cluster_id: str, flush_records: int
    ) -> None:
        self.settings = settings
        self.flush_records = max(1, flush_records)
        self.consumer = consumer
        self.topic = topic
        self.cluster_id = cluster_id
        self.tag = cluster_tag(cluster_id)
        self.buffers: dict[int, PartitionBuffer] = {}
        self.assigned: set[int] = set()
        self.eof: set[int] = set()
        self.assigned_at: float | None = None
        self.hold = False  # pause partitions as they are assigned (``consumer.EarlyJoin``)
        self.start_offsets: dict[int, int] = {}  # partition -> offset it was assigned at
        self.result = ConsumeResult(0, 0, 0.0, cluster_id=cluster_id)

    # ---- rebalance callbacks (run inside consumer.consume) ----
    def on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        resume = resume_offsets(self.settings, self.topic, self.tag)
        committed = consumer.committed(partitions, timeout=30)
        for tp, done in zip(partitions, committed, strict=True):
            local = resume.get(tp.partition)
            if local is not None:
                tp.offset = max(done.offset, local) if done.offset >= 0 else local
            elif done.offset >= 0:
                tp.offset = done.offset
            self.buffers.pop(tp.partition, None)
            self.eof.discard(tp.partition)
            self.assigned.add(tp.partition)
            self.start_offsets[tp.partition] = tp.offset
            log.info("assigned %s[%d] from offset %s", self.topic, tp.partition, tp.offset)
        consumer.assign(partitions)
        if self.hold:
            consumer.pause(partitions)
        self.assigned_at = time.monotonic()

    def on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = {tp.partition for tp in partitions}
        self.flush(revoked)
        self.assigned -= revoked
        self.eof -= revoked

    def on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        lost = {tp.partition for tp in partitions}
        for p in lost:  # never committed: the new owner reads them again
            self.buffers.pop(p, None)
        self.assigned -= lost
        self.eof -= lost

    # ---- records ----
    def add(self, msgs: list[Any]) -> int:
        """Buffer data messages, note end-of-partition events; returns data messages added.

        Works column-wise (one list comprehension per field) instead of per message: this
        loop is the consumer's hot path.
        """
        errors = [m.error() for m in msgs]
        if any(e is not None for e in errors):  # (list.count(None) would call KafkaError.__eq__)
            msgs = self._events(msgs, errors)
            if not msgs:
                return 0
            parts = [m.partition() for m in msgs]
        else:
            parts = [m.partition() for m in msgs]
            self.eof.difference_update(parts)
        offsets = [m.offset() for m in msgs]
        stamps = [ts if kind else None for kind, ts in [m.timestamp() for m in msgs]]
        keys = [m.key() for m in msgs]
        values = [m.value() for m in msgs]
        if parts.count(parts[0]) == len(parts):  # the usual case: one partition per fetch
            return self._extend(parts[0], offsets, stamps, keys, values)
        added = 0
        for p in sorted(set(parts)):
            idx = [i for i, q in enumerate(parts) if q == p]
            added += self._extend(
                p,
                [offsets[i] for i in idx],
                [stamps[i] for i in idx],
                [keys[i] for i in idx],
                [values[i] for i in idx],
            )
        return added

    def _events(self, msgs: list[Any], errors: list[Any]) -> list[Any]:
        """Handle error events (end of partition, failures); return the data messages."""
        from confluent_kafka import KafkaError

        data = []
        for m, err in zip(msgs, errors, strict=True):  # in order: data after an EOF un-ends it
            if err is None:
                data.append(m)
                self.eof.discard(m.partition())
            elif err.code() == KafkaError._PARTITION_EOF:
                self.eof.add(m.partition())
            elif err.fatal():
                raise BrokerUnavailableError(f"The Kafka consumer failed: {err.str()}.")
            else:
                log.warning("kafka consumer: %s", err.str())
        return data

    def _extend(
        self,
        p: int,
        offsets: list[int],
        stamps: list[int | None],
        keys: list[bytes | None],
        values: list[bytes | None],
    ) -> int:
        buf = self.buffers.get(p)
        if buf is None:
            buf = self.buffers[p] = PartitionBuffer(started=time.monotonic())
        elif not buf.offsets:
            buf.started = time.monotonic()
        if buf.offsets and offsets[0] <= buf.offsets[-1]:  # a re-delivery already buffered
            keep = [i for i, o in enumerate(offsets) if o > buf.offsets[-1]]
            offsets = [offsets[i] for i in keep]
            stamps = [stamps[i] for i in keep]
            keys = [keys[i] for i in keep]
            values = [values[i] for i in keep]
        buf.extend(offsets, stamps, keys, values)
        if len(buf) >= self.flush_records:
            commits = []
            while len(buf) >= self.flush_records:
                commits.append(self._write(p, buf.take(self.flush_records)))
            self._commit(commits)
        return len(offsets)

    def _write(self, p: int, buf: PartitionBuffer) -> Any:
        """Write one batch file durably; return the offset to commit for it."""
        from confluent_kafka import TopicPartition

        batch = BatchId(self.topic, self.tag, p, buf.offsets[0], buf.offsets[-1])
        write_batch(self.settings.spool_dir, batch, batch_table(self.topic, p, buf, self.cluster_id))
        fault_point("AFTER_FILE_WRITE")
        self.result.files += 1
        self.result.file_names.append(batch.file_name)
        self.result.last_offsets[p] = batch.last
        return TopicPartition(self.topic, p, batch.last + 1)

    def _commit(self, commits: list[Any]) -> None:
        from confluent_kafka import KafkaException

        if not commits:
            return
        try:
            self.consumer.commit(offsets=commits, asynchronous=False)
        except KafkaException as exc:  # the files are durable: the next assignment seeks past them
            log.warning("offset commit failed (files are safe, resume uses them): %s", exc)

    def flush(self, partitions: set[int] | None = None, *, older_than: float | None = None) -> None:
        """Write the selected non-empty buffers durably, then commit their offsets."""
        now = time.monotonic()
        commits = []
        for p, buf in sorted(self.buffers.items()):
            if not buf.offsets or (partitions is not None and p not in partitions):
                continue
            if older_than is not None and now - buf.started < older_than:
                continue
            commits.append(self._write(p, buf.take(len(buf))))
        self._commit(commits)

    def caught_up(self) -> bool:
        return bool(self.assigned) and self.assigned <= self.eof
