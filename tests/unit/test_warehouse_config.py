"""Connection parameters, the committed dbt profile and identifier validation (no database)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
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


def render_profile(target: str | None = None) -> Any:
    """The committed dbt/profiles.yml rendered by dbt itself, with the current environment."""
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_flags
    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))
    set_flags(Namespace(LOG_CACHE_EVENTS=False))
    raw = read_profile(str(dbt_runner.SHIPPED_PROJECT_DIR))
    return Profile.from_raw_profiles(raw, "stockpipe", ProfileRenderer({}), target_override=target)


def test_committed_profile_holds_no_secret_and_reads_settings(settings: Settings) -> None:
    sf_settings = settings.model_copy(
        update={
            "snowflake": SnowflakeSettings(
                account="a", user="u", password="hunter2-secret", host="localhost", port=1, protocol="http"
            ),
        }
    )
    text = (dbt_runner.SHIPPED_PROJECT_DIR / "profiles.yml").read_text()
    assert "hunter2-secret" not in text
    assert dbt_runner.profiles_dir(settings) == dbt_runner.SHIPPED_PROJECT_DIR
    env = dbt_runner.profile_env(sf_settings)
    assert env[dbt_runner.SECRET_PASSWORD_ENV] == "hunter2-secret"
    assert env["STOCKPIPE_SNOWFLAKE_PASSWORD"] is None  # only under dbt's secret prefix
    with dbt_runner._environment(env):
        duck = render_profile()
        snow = render_profile("snowflake")
    assert os.environ.get(dbt_runner.SECRET_PASSWORD_ENV) is None
    assert duck.target_name == "duckdb"
    assert Path(duck.credentials.path) == settings.duckdb_path
    assert duck.credentials.schema == "gold"
    creds = snow.credentials
    assert (creds.account, creds.user, creds.password) == ("a", "u", "hunter2-secret")
    assert (creds.host, creds.port, creds.protocol) == ("localhost", 1, "http")
    assert (creds.database, creds.schema, creds.role, creds.warehouse) == ("STOCKPIPE", "GOLD", None, None)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"STOCKPIPE_DATA_DIR": "elsewhere/data"},
        {"STOCKPIPE_DUCKDB_PATH": "wh/one.duckdb"},
        {"STOCKPIPE_DATA_DIR": "ignored", "STOCKPIPE_DUCKDB_PATH": "/abs/two.duckdb"},
    ],
)
def test_dbt_cli_and_stockpipe_resolve_one_duckdb_file(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without stockpipe in between (dbt's own CLI), the profile finds the file stockpipe uses."""
    for name in list(os.environ):
        if name.startswith(("STOCKPIPE_", "DBT_ENV_SECRET_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # both resolve a relative path against the working folder
    monkeypatch.setenv("STOCKPIPE_CONFIG", str(tmp_path / "none.toml"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rendered = render_profile()
    assert rendered.target_name == "duckdb"
    assert Path(rendered.credentials.path).resolve() == Settings(_env_file=None).duckdb_path  # type: ignore[call-arg]
    monkeypatch.setenv("STOCKPIPE_WAREHOUSE_KIND", "snowflake")
    monkeypatch.setenv("STOCKPIPE_SNOWFLAKE_ACCOUNT", "acct")
    monkeypatch.setenv("STOCKPIPE_SNOWFLAKE_USER", "me")
    monkeypatch.setenv("STOCKPIPE_SNOWFLAKE_PASSWORD", "pw")
    monkeypatch.setenv("STOCKPIPE_SNOWFLAKE_DATABASE", "mydb")
    snow = render_profile()
    creds = snow.credentials
    assert (snow.target_name, creds.password, creds.database) == ("snowflake", "pw", "MYDB")


def test_duckdb_vars(settings: Settings) -> None:
    assert dbt_runner.dbt_vars(settings) == {
        "raw_schema": "raw",
        "gold_schema": "gold",
        "staging_schema": "staging",
        "freshness_warn_hours": 24,
        "freshness_error_hours": 72,
        "freshness_live_window_hours": 96,
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
