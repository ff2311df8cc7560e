"""`stockpipe run` end to end on the embedded default, twice; the DAG gives the same gold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e_helpers import gold_snapshot, run_cli, stockpipe_env, stop_embedded_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYMBOLS = "AAPL,MSFT,NVDA"
DAY = "2024-03-04"  # a regular Monday session: 390 one-minute bars per symbol
RUN_ARGS = ["run", "--symbols", SYMBOLS, "--start", DAY, "--end", DAY]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("e2e-cli")
    env = stockpipe_env(data_dir)
    try:
        first = run_cli(RUN_ARGS, env)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        gold_first = gold_snapshot(data_dir / "warehouse.duckdb")
        second = run_cli(RUN_ARGS, env)
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
        gold_second = gold_snapshot(data_dir / "warehouse.duckdb")
        yield {
            "env": env,
            "data_dir": data_dir,
            "first": first,
            "gold_first": gold_first,
            "gold_second": gold_second,
        }
    finally:
        stop_embedded_broker(env)


def test_run_fills_every_layer_and_prints_the_summary(cli_run: dict[str, Any]) -> None:
    out = cli_run["first"].stdout
    for step in ("Kafka_Producer", "Spark_Cleaning_Job", "quality_Models_test"):
        assert step in out
    assert "gold fact_stock rows" in out
    expected = 3 * 390
    with duckdb.connect(str(cli_run["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        facts = con.execute("select count(*), count(distinct id) from gold.fact_stock").fetchone()
        per_symbol = dict(
            con.execute("select company_id, count(*) from gold.fact_stock group by 1").fetchall()
        )
    assert facts == (expected, expected)
    assert per_symbol == dict.fromkeys(SYMBOLS.split(","), 390)


def test_second_run_leaves_identical_gold(cli_run: dict[str, Any]) -> None:
    assert cli_run["gold_first"]["fact_stock"], "gold is empty"
    assert cli_run["gold_second"] == cli_run["gold_first"]


def test_a_failing_dbt_test_fails_the_run_and_names_the_step(cli_run: dict[str, Any]) -> None:
    db = cli_run["data_dir"] / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update gold.fact_stock set high_price = low_price - 1 "
            "where id = (select min(id) from gold.fact_stock)"
        )
    try:
        failed = run_cli(["run", "--steps", "quality_Models_test"], cli_run["env"])
        assert failed.returncode != 0
        message = failed.stderr + failed.stdout
        assert "quality_Models_test failed" in message
        assert "Traceback" not in message
    finally:  # put gold back for the other tests of this module
        repaired = run_cli(["run", "--steps", "build_Models"], cli_run["env"])
        assert repaired.returncode == 0, repaired.stderr[-3000:]


_DAG_TEST = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["stock_pipeline"]
run = dag.test(run_conf=json.loads(sys.argv[1]))
print("DAGRUN_STATE=" + str(run.state))
"""


def test_dag_test_run_leaves_the_same_gold_as_stockpipe_run(
    cli_run: dict[str, Any], airflow_home: dict[str, str], tmp_path: Path
) -> None:
    import subprocess
    import sys

    data_dir = tmp_path / "e2e-dag"
    data_dir.mkdir()
    env = {**airflow_home, **stockpipe_env(data_dir)}
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
    assert gold_snapshot(data_dir / "warehouse.duckdb") == cli_run["gold_first"]
