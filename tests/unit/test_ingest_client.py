"""Client configuration: pass-through of security options, role filtering, enforced guarantees."""

from __future__ import annotations

from pydantic import SecretStr

from stockpipe.ingest.client import admin_config, consumer_config, producer_config, redacted
from stockpipe.settings import KafkaSettings, Settings


def _settings(settings: Settings, **kafka: object) -> Settings:
    return settings.model_copy(update={"kafka": KafkaSettings.model_validate(kafka)})


def test_security_and_client_options_reach_every_role(settings: Settings) -> None:
    s = _settings(
        settings,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="alice",
        sasl_password=SecretStr("s3cret"),
        ssl_ca_location="/etc/ca.pem",
        client_options={"client.id": "abc", "socket.keepalive.enable": "true"},
    )
    for conf in (
        admin_config(s, "h:1"),
        producer_config(s, "h:1"),
        consumer_config(s, "h:1"),
    ):
        assert conf["bootstrap.servers"] == "h:1"
        assert conf["security.protocol"] == "SASL_SSL"
        assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
        assert conf["sasl.username"] == "alice"
        assert conf["sasl.password"] == "s3cret"
        assert conf["ssl.ca.location"] == "/etc/ca.pem"
        assert conf["client.id"] == "abc"
        assert conf["socket.keepalive.enable"] == "true"


def test_role_only_options_go_to_their_role(settings: Settings) -> None:
    s = _settings(settings, client_options={"session.timeout.ms": "7000", "linger.ms": "50"})
    assert consumer_config(s, "h:1")["session.timeout.ms"] == "7000"
    assert "linger.ms" not in consumer_config(s, "h:1")
    assert producer_config(s, "h:1")["linger.ms"] == "50"
    assert "session.timeout.ms" not in producer_config(s, "h:1")
    admin = admin_config(s, "h:1")
    assert "linger.ms" not in admin
    assert "session.timeout.ms" not in admin


def test_guarantees_cannot_be_weakened(settings: Settings) -> None:
    s = _settings(
        settings,
        group_id="mine",
        client_options={
            "enable.idempotence": "false",
            "acks": "1",
            "request.required.acks": "1",
            "enable.auto.commit": "true",
            "group.id": "other",
            "auto.offset.reset": "latest",
        },
    )
    prod = producer_config(s, "h:1")
    assert prod["enable.idempotence"] is True
    assert prod["acks"] == "all"
    assert "request.required.acks" not in prod
    cons = consumer_config(s, "h:1")
    assert cons["enable.auto.commit"] is False
    assert cons["group.id"] == "mine"
    assert cons["auto.offset.reset"] == "earliest"
    assert cons["enable.partition.eof"] is True


def test_embedded_consumer_uses_short_group_timeouts(settings: Settings) -> None:
    s = _settings(settings)
    assert (
        consumer_config(s, "h:1", embedded=True)["session.timeout.ms"]
        < consumer_config(s, "h:1")["session.timeout.ms"]
    )


def test_redacted_masks_secrets(settings: Settings) -> None:
    s = _settings(
        settings,
        sasl_password=SecretStr("pw-1"),
        ssl_key_password=SecretStr("pw-2"),
        sasl_username="bob",
    )
    conf = producer_config(s, "h:1")
    conf["error_cb"] = print
    text = repr(redacted(conf))
    assert "pw-1" not in text
    assert "pw-2" not in text
    assert "bob" in text
    assert redacted(conf)["error_cb"] == "<callable>"
