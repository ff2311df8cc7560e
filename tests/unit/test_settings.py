from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockpipe.settings import InvalidIdentifierError, Settings, quote_identifier


def test_env_vars_map_to_nested_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("STOCKPIPE_KAFKA_SASL_PASSWORD", "sentinel-sasl-pw")
    monkeypatch.setenv("STOCKPIPE_KAFKA_CLIENT_OPTIONS", '{"linger.ms": "20"}')
    monkeypatch.setenv("STOCKPIPE_SPARK_MASTER", "spark://127.0.0.1:7077")
    monkeypatch.setenv("STOCKPIPE_ALPHAVANTAGE_API_KEY", "sentinel-api-key")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.data_dir == tmp_path
    assert s.spark.master == "spark://127.0.0.1:7077"
    conf = s.kafka.client_config()
    assert conf["bootstrap.servers"] == "k1:9092,k2:9092"
    assert conf["sasl.password"] == "sentinel-sasl-pw"
    assert conf["linger.ms"] == "20"
    masked = repr(s.masked()) + repr(s)
    assert "sentinel-sasl-pw" not in masked
    assert "sentinel-api-key" not in masked


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "stockpipe.toml"
    toml.write_text('[kafka]\ntopic = "from-toml"\npartitions = 6\n[spark]\nmaster = "local[2]"\n')
    monkeypatch.setenv("STOCKPIPE_CONFIG", str(toml))
    monkeypatch.setenv("STOCKPIPE_SPARK_MASTER", "local[1]")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.kafka.topic, s.kafka.partitions, s.spark.master) == ("from-toml", 6, "local[1]")


def test_derived_locations(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert s.lake_root == (tmp_path / "lake").as_uri()
    assert s.duckdb_path == tmp_path / "warehouse.duckdb"
    s2 = Settings(data_dir=tmp_path, lake={"root": "hdfs://nn:8020/stock/"}, _env_file=None)  # type: ignore[call-arg]
    assert s2.lake_root == "hdfs://nn:8020/stock"


@pytest.mark.parametrize("bad", ['x"; drop table y; --', "a b", "1abc", ""])
def test_identifiers_are_refused_clearly(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError, match="not a plain identifier"):
        quote_identifier(bad, "schema name")
    with pytest.raises(ValidationError):
        Settings(warehouse={"raw_schema": bad}, _env_file=None)  # type: ignore[call-arg]


def test_bad_topic_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(kafka={"topic": "stock prices; rm"}, _env_file=None)  # type: ignore[call-arg]
    assert quote_identifier("RAW") == '"RAW"'


def test_spark_connect_settings_default_and_remote_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from stockpipe.settings import SparkSettings, redact_url

    defaults = SparkSettings()
    assert (defaults.mode, defaults.keep_warm, defaults.idle_timeout_minutes) == ("connect", True, 30)
    assert defaults.remote is None
    token = "dapi0123456789secret"
    monkeypatch.setenv(
        "STOCKPIPE_SPARK_REMOTE", f"sc://adb-1.azuredatabricks.net:443/;token={token};use_ssl=true"
    )
    monkeypatch.setenv("STOCKPIPE_SPARK_MODE", "classic")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.spark.mode == "classic"
    assert s.spark.remote is not None
    assert token in s.spark.remote.get_secret_value()
    shown = json.dumps(s.masked())
    assert token not in shown
    assert "sc://adb-1.azuredatabricks.net:443/;token=***;use_ssl=true" in shown
    assert token not in repr(s)
    assert token not in str(s.spark)
    assert redact_url("sc://u:pw@h:1/;password=x") == "sc://***@h:1/;password=***"
