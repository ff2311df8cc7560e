"""The Snowflake path against fakesnow's HTTP server (the connector's real protocol code runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from stockpipe.errors import ConfigError
from stockpipe.gold.runner import run_quality, run_transform
from stockpipe.settings import Settings, SnowflakeSettings
from stockpipe.warehouse import snowflake as sf_module
from stockpipe.warehouse.base import WarehouseUnavailableError
from stockpipe.warehouse.loader import run_load
from stockpipe.warehouse.snowflake import SnowflakeWarehouse
from tests.fixtures.warehouse import BuiltWarehouse, FakesnowServer, settings_for
from tests.helpers_silver import write_silver

pytestmark = pytest.mark.integration

RAW = ("STOCK_PRICES", "COMPANIES", "QUARANTINE_SUMMARY", "LOAD_HISTORY")


def sf_settings(lake_uri: str, data_dir: Path, sf: SnowflakeSettings) -> Settings:
    return settings_for(lake_uri, data_dir, warehouse={"kind": "snowflake"}, snowflake=sf.model_dump())


def fetch(sf: SnowflakeSettings, sql: str) -> list[tuple[Any, ...]]:
    with SnowflakeWarehouse.open(sf) as wh:
        return wh.query(sql)


def raw_snapshot(sf: SnowflakeSettings) -> dict[str, list[tuple[Any, ...]]]:
    db = sf.database
    return {t: sorted(fetch(sf, f'select * from "{db}"."RAW"."{t}"'), key=repr) for t in RAW}


@pytest.mark.slow
def test_load_transform_quality_on_fakesnow_matches_duckdb(
    fakesnow_server: FakesnowServer, duckdb_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    sf = fakesnow_server.snowflake("PIPELINE")
    settings = sf_settings(duckdb_warehouse.dataset.lake_uri, tmp_path / "data", sf)

    first = run_load(settings)
    assert first.target.startswith("snowflake:fakesnow@")
    assert first.rows_loaded == duckdb_warehouse.dataset.stock_prices.num_rows
    before = raw_snapshot(sf)
    second = run_load(settings)
    assert (second.partitions_loaded, second.rows_loaded) == (0, 0)
    assert raw_snapshot(sf) == before
    # no staging leftovers in the raw schema
    tables = {
        r[0]
        for r in fetch(
            sf, "select table_name from PIPELINE.information_schema.tables where table_schema = 'RAW'"
        )
    }
    assert tables == {*RAW, "DBT_RESULTS", "FRESHNESS"}

    built = run_transform(settings)
    assert built.success, [(n.name, n.message) for n in built.failed]
    again = run_transform(settings)  # the incremental path of fact_stock on Snowflake
    assert again.success, [(n.name, n.message) for n in again.failed]
    checked = run_quality(settings)
    assert checked.success, [(n.name, n.message) for n in checked.failed]
    assert len(checked.passed) > 60

    columns = "symbol, trade_date, open, high, low, close, volume, bar_count, vwap"
    mart = fetch(sf, f"select {columns} from PIPELINE.GOLD.MART_DAILY_OHLCV")
    with duckdb.connect(str(duckdb_warehouse.settings.duckdb_path), read_only=True) as con:
        local = con.execute(f"select {columns} from gold.mart_daily_ohlcv").fetchall()
        local_keys = con.execute("select id, date_key from gold.fact_stock").fetchall()
    assert sorted(r[:8] for r in mart) == sorted(r[:8] for r in local)
    vwap_sf = {r[:2]: r[8] for r in mart}
    for r in local:
        if r[8] is None:  # a day without volume has no VWAP
            assert vwap_sf[r[:2]] is None
        else:
            assert vwap_sf[r[:2]] == pytest.approx(r[8], rel=1e-9)
    assert sorted(fetch(sf, "select id, date_key from PIPELINE.GOLD.FACT_STOCK")) == sorted(local_keys)
    recorded = fetch(sf, "select invocation, count(*) from PIPELINE.RAW.DBT_RESULTS group by invocation")
    assert dict(recorded)["quality"] == len(checked.nodes)


def _key_file(tmp_path: Path, passphrase: bytes) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa_key.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return path


def test_key_pair_authentication_loads(fakesnow_server: FakesnowServer, tmp_path: Path) -> None:
    """The connector builds its JWT from an encrypted PKCS#8 key (fakesnow accepts any login)."""
    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=3)
    key = _key_file(tmp_path, b"correct horse")
    sf = fakesnow_server.snowflake(
        "KEYPAIR", password=None, private_key_path=str(key), private_key_passphrase="correct horse"
    )
    result = run_load(sf_settings(ds.lake_uri, tmp_path / "data", sf))
    assert result.rows_loaded == ds.stock_prices.num_rows
    assert fetch(sf, "select count(*) from KEYPAIR.RAW.STOCK_PRICES") == [(ds.stock_prices.num_rows,)]

    wrong = sf.model_copy(update={"private_key_passphrase": "wrong"})
    with pytest.raises(ConfigError, match="Cannot use the Snowflake private key") as err:
        run_load(sf_settings(ds.lake_uri, tmp_path / "data2", wrong))
    assert str(key) in str(err.value)


def test_changed_partition_replaces_rows_on_snowflake(
    fakesnow_server: FakesnowServer, tmp_path: Path
) -> None:
    ds = write_silver(tmp_path / "lake", days=3, bars_per_day=3)
    sf = fakesnow_server.snowflake("CHANGES")
    settings = sf_settings(ds.lake_uri, tmp_path / "data", sf)
    run_load(settings)
    d1 = ds.trade_dates[1]
    ds.replace_partition(d1, ds.partition(d1).slice(2))
    result = run_load(settings)
    assert result.partitions_loaded == 1
    assert result.partitions_skipped == 2 + 1 + 3
    counts = dict(fetch(sf, "select trade_date, count(*) from CHANGES.RAW.STOCK_PRICES group by trade_date"))
    assert counts == {d: ds.partition(d).num_rows for d in ds.trade_dates}


def test_unreachable_snowflake_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sf_module, "LOGIN_TIMEOUT_S", 5)
    sf = SnowflakeSettings(
        account="fakesnow", user="u", password="p", host="127.0.0.1", port=1, protocol="http"
    )
    ds = write_silver(tmp_path / "lake", days=1, bars_per_day=1)
    settings = sf_settings(ds.lake_uri, tmp_path / "data", sf)
    with pytest.raises(
        WarehouseUnavailableError, match="Cannot connect to Snowflake account fakesnow"
    ) as err:
        run_load(settings)
    assert "\n" not in str(err.value)
    assert not (settings.state_dir / "warehouse_load_state.json").exists()
