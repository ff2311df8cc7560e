"""The DAG parses through a real DagBag and has the seed's seven tasks in the seed's order."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stockpipe.orchestration.pipeline import STEP_NAMES

pytestmark = pytest.mark.integration

SEED_ORDER = [
    "Kafka_Producer",
    "Kafka_Consumer",
    "Upload_to_HDFS",
    "Spark_Cleaning_Job",
    "Upload_to_Snowflake",
    "build_Models",
    "quality_Models_test",
]

_PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
dag = bag.dags.get("stock_pipeline")
heavy = sorted(m for m in ("pyspark", "dbt", "snowflake", "streamlit", "confluent_kafka") if m in sys.modules)
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "heavy": heavy}
if dag is not None:
    out.update(
        task_ids=list(dag.task_ids),
        edges=sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids),
        max_active_runs=dag.max_active_runs,
        retries={t.task_id: t.retries for t in dag.tasks},
        cleaning=type(dag.get_task("Spark_Cleaning_Job")).__name__,
        application=getattr(dag.get_task("Spark_Cleaning_Job"), "application", None),
    )
print("RESULT" + json.dumps(out))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=180
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    result: dict[str, object] = json.loads(line[-1][len("RESULT") :])
    return result


def test_dag_imports_cleanly_with_the_seeds_seven_tasks_in_order(
    airflow_home: dict[str, str],
) -> None:
    out = _probe(airflow_home)
    assert out["errors"] == {}
    assert out["task_ids"] == SEED_ORDER
    assert list(STEP_NAMES) == SEED_ORDER
    assert out["edges"] == sorted([a, b] for a, b in itertools.pairwise(SEED_ORDER))
    assert out["max_active_runs"] == 1
    assert all(r >= 1 for r in out["retries"].values())  # type: ignore[union-attr]
    assert out["cleaning"] == "PythonOperator"
    assert out["heavy"] == [], "the DAG file must not import heavy libraries at parse time"


def test_spark_connection_switches_cleaning_to_spark_submit(airflow_home: dict[str, str]) -> None:
    out = _probe({**airflow_home, "STOCKPIPE_DAG_SPARK_CONN_ID": "spark_default"})
    assert out["errors"] == {}
    assert out["cleaning"] == "SparkSubmitOperator"
    application = Path(str(out["application"]))
    assert application.name == "submit.py"
    assert application.is_file(), application
    assert out["task_ids"] == SEED_ORDER
