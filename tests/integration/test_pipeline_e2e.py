"""`stockpipe run` end to end on the embedded default, twice; the DAG gives the same gold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e_helpers import DAY, SYMBOLS, gold_snapshot, run_cli, stockpipe_env, stop_embedded_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_fills_every_layer_and_prints_the_summary(embedded_run: dict[str, Any]) -> None:
    out = embedded_run["first"].stdout
    for step in ("Kafka_Producer", "Spark_Cleaning_Job", "quality_Models_test"):
        assert step in out
    assert "gold fact_stock rows" in out
    expected = 3 * 390
    with duckdb.connect(str(embedded_run["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        facts = con.execute("select count(*), count(distinct id) from gold.fact_stock").fetchone()
        per_symbol = dict(
            con.execute("select company_id, count(*) from gold.fact_stock group by 1").fetchall()
        )
    assert facts == (expected, expected)
    assert per_symbol == dict.fromkeys(SYMBOLS.split(","), 390)


def test_second_run_leaves_identical_gold(embedded_run: dict[str, Any]) -> None:
    assert embedded_run["gold_first"]["fact_stock"], "gold is empty"
    assert embedded_run["gold_second"] == embedded_run["gold_first"]


def test_a_failing_dbt_test_fails_the_run_and_names_the_step(
    embedded_run: dict[str, Any], tmp_path: Path
) -> None:
    """Corrupt one gold row in a copy of the run's data folder: the quality step must fail."""
    data_dir = tmp_path / "tampered"
    shutil.copytree(embedded_run["data_dir"], data_dir, ignore=shutil.ignore_patterns("*.lock"))
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "update gold.fact_stock set high_price = low_price - 1 "
            "where id = (select min(id) from gold.fact_stock)"
        )
    failed = run_cli(["run", "--steps", "quality_Models_test"], stockpipe_env(data_dir))
    assert failed.returncode != 0
    message = failed.stderr + failed.stdout
    assert "quality_Models_test failed" in message
    assert "Traceback" not in message


_DAG_TEST = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["stock_pipeline"]
run = dag.test(run_conf=json.loads(sys.argv[1]))
print("DAGRUN_STATE=" + str(run.state))
"""


def test_dag_test_run_leaves_the_same_gold_as_stockpipe_run(
    embedded_run: dict[str, Any], airflow_home: dict[str, str], tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    """The DAG's tasks clean on a Spark Connect server, as the docker-compose Airflow workers do;
    the reference (``embedded_run``) cleaned classic."""
    import subprocess
    import sys

    data_dir = tmp_path / "e2e-dag"
    data_dir.mkdir()
    env = {**airflow_home, **stockpipe_env(data_dir, **warm_spark_env)}
    conf = {"symbols": SYMBOLS.split(","), "start": DAY, "end": DAY}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DAG_TEST, json.dumps(conf)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        stop_embedded_broker(env)
    assert "DAGRUN_STATE=success" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert gold_snapshot(data_dir / "warehouse.duckdb") == embedded_run["gold_first"]
