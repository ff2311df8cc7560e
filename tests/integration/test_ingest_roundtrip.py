"""Produce -> consume -> upload on the real broker: exactly N records, verbatim values."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockpipe.contract.spool import spool_batches, spool_files
from stockpipe.ingest.consumer import EarlyJoin, FlushSignal, consume_to_spool
from stockpipe.ingest.producer import produce_bars, produce_raw
from stockpipe.lake.bronze import read_manifest, upload_spool
from stockpipe.settings import Settings
from tests.fixtures.kafka import bronze_offsets, bronze_table, make_bars

pytestmark = pytest.mark.integration
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "bar.schema.json"


def test_n_bars_land_in_bronze_exactly_once(kafka_settings: Settings) -> None:
    bars = make_bars(3000)
    progress: list[int] = []
    sent = produce_bars(kafka_settings, bars, on_progress=progress.append)
    assert (sent.sent, sent.failed, sent.first_error) == (3000, 0, None)
    assert sum(progress) == 3000
    consumed = consume_to_spool(kafka_settings, flush_records=400)
    assert consumed.records == 3000
    assert consumed.files == len(spool_files(kafka_settings.spool_dir)) > 3
    up = upload_spool(kafka_settings)
    assert (up.files, up.records) == (consumed.files, 3000)
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == 3000
    values = bronze_table(kafka_settings, ["value"])["value"].to_pylist()
    assert sorted(values) == sorted(b.to_json_bytes() for b in bars)
    assert sum(e.records for e in read_manifest(kafka_settings)) == 3000
    # a second pass finds nothing new and publishes nothing twice
    again = consume_to_spool(kafka_settings, timeout=3)
    assert again.records == 0
    assert upload_spool(kafka_settings).files == 0
    assert len(bronze_offsets(kafka_settings)) == 3000


def test_non_json_and_tombstone_reach_bronze_unchanged(kafka_settings: Settings) -> None:
    raw = [(b"AAPL", b"this is { not json"), (b"AAPL", None), (None, b"\x00\xff\xfebinary"), (b"X", b"")]
    assert produce_raw(kafka_settings, raw).sent == 4
    produce_bars(kafka_settings, make_bars(3))
    assert consume_to_spool(kafka_settings).records == 7
    upload_spool(kafka_settings)
    table = bronze_table(kafka_settings, ["key", "value", "topic", "kafka_ts"])
    pairs = list(zip(table["key"].to_pylist(), table["value"].to_pylist(), strict=True))
    for item in raw:
        assert item in pairs
    assert table["topic"].to_pylist() == [kafka_settings.kafka.topic] * 7
    assert None not in table["kafka_ts"].to_pylist()


def test_every_produced_message_validates_against_the_schema_file(kafka_settings: Settings) -> None:
    import jsonschema
    from confluent_kafka import Consumer, TopicPartition

    bars = make_bars(250)
    produce_bars(kafka_settings, bars)
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    consumer = Consumer(
        {"bootstrap.servers": kafka_settings.kafka.bootstrap_servers, "group.id": "schema-check",
         "enable.partition.eof": True, "enable.auto.commit": False}
    )  # fmt: skip
    parts = [TopicPartition(kafka_settings.kafka.topic, p, 0) for p in range(kafka_settings.kafka.partitions)]
    consumer.assign(parts)
    seen: list[tuple[Any, Any]] = []
    eof: set[Any] = set()
    deadline = time.monotonic() + 30
    while len(eof) < len(parts) and time.monotonic() < deadline:
        for m in consumer.consume(500, timeout=0.5):
            if m.error():
                eof.add(m.partition())
                continue
            seen.append((m.key(), m.value()))
    consumer.close()
    assert len(seen) == 250
    for key, value in seen:
        doc = json.loads(value)
        validator.validate(doc)
        assert key == doc["symbol"].encode()
    assert validator.is_valid({**json.loads(seen[0][1]), "bar_ts": "2024-01-02T14:30:00"}) is False


def test_max_messages_then_rest_without_overlap(kafka_settings: Settings) -> None:
    produce_bars(kafka_settings, make_bars(300))
    first = consume_to_spool(kafka_settings, max_messages=100)
    assert first.records == 100
    rest = consume_to_spool(kafka_settings)
    assert rest.records == 200
    upload_spool(kafka_settings)
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == 300


@contextlib.contextmanager
def _following(settings: Settings, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """``consume_to_spool(follow=True, **kwargs)`` in a thread for the block; stopped and joined after."""
    stop, out = threading.Event(), {}

    def run() -> None:
        out["result"] = consume_to_spool(settings, follow=True, stop=stop, **kwargs)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield out
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def _wait_for(done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(0.05)


def test_follow_mode_flushes_on_time_and_stops_on_event(kafka_settings: Settings) -> None:
    with _following(kafka_settings, flush_seconds=0.3) as out:
        produce_bars(kafka_settings, make_bars(40))
        _wait_for(lambda: _spooled(kafka_settings) >= 40)
        assert _spooled(kafka_settings) == 40  # flushed by time while still running
    assert out["result"].records == 40


def test_a_flush_signal_writes_what_a_following_consumer_holds_now(kafka_settings: Settings) -> None:
    signal, received = FlushSignal(), []
    with _following(kafka_settings, flush_seconds=600, on_progress=received.append, flush_signal=signal):
        produce_bars(kafka_settings, make_bars(25))
        _wait_for(lambda: sum(received) >= 25)
        assert sum(received) == 25
        assert _spooled(kafka_settings) == 0  # held: the buffers are far younger than 600 s
        assert signal.request(timeout=5)
        assert _spooled(kafka_settings) == 25  # written (and committed) before request returned
        assert signal.request(timeout=5)  # nothing held: still answered
        assert _spooled(kafka_settings) == 25
    assert not FlushSignal().request(timeout=0.1)  # no consumer serving it: False, not a hang


def _spooled(settings: Settings) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in spool_files(settings.spool_dir))


def test_a_consumer_that_joined_early_reads_nothing_until_taken_then_everything_once(
    kafka_settings: Settings,
) -> None:
    """``stockpipe run``'s consumer joins the group during the producer step (EarlyJoin)."""
    first = make_bars(300)
    produce_bars(kafka_settings, first)
    assert consume_to_spool(kafka_settings).records == 300  # committed: the early join starts after these
    upload_spool(kafka_settings)
    early = EarlyJoin()
    early.start(kafka_settings)
    _wait_for(early.assigned)
    bars = make_bars(700, ("AMD", "INTC", "ORCL"))
    assert produce_bars(kafka_settings, bars).sent == 700
    time.sleep(1.0)  # the held consumer keeps polling: it must not read (or write) anything
    assert early.held_records() == 0
    assert spool_files(kafka_settings.spool_dir) == []
    consumed = consume_to_spool(kafka_settings, early=early)
    assert consumed.records == 700
    upload_spool(kafka_settings)
    offsets = bronze_offsets(kafka_settings)
    assert len(offsets) == len(set(offsets)) == 1000
    values = bronze_table(kafka_settings, ["value"])["value"].to_pylist()
    assert sorted(values) == sorted(b.to_json_bytes() for b in [*first, *bars])
    early.close()  # already taken: nothing left to close
    assert consume_to_spool(kafka_settings, timeout=3).records == 0


