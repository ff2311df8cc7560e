"""The Spark warm-up a live stream runs in its idle cycles (``stockpipe/clean/warmup.py``)."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
from pydantic import SecretStr

from stockpipe.clean.warmup import NOT_JSON, SCRATCH_DIR, WarmUp, can_warm_up
from stockpipe.settings import Settings


def test_warm_up_rounds_run_the_real_job_in_a_scratch_lake_only(settings: Settings, spark: Any) -> None:
    warm = WarmUp(settings)
    scratch = settings.state_dir / SCRATCH_DIR
    bars = len(warm._values) - 1  # the synthetic batch: simulated bars + one record that is not JSON
    assert bars == 2 * 390  # two symbols, one full NYSE session of 1-minute bars

    seconds = [warm.round(spark) for _ in range(2)]

    assert all(s > 0 for s in seconds)
    assert warm.rounds == seconds
    silver = pq.read_table(scratch / "lake" / "silver" / "stock_prices").to_pandas()
    # the batch was delivered twice: deduplicated against silver, each bar once
    assert len(silver) == bars
    assert not silver.duplicated(["symbol", "interval", "bar_ts"]).any()
    assert silver["symbol"].nunique() == 2
    quarantine = pq.read_table(scratch / "lake" / "silver" / "quarantine").to_pandas()
    assert len(quarantine) == 2  # the record that is not JSON, once per round
    assert set(quarantine["raw_payload"]) == {NOT_JSON.decode()}
    assert all(list(r) == ["not_json"] for r in quarantine["failed_rules"])
    # nothing reached the real lake or the warehouse
    assert not (settings.data_path / "lake").exists()
    assert not settings.duckdb_path.exists()

    warm.close()
    assert not scratch.exists()


def test_only_a_spark_on_this_machine_is_warmed(settings: Settings) -> None:
    assert can_warm_up(settings)  # the local Connect server (or a classic local[*])
    settings.spark.master = "spark://cluster.example:7077"
    assert not can_warm_up(settings)  # its executors cannot read the scratch folder
    settings.spark.master = "local[2]"
    settings.spark.remote = SecretStr("sc://cluster.example:15002")
    assert not can_warm_up(settings)
