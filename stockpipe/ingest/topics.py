"""Idempotent creation of the bars topic, with a bounded wait for an unreachable cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockpipe.errors import BrokerUnavailableError, ConfigError
from stockpipe.ingest.broker import ensure_bootstrap
from stockpipe.ingest.client import admin_config

if TYPE_CHECKING:
    from stockpipe.settings import Settings

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class TopicInfo:
    """The topic as the cluster reports it after ``ensure_topic``."""

    bootstrap: str
    topic: str
    partitions: int
    created: bool
    cluster_id: str


def connect_admin(settings: Settings, bootstrap: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[Any, Any]:
    """An ``AdminClient`` and the cluster metadata, or ``BrokerUnavailableError`` within ``timeout``."""
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []

    def on_error(err: Any) -> None:
        errors.append(err)

    conf = admin_config(settings, bootstrap)
    conf["error_cb"] = on_error
    conf.setdefault("log_level", 0)
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:  # bounded retries, never a hang
        try:
            md = admin.list_topics(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            return admin, md
        except Exception as exc:
            last = exc
            admin.poll(0)  # serve error_cb: the real reason (refused, SASL failure, TLS) lands in errors
            time.sleep(0.2)
    reason = error_reason(errors) or str(last or "no answer")
    raise BrokerUnavailableError(
        f"Cannot reach the Kafka cluster at {bootstrap} within {timeout:.0f} s ({reason})."
    )


def error_reason(errors: list[Any]) -> str | None:
    """The most telling of librdkafka's ``error_cb`` errors: the last one that is not its summary
    "N/N brokers are down" (which follows the cause, e.g. "Connection refused", when it comes)."""
    from confluent_kafka import KafkaError

    def code(err: Any) -> Any:
        return err.code() if isinstance(err, KafkaError) else None

    telling = [e for e in errors if code(e) != KafkaError._ALL_BROKERS_DOWN] or errors
    if not telling:
        return None
    err = telling[-1]
    return str(err.str() if isinstance(err, KafkaError) else err)


def topic_config(retention_ms: int | None, retention_bytes: int | None) -> dict[str, str]:
    """Topic configs set at creation: ``cleanup.policy=delete`` plus the retention limits given."""
    conf = {"cleanup.policy": "delete"}
    if retention_ms is not None:
        conf["retention.ms"] = str(retention_ms)
    if retention_bytes is not None:
        conf["retention.bytes"] = str(retention_bytes)
    return conf


def ensure_topic(
    settings: Settings,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    topic: str | None = None,
    config: dict[str, str] | None = None,
) -> TopicInfo:
    """Create ``topic`` (default ``settings.kafka.topic``) if missing (partitions and replication
    from settings; ``config`` defaults to the bars topic's retention settings).

    Safe to call from every command and from several processes at once: an existing topic
    (or one created concurrently) is accepted as is (its configs are not altered).
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    bootstrap = ensure_bootstrap(settings)
    topic = topic or settings.kafka.topic
    if config is None:
        config = topic_config(settings.kafka.retention_ms, settings.kafka.retention_bytes)
    admin, md = connect_admin(settings, bootstrap, timeout)
    cluster = str(md.cluster_id or "")
    existing = md.topics.get(topic)
    if existing is not None and existing.error is None:
        return TopicInfo(bootstrap, topic, len(existing.partitions), False, cluster)
    new = NewTopic(topic, settings.kafka.partitions, settings.kafka.replication_factor, config=config)
    created = True
    try:
        admin.create_topics([new], request_timeout=timeout)[topic].result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        code = err.code() if isinstance(err, KafkaError) else None
        if code == KafkaError.TOPIC_ALREADY_EXISTS:
            created = False
        elif code == KafkaError.INVALID_REPLICATION_FACTOR:
            raise ConfigError(
                f"Topic {topic!r} cannot be created with replication factor "
                f"{settings.kafka.replication_factor} on the cluster at {bootstrap}."
            ) from exc
        else:
            raise BrokerUnavailableError(f"Creating topic {topic!r} on {bootstrap} failed: {err}.") from exc
    except Exception as exc:  # timeouts surface as concurrent.futures errors
        raise BrokerUnavailableError(f"Creating topic {topic!r} on {bootstrap} failed: {exc}.") from exc
    partitions = _wait_partitions(admin, topic, timeout)
    return TopicInfo(bootstrap, topic, partitions, created, cluster)


def ensure_trades_topic(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> TopicInfo:
    """Create the raw trades topic (``settings.kafka.trades_topic``) with its own retention."""
    kafka = settings.kafka
    conf = topic_config(kafka.trades_retention_ms, kafka.trades_retention_bytes)
    return ensure_topic(settings, timeout=timeout, topic=kafka.trades_topic, config=conf)


def topic_configs(settings: Settings, topic: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """The cluster's configs of ``topic`` (DescribeConfigs), for checks and ``status``."""
    from confluent_kafka.admin import ConfigResource

    admin, _ = connect_admin(settings, ensure_bootstrap(settings), timeout)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout=timeout)
    return {name: entry.value for name, entry in entries.items() if entry.value is not None}


def _wait_partitions(admin: Any, topic: str, timeout: float) -> int:
    """Wait until the new topic shows up in metadata; return its partition count."""
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=topic, timeout=timeout)
        meta = md.topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return len(meta.partitions)
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(f"Topic {topic!r} was created but never appeared in metadata.")
        time.sleep(0.1)
