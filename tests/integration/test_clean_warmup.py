"""Warm-up cleans (``clean/warmup.py``): real ``run_clean`` rounds on a scratch lake, never the real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from stockpipe.clean.warmup import BAD_RECORDS, BARS_PER_SYMBOL, SYMBOLS, WarmUp, applies
from stockpipe.settings import Settings

pytestmark = pytest.mark.integration


def _rows(lake_uri: str, dataset: str) -> int:
    path = Path(lake_uri.removeprefix("file://")) / "silver" / dataset
    return pq.read_table(path).num_rows if path.exists() else 0


def test_warm_up_runs_only_on_the_local_connect_server(settings: Settings) -> None:
    settings.spark.mode = "connect"
    assert applies(settings)
    settings.spark.warm_up_rounds = 0
    assert not applies(settings)
    settings.spark.warm_up_rounds = 3
    settings.spark.mode = "classic"
    assert not applies(settings)
    settings.spark.mode = "connect"
    settings.spark.remote = SecretStr("sc://cluster.example:15002")
    assert not applies(settings)  # a remote server may not see this machine's scratch folder
    assert not WarmUp(settings).pending


def test_warm_up_rounds_clean_a_scratch_lake_and_never_the_real_one(settings: Settings, spark: Any) -> None:
    settings.spark.mode = "connect"  # the gate; the session handed in is the test's local one
    settings.spark.warm_up_rounds = 3
    warm = WarmUp(settings)
    scratch = warm.scratch_settings().lake_root

    assert warm.run_round(spark) is not None
    assert _rows(scratch, "stock_prices") == SYMBOLS * BARS_PER_SYMBOL
    assert _rows(scratch, "quarantine") == len(BAD_RECORDS)

    assert warm.run_round(spark) is not None
    # round 2's bars start 5 minutes later: half of them replace round 1's, half are new
    assert _rows(scratch, "stock_prices") == SYMBOLS * (BARS_PER_SYMBOL + 5)
    assert _rows(scratch, "quarantine") == 2 * len(BAD_RECORDS)

    assert warm.run_round(spark) is not None
    assert not warm.pending
    assert warm.run_round(spark) is None  # no rounds left
    assert not Path(scratch.removeprefix("file://")).exists()  # the scratch folder is removed
    assert not (settings.data_path / "lake").exists()  # the real lake was never written
    assert len(warm.seconds) == 3
