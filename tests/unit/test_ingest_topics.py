"""The reason ``connect_admin`` gives for an unreachable cluster names the cause."""

from __future__ import annotations

import socket

import pytest

from stockpipe.errors import BrokerUnavailableError
from stockpipe.ingest.topics import connect_admin, error_reason
from stockpipe.settings import Settings


def test_the_cause_wins_over_librdkafkas_all_brokers_down_summary() -> None:
    from confluent_kafka import KafkaError

    refused = KafkaError(
        KafkaError._TRANSPORT, "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused"
    )
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    assert "Connection refused" in (error_reason([refused, down]) or "")
    assert "Connection refused" in (error_reason([down, refused, down]) or "")
    assert error_reason([down]) == "1/1 brokers are down"  # nothing better: the summary
    assert error_reason([]) is None


def test_a_closed_port_is_reported_as_refused(settings: Settings) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BrokerUnavailableError, match="Connection refused") as info:
        connect_admin(settings, f"127.0.0.1:{port}", timeout=3)
    assert f"127.0.0.1:{port}" in str(info.value)