def test_an_early_consumer_that_is_never_taken_leaves_the_group_on_close(kafka_settings: Settings) -> None:
    early = EarlyJoin()
    early.start(kafka_settings)
    _wait_for(early.assigned)
    early.close()  # as when the producer step fails
    assert produce_bars(kafka_settings, make_bars(200)).sent == 200
    assert consume_to_spool(kafka_settings).records == 200
    assert EarlyJoin().take() is None  # never started


def test_run_pipeline_hands_the_consumer_step_a_consumer_opened_during_the_producer_step(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring of EarlyJoin in ``run``: the producer step starts the join, the consumer step
    takes that consumer (whether its assignment also arrives before the consumer step is a race
    with the producer's duration; the paused-until-taken behaviour is the test above)."""
    from stockpipe.orchestration.pipeline import KAFKA_CONSUMER, KAFKA_PRODUCER, RunOptions, run_pipeline

    taken: list[bool] = []
    take = EarlyJoin.take

    def spy(self: EarlyJoin) -> Any:
        joined = take(self)
        taken.append(joined is not None)
        return joined

    monkeypatch.setattr(EarlyJoin, "take", spy)
    options = RunOptions(symbols=("AAPL", "MSFT"))
    results = run_pipeline(kafka_settings, options, steps=(KAFKA_PRODUCER, KAFKA_CONSUMER))
    sent, consumed = results[0].counts["bars_sent"], results[1].counts["records"]
    assert sent == consumed > 0
    assert taken == [True]
    batches = spool_batches(kafka_settings.spool_dir)  # only the two Kafka steps ran: all in the spool
    assert sum(b.last - b.first + 1 for b in batches) == sent
    # a run without the producer step opens its consumer in the step, as before
    taken.clear()
    run_pipeline(kafka_settings, options, steps=(KAFKA_CONSUMER,))
    assert taken == []
