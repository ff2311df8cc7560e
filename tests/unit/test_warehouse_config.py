"""Connection parameters, generated dbt profiles and identifier validation (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic import ValidationError

from stockpipe.errors import ConfigError
from stockpipe.gold import runner as dbt_runner
from stockpipe.settings import InvalidIdentifierError, Settings, SnowflakeSettings
from stockpipe.warehouse.snowflake import SnowflakeWarehouse, connect_params

INJECTION = 'x"; drop table y; --'


def test_injected_schema_name_is_refused_by_settings(settings: Settings) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(warehouse={"raw_schema": INJECTION}, _env_file=None)
    assert "not a plain identifier" in str(err.value)
    with pytest.raises(ValidationError):
        SnowflakeSettings(raw_schema=INJECTION)


def test_injected_identifier_is_refused_when_quoting() -> None:
    wh = SnowflakeWarehouse.__new__(SnowflakeWarehouse)
    assert wh.ident("stock_prices") == '"STOCK_PRICES"'
    with pytest.raises(InvalidIdentifierError, match="not a plain identifier"):
        wh.ident(INJECTION)


def test_password_connection_parameters() -> None:
    sf = SnowflakeSettings(
        account="acme-xy123",
        user="LOADER",
        password="s3cret",
        role="LOADER_ROLE",
        warehouse="WH",
        database="DB",
    )
    params = connect_params(sf)
    assert params["password"] == "s3cret"
    assert params["paramstyle"] == "qmark"
    assert (params["database"], params["schema"], params["role"], params["warehouse"]) == (
        "DB",
        "RAW",
        "LOADER_ROLE",
        "WH",
    )
    assert "authenticator" not in params
    assert "protocol" not in params  # only with an explicit host


def test_key_pair_connection_parameters(tmp_path: Path) -> None:
    key = tmp_path / "key.p8"
    sf = SnowflakeSettings(account="a", user="u", private_key_path=str(key), private_key_passphrase="pp")
    params = connect_params(sf)
    assert params["authenticator"] == "SNOWFLAKE_JWT"
    assert params["private_key_file"] == str(key)
    assert params["private_key_file_pwd"] == "pp"
    assert "password" not in params


def test_missing_credentials_are_one_sentence_config_errors() -> None:
    with pytest.raises(ConfigError, match="account and a user"):
        connect_params(SnowflakeSettings(user="u", password="p"))
    with pytest.raises(ConfigError, match="password or a private key") as err:
        connect_params(SnowflakeSettings(account="a", user="u"))
    assert str(err.value).endswith(".")


def test_generated_profiles_hold_no_secret(settings: Settings) -> None:
    sf_settings = settings.model_copy(
        update={
            "snowflake": SnowflakeSettings(
                account="a", user="u", password="hunter2-secret", host="localhost", port=1
            ),
        }
    )
    folder = dbt_runner.write_profiles(sf_settings)
    text = (folder / "profiles.yml").read_text()
    assert "hunter2-secret" not in text
    assert yaml.safe_load(text)["stockpipe"]["outputs"]["snowflake"]["password"] == (
        '{{ env_var("' + dbt_runner.SECRET_PASSWORD_ENV + '") }}'
    )
    assert folder == settings.state_dir / "dbt"
    doc = dbt_runner.profile_document(sf_settings)["stockpipe"]
    assert doc["target"] == "duckdb"
    assert doc["outputs"]["duckdb"]["path"] == str(settings.duckdb_path)
    assert doc["outputs"]["snowflake"]["protocol"] == "https"
    assert dbt_runner._secret_env(sf_settings) == {dbt_runner.SECRET_PASSWORD_ENV: "hunter2-secret"}


def test_duckdb_only_profile_and_vars(settings: Settings) -> None:
    doc = dbt_runner.profile_document(settings)["stockpipe"]
    assert set(doc["outputs"]) == {"duckdb"}
    assert dbt_runner.dbt_vars(settings) == {
        "raw_schema": "raw",
        "gold_schema": "gold",
        "staging_schema": "staging",
    }
    sf = settings.model_copy(
        update={"warehouse": settings.warehouse.model_copy(update={"kind": "snowflake"})}
    )
    assert dbt_runner.dbt_vars(sf)["raw_schema"] == "RAW"


def test_dbt_result_classifies_statuses() -> None:
    nodes = [
        dbt_runner.DbtNodeResult("m.a", "a", "model", "success"),
        dbt_runner.DbtNodeResult("t.b", "b", "test", "fail", "Got 1 result", 1),
        dbt_runner.DbtNodeResult("t.c", "c", "test", "warn"),
        dbt_runner.DbtNodeResult("s.d", "raw.d", "source", "runtime error"),
        dbt_runner.DbtNodeResult("m.e", "e", "model", "skipped"),
    ]
    result = dbt_runner.DbtResult("quality", False, nodes)
    assert result.counts() == {"passed": 1, "warned": 1, "failed": 2, "skipped": 1}
    assert [n.name for n in result.failed] == ["b", "raw.d"]
