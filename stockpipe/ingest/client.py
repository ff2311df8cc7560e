"""librdkafka configurations for the producer, the consumer and the admin client.

Every role starts from ``settings.kafka.client_config()`` (bootstrap servers, security
protocol, SASL, SSL and the verbatim ``client_options``), adds its own defaults, and then
re-applies the few options stockpipe's guarantees depend on (idempotence, manual commits).
Options in ``client_options`` that only make sense for another role are dropped, so a
consumer-only option (e.g. ``session.timeout.ms``) does not make the producer log warnings.

``redacted`` masks secrets for logging; nothing here logs a configuration unredacted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stockpipe.settings import Settings

# librdkafka options that exist for one role only (scope "C" or "P" in CONFIGURATION.md).
CONSUMER_ONLY: frozenset[str] = frozenset(
    {
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "group.protocol.type",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "auto.offset.reset",
        "consume.callback.max.messages",
    }
)
PRODUCER_ONLY: frozenset[str] = frozenset(
    {
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.ms",
        "linger.ms",
        "message.send.max.retries",
        "retries",
        "queue.buffering.backpressure.threshold",
        "compression.codec",
        "compression.type",
        "compression.level",
        "batch.num.messages",
        "batch.size",
        "delivery.report.only.error",
        "sticky.partitioning.linger.ms",
        "request.required.acks",
        "acks",
        "request.timeout.ms",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "partitioner",
        "max.in.flight.requests.per.connection",
        "max.in.flight",
    }
)

_SECRET_MARKERS = ("password", "secret", "sasl.oauthbearer.config", "ssl.key.pem", "ssl_key")

# Producer defaults tuned for throughput of small (~200 byte) messages.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 262_144,
    "compression.type": "lz4",
    "message.timeout.ms": 120_000,
}

# Consumer defaults. 6 s is the smallest session timeout a default Apache Kafka broker accepts;
# a group (re)join waits about half of it, so the embedded broker gets a shorter one.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1500,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 100,
    "max.partition.fetch.bytes": 4_194_304,
    "queued.max.messages.kbytes": 131_072,
}
EMBEDDED_CONSUMER_DEFAULTS: dict[str, Any] = {
    "session.timeout.ms": 2000,
    "heartbeat.interval.ms": 500,
}


def _common(settings: Settings, bootstrap: str, drop: frozenset[str]) -> dict[str, Any]:
    conf = {k: v for k, v in settings.kafka.client_config().items() if k not in drop}
    conf["bootstrap.servers"] = bootstrap
    return conf


def admin_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Configuration of an ``AdminClient`` (connection and security options only)."""
    return _common(settings, bootstrap, CONSUMER_ONLY | PRODUCER_ONLY)


def producer_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Idempotent, ``acks=all``, batched producer; ``client_options`` may tune batching."""
    conf: dict[str, Any] = dict(PRODUCER_DEFAULTS)
    conf["message.max.bytes"] = settings.kafka.message_max_bytes
    conf.update(_common(settings, bootstrap, CONSUMER_ONLY))
    # The guarantees stockpipe documents: never weakened by client_options.
    conf["enable.idempotence"] = True
    conf["acks"] = "all"
    conf.pop("request.required.acks", None)
    # Delivery callbacks only for failures: successes are counted from flush().
    conf["delivery.report.only.error"] = True
    return conf


def consumer_config(settings: Settings, bootstrap: str, *, embedded: bool = False) -> dict[str, Any]:
    """Consumer-group member with manual commits, starting from the earliest offset."""
    conf: dict[str, Any] = dict(CONSUMER_DEFAULTS)
    if embedded:
        conf.update(EMBEDDED_CONSUMER_DEFAULTS)
    conf["fetch.message.max.bytes"] = max(settings.kafka.message_max_bytes, 1_048_576)
    conf.update(_common(settings, bootstrap, PRODUCER_ONLY))
    # Correctness of the spool depends on these: never taken from client_options.
    conf["group.id"] = settings.kafka.group_id
    conf["enable.auto.commit"] = False
    conf["enable.auto.offset.store"] = False
    conf["auto.offset.reset"] = "earliest"
    conf["enable.partition.eof"] = True
    return conf


def redacted(conf: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``conf`` that is safe to log: every secret-looking value masked."""
    out: dict[str, Any] = {}
    for key, value in conf.items():
        if callable(value):
            out[key] = "<callable>"
        elif any(marker in key.lower() for marker in _SECRET_MARKERS):
            out[key] = "**********"
        else:
            out[key] = value
    return out
