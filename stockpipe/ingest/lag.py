"""Consumer lag per partition: high watermark minus the group's committed offset.

Exact on Apache Kafka and compatible brokers that report end offsets; the embedded tansu
broker does not (its ListOffsets(latest) is a constant), which ``PartitionLag.lag`` reports as
unknown. ``stockpipe stream`` also tracks its own lag as produced minus consumed records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockpipe.ingest.client import consumer_config
from stockpipe.ingest.topics import connect_admin

if TYPE_CHECKING:
    from stockpipe.settings import Settings


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has committed nothing for it yet
    high_watermark: int

    @property
    def lag(self) -> int | None:
        """Records not yet committed; ``None`` when the broker's end offset is not credible.

        The embedded tansu broker answers ListOffsets(latest) with a constant, so a committed
        offset beyond the reported end means "unknown" rather than a negative lag.
        """
        low = self.committed if self.committed is not None and self.committed >= 0 else 0
        if low > self.high_watermark:
            return None
        return self.high_watermark - low


def consumer_lag(settings: Settings, bootstrap: str, *, timeout: float = 10.0) -> list[PartitionLag]:
    """Lag of ``settings.kafka.group_id`` on ``settings.kafka.topic``, one entry per partition.

    Reads committed offsets without joining the group (no rebalance of a running consumer).
    """
    from confluent_kafka import Consumer, TopicPartition

    topic = settings.kafka.topic
    _, metadata = connect_admin(settings, bootstrap, timeout=timeout)
    if topic not in metadata.topics:
        return []
    partitions = sorted(metadata.topics[topic].partitions)
    consumer = Consumer(consumer_config(settings, bootstrap))
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout)
        out = []
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout)
            offset = tp.offset if tp.offset is not None and tp.offset >= 0 else None
            out.append(PartitionLag(tp.partition, offset, int(high)))
        return out
    finally:
        consumer.close()
