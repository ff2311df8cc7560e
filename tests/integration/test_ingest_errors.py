"""Unreachable clusters fail fast with one sentence naming the address; secrets never leak."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from stockpipe.errors import BrokerUnavailableError
from stockpipe.ingest.broker import free_port
from stockpipe.ingest.topics import ensure_topic
from stockpipe.settings import KafkaSettings, Settings

pytestmark = pytest.mark.integration


def _unreachable(settings: Settings, **kafka: object) -> tuple[Settings, str]:
    address = f"127.0.0.1:{free_port()}"
    kafka_settings = KafkaSettings.model_validate({"bootstrap_servers": address, **kafka})
    return settings.model_copy(update={"kafka": kafka_settings}), address


def test_unreachable_broker_is_a_bounded_clear_error(settings: Settings) -> None:
    s, address = _unreachable(settings)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=address):
        ensure_topic(s, timeout=2)
    assert time.monotonic() - started < 8


def test_sasl_settings_reach_the_client_and_fail_clearly(settings: Settings) -> None:
    s, address = _unreachable(
        settings,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="user",
        sasl_password=SecretStr("hunter2-secret"),
    )
    with pytest.raises(BrokerUnavailableError, match=address) as info:
        ensure_topic(s, timeout=2)
    assert "hunter2-secret" not in str(info.value)


def test_bad_client_option_is_rejected_by_the_client(kafka_settings: Settings) -> None:
    """client_options are really handed to librdkafka: an unknown property is refused by it."""
    from confluent_kafka import KafkaException

    kafka = kafka_settings.kafka.model_copy(update={"client_options": {"no.such.property": "1"}})
    with pytest.raises(KafkaException, match=r"no\.such\.property"):
        ensure_topic(kafka_settings.model_copy(update={"kafka": kafka}))


def test_cli_error_is_one_sentence_without_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    address = f"127.0.0.1:{free_port()}"
    env.update(
        {"STOCKPIPE_DATA_DIR": str(tmp_path), "STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS": address,
         "STOCKPIPE_CONFIG": str(tmp_path / "none.toml"), "COLUMNS": "300"}
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", "from stockpipe.cli import main; main()", "consume"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert address in proc.stderr
    assert "error:" in proc.stderr
