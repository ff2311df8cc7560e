"""The clean job on a real standalone Spark cluster, and killed mid-commit then re-run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import stockpipe.clean.submit as submit_app
from stockpipe.clean.job import run_clean
from stockpipe.clean.transforms import QUARANTINE_COLUMNS
from stockpipe.settings import Settings
from tests.fixtures.spark import free_port, spark_env, spark_home
from tests.helpers_bronze import bar_json, local_path, ny, write_bronze, write_scenario
from tests.helpers_silver import make_bars, write_old_layout
from tests.unit.test_clean_job import silver_dir, silver_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spark]


def make_settings(tmp_path: Path, name: str) -> Settings:
    data = tmp_path / name
    data.mkdir()
    return Settings(data_dir=data, _env_file=None)  # type: ignore[call-arg]


def job_env(settings: Settings, master: str, **extra: str) -> dict[str, str]:
    env = spark_env()
    env.update(
        STOCKPIPE_DATA_DIR=str(settings.data_dir),
        STOCKPIPE_CONFIG=str(settings.data_dir / "no-stockpipe.toml"),
        STOCKPIPE_SPARK_MASTER=master,
        STOCKPIPE_SPARK_SHUFFLE_PARTITIONS="2",
        STOCKPIPE_SPARK_DRIVER_MEMORY="1g",
        **extra,
    )
    return env


def quarantine_content(spark: Any, settings: Settings) -> list[tuple[Any, ...]]:
    """Quarantine rows without ``quarantined_at`` (the only column that depends on the clock)."""
    path = silver_dir(settings, "quarantine")
    cols = [c for c in QUARANTINE_COLUMNS if c != "quarantined_at"]
    rows = spark.read.parquet(str(path)).select(*cols).collect()
    return sorted((*r[:6], tuple(r["failed_rules"]), *r[7:]) for r in rows)


def ledger(settings: Settings) -> dict[str, int]:
    files = sorted(silver_dir(settings, "_state").glob("ledger-*.json"))
    assert len(files) == 1
    return dict(json.loads(files[-1].read_text())["files"])


def test_standalone_cluster_gives_the_same_silver_as_local(
    spark: Any, spark_cluster: str, tmp_path: Path
) -> None:
    local, cluster = make_settings(tmp_path, "local"), make_settings(tmp_path, "cluster")
    write_scenario(local.lake_root)
    sc = write_scenario(cluster.lake_root)
    local_result = run_clean(local, spark=spark, with_companies=False)
    cmd = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        spark_cluster,
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        "spark.executor.memory=512m",
        "--conf",
        f"spark.ui.port={free_port()}",  # submit.py counts executors through the UI's REST API
        submit_app.__file__,
    ]
    proc = subprocess.run(
        cmd, env=job_env(cluster, spark_cluster), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["master"] == spark_cluster
    assert out["executors"] >= 1, "the job ran on the cluster's worker"
    assert out["bronze_records"] == local_result.bronze_records == sc.records
    assert out["quarantined"] == sc.quarantined
    assert out["partitions_rewritten"] == sc.partitions
    assert silver_rows(spark, cluster) == silver_rows(spark, local)
    assert len(silver_rows(spark, cluster)) == sc.silver_rows
    assert quarantine_content(spark, cluster) == quarantine_content(spark, local)
    assert ledger(cluster) == ledger(local)
    # silver/companies comes from the packaged CSV when it is installed
    if out["companies_rows"] is not None:
        assert spark.read.parquet(str(silver_dir(cluster, "companies"))).count() == out["companies_rows"]


def _late_files(lake: str) -> None:
    """A second day of bronze: newer versions in two stored partitions plus a new date, and a
    correction of the stored daily bar (its month partition of ``stock_prices_daily``)."""
    late = "2024-03-08T12:00:00Z"
    values = [
        bar_json(close=10.8, bar_ts=ny("2024-03-04", "09:35"), produced_at=late),
        bar_json(symbol="MSFT", close=10.2, bar_ts=ny("2024-03-05", "09:31"), produced_at=late),
        bar_json(symbol="MSFT", bar_ts=ny("2024-03-07", "09:30")),
        bar_json(
            symbol="MSFT", interval="1day", close=10.7, bar_ts=ny("2024-03-06", "00:00"), produced_at=late
        ),
        b"{broken",
    ]
    write_bronze(lake, values, ingest_date="2024-03-08", partition=2, first_offset=0)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.parquet"))


@dataclass(frozen=True)
class Baseline:
    """A lake after one clean plus a second day of bronze, and the same lake cleaned straight."""

    pending: Path  # data dir: first run committed, late files waiting
    straight: Settings  # the uninterrupted result of cleaning ``pending``


@pytest.fixture(scope="module")
def baseline(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    root = tmp_path_factory.mktemp("kill-baseline")
    pending = make_settings(root, "pending")
    write_scenario(pending.lake_root)
    run_clean(pending, spark=spark, with_companies=False)
    _late_files(pending.lake_root)
    straight_dir = root / "straight"
    shutil.copytree(pending.data_dir, straight_dir)
    straight = Settings(data_dir=straight_dir, _env_file=None)  # type: ignore[call-arg]
    result = run_clean(straight, spark=spark, with_companies=False)
    assert result.partitions_rewritten == [
        "stock_prices/trade_date=2024-03-04",
        "stock_prices/trade_date=2024-03-05",
        "stock_prices/trade_date=2024-03-07",
        "stock_prices_daily/trade_month=2024-03",
    ]
    return Baseline(pending.data_dir, straight)


@pytest.mark.parametrize("fault", ["mid_swap", "before_ledger"])
def test_killed_mid_commit_then_rerun_equals_an_uninterrupted_run(
    spark: Any, baseline: Baseline, tmp_path: Path, fault: str
) -> None:
    shutil.copytree(baseline.pending, tmp_path / "killed")
    killed = Settings(data_dir=tmp_path / "killed", _env_file=None)  # type: ignore[call-arg]
    straight = baseline.straight
    before = silver_rows(spark, killed)
    daily_before = _files(silver_dir(killed, "stock_prices_daily") / "trade_month=2024-03")
    assert daily_before, "the first run stored the daily bar in its month partition"
    proc = subprocess.run(
        [sys.executable, submit_app.__file__],
        env=job_env(killed, "local[1]", STOCKPIPE_FAULT_CLEAN=fault),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 137, proc.stderr[-3000:]
    journal = silver_dir(killed, "_state") / "journal.json"
    staging = silver_dir(killed, "_staging")
    assert journal.exists(), "the kill happened inside the commit"
    if fault == "mid_swap":  # the first date (sorted) was swapped in; the new date and the month not yet
        prices = silver_dir(killed, "stock_prices")
        assert not (prices / "trade_date=2024-03-07").exists()
        assert any(staging.rglob("trade_date=2024-03-07/*.parquet"))
        month = "trade_month=2024-03"
        assert _files(silver_dir(killed, "stock_prices_daily") / month) == daily_before
        assert any(staging.rglob(f"{month}/*.parquet"))
        assert len(silver_rows(spark, killed)) == len(before)
    else:  # silver complete, ledger not updated: a naive rerun would clean the files twice
        assert silver_rows(spark, killed) == silver_rows(spark, straight)
        assert ledger(killed) != ledger(straight)

    rerun = run_clean(killed, spark=spark, with_companies=False)
    assert rerun.recovered
    assert rerun.bronze_files == 0, "the journal finished the commit; nothing is cleaned twice"
    assert silver_rows(spark, killed) == silver_rows(spark, straight)
    assert quarantine_content(spark, killed) == quarantine_content(spark, straight)
    assert ledger(killed) == ledger(straight)
    assert not journal.exists()
    assert not staging.exists() or not any(staging.iterdir())
    q = sorted(
        p.name for p in (silver_dir(killed, "quarantine") / "ingest_date=2024-03-08").glob("*.parquet")
    )
    assert len(q) == 1, "the quarantine file was moved once, not duplicated"
    daily = [r for r in silver_rows(spark, killed) if r[1] == "1day"]
    assert [(r[0], r[6]) for r in daily] == [("MSFT", 10.7)], "the corrected daily bar, once"


def _old_layout(settings: Settings) -> None:
    """Silver from before the daily dataset: daily bars inside their ``trade_date=`` folders."""
    intraday = make_bars(("AAPL", "MSFT"), days=3, bars_per_day=3, premarket_bars=0)
    daily = make_bars(("AAPL", "JPM"), days=5, interval="1day", seed=5)
    everything = pa.concat_tables([intraday, daily])
    write_old_layout(local_path(settings.lake_root), everything)


def test_killed_mid_migration_then_rerun_equals_an_uninterrupted_migration(
    spark: Any, tmp_path: Path
) -> None:
    straight, killed = make_settings(tmp_path, "straight"), make_settings(tmp_path, "killed")
    _old_layout(straight)
    _old_layout(killed)
    before = silver_rows(spark, killed)
    run_clean(straight, spark=spark, with_companies=False)
    proc = subprocess.run(
        [sys.executable, submit_app.__file__],
        env=job_env(killed, "local[1]", STOCKPIPE_FAULT_CLEAN="mid_swap"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 137, proc.stderr[-3000:]
    state = silver_dir(killed, "_state")
    assert (state / "journal.json").exists(), "killed inside the migration's commit"
    assert not (state / "layout.json").exists(), "the marker is written only when every swap is done"

    rerun = run_clean(killed, spark=spark, with_companies=False)
    assert rerun.recovered
    assert silver_rows(spark, killed) == silver_rows(spark, straight)
    assert sorted(silver_rows(spark, killed)) == sorted(before), "the same rows, in their new folders"
    for settings in (straight, killed):
        days = sorted(p.name for p in silver_dir(settings, "stock_prices").glob("trade_date=*"))
        assert days == ["trade_date=2024-03-04", "trade_date=2024-03-05", "trade_date=2024-03-06"]
        assert [p.name for p in silver_dir(settings, "stock_prices_daily").iterdir()] == [
            "trade_month=2024-03"
        ]
        assert json.loads((silver_dir(settings, "_state") / "layout.json").read_text())["silver_layout"] == 2
    assert not (state / "journal.json").exists()
