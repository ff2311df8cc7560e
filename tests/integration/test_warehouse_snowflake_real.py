"""Load + transform + quality against a real Snowflake account (only when configured).

Set STOCKPIPE_TEST_SNOWFLAKE_ACCOUNT, _USER and _PASSWORD (or _PRIVATE_KEY_PATH and
_PRIVATE_KEY_PASSPHRASE); optional _ROLE, _WAREHOUSE, _DATABASE (default STOCKPIPE_TEST, must
exist). The test works in fresh RAW_<id>/GOLD_<id> schemas and drops them afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from stockpipe.gold.runner import run_quality, run_transform
from stockpipe.settings import SnowflakeSettings
from stockpipe.warehouse.loader import run_load
from stockpipe.warehouse.snowflake import SnowflakeWarehouse
from tests.fixtures.warehouse import settings_for
from tests.helpers_silver import write_silver

PREFIX = "STOCKPIPE_TEST_SNOWFLAKE_"
configured = bool(os.environ.get(PREFIX + "ACCOUNT") and os.environ.get(PREFIX + "USER")) and bool(
    os.environ.get(PREFIX + "PASSWORD") or os.environ.get(PREFIX + "PRIVATE_KEY_PATH")
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.snowflake_real,
    pytest.mark.slow,
    pytest.mark.skipif(
        not configured,
        reason="needs STOCKPIPE_TEST_SNOWFLAKE_ACCOUNT, _USER and _PASSWORD or _PRIVATE_KEY_PATH",
    ),
]


def _env(name: str) -> str | None:
    return os.environ.get(PREFIX + name) or None


def test_real_snowflake_load_transform_quality(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8].upper()
    sf = SnowflakeSettings(
        account=_env("ACCOUNT"),
        user=_env("USER"),
        password=_env("PASSWORD"),
        private_key_path=_env("PRIVATE_KEY_PATH"),
        private_key_passphrase=_env("PRIVATE_KEY_PASSPHRASE"),
        role=_env("ROLE"),
        warehouse=_env("WAREHOUSE"),
        database=_env("DATABASE") or "STOCKPIPE_TEST",
        raw_schema=f"RAW_{suffix}",
        gold_schema=f"GOLD_{suffix}",
    )
    ds = write_silver(tmp_path / "lake", days=3, bars_per_day=10)
    settings = settings_for(
        ds.lake_uri, tmp_path / "data", warehouse={"kind": "snowflake"}, snowflake=sf.model_dump()
    )
    try:
        first = run_load(settings)
        assert first.rows_loaded == ds.stock_prices.num_rows
        assert run_load(settings).partitions_loaded == 0
        assert run_transform(settings).success
        result = run_quality(settings)
        assert result.success, [(n.name, n.message) for n in result.failed]
        with SnowflakeWarehouse.open(sf) as wh:
            rows = wh.query(f"select count(*) from {wh.qualified('fact_stock', sf.gold_schema)}")
        assert rows == [(ds.stock_prices.num_rows,)]
    finally:
        with SnowflakeWarehouse.open(sf) as wh:
            for schema in (sf.raw_schema, sf.gold_schema):
                wh.execute(f"drop schema if exists {wh.schema_ref(schema)}")
