"""The seed's Airflow DAG, made real: seven tasks calling stockpipe's pipeline steps.

Kafka_Producer >> Kafka_Consumer >> Upload_to_HDFS >> Spark_Cleaning_Job >>
Upload_to_Snowflake >> build_Models >> quality_Models_test

Every task calls ``stockpipe.orchestration.pipeline.run_step`` — the same functions
``stockpipe run`` uses; no logic lives only here. Configuration comes from the workers'
``STOCKPIPE_*`` environment (never from the DAG file). Environment knobs read at parse time:

- ``STOCKPIPE_DAG_SCHEDULE``: cron or preset (default ``*/10 * * * *``, as the seed; ``none``
  disables scheduling).
- ``STOCKPIPE_DAG_SOURCE``: the producer's source (default ``simulator``; a run's conf ``source``
  wins). ``alphavantage`` polls incrementally: each run asks only for the symbols that are due
  under the request quotas and sends only new or changed bars.
- ``dag_run.conf`` chooses the source like ``stockpipe run``: ``source``, ``symbols``, ``start``,
  ``end``, ``seed``, ``n_symbols``, and for a replay ``files`` (list), ``symbol``, ``map``
  (``{"field": "column"}``), ``interval``, ``date_format``, ``exchange``, ``lenient`` (bool).
- ``STOCKPIPE_DAG_SPARK_CONN_ID``: an Airflow Spark connection id; when set, the cleaning task
  is a ``SparkSubmitOperator`` running ``stockpipe/clean/submit.py`` on that cluster,
  otherwise it runs in-process (Spark local, or the master from ``STOCKPIPE_SPARK_MASTER``).

Parsing this file imports only Airflow and the (cheap) stockpipe pipeline module.
"""

from __future__ import annotations

import itertools
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from stockpipe.orchestration.pipeline import STEP_NAMES

DAG_ID = "stock_pipeline"
_schedule_env = os.environ.get("STOCKPIPE_DAG_SCHEDULE", "*/10 * * * *")
SCHEDULE = None if _schedule_env.lower() in {"", "none", "null"} else _schedule_env
SPARK_CONN_ID = os.environ.get("STOCKPIPE_DAG_SPARK_CONN_ID")


def _run_step(step: str, **context: Any) -> dict[str, int]:
    """Task callable: run one seed step with settings from the worker's environment."""
    from stockpipe.orchestration.pipeline import RunOptions, run_step
    from stockpipe.settings import get_settings

    conf = (context.get("dag_run").conf if context.get("dag_run") else None) or {}
    options = RunOptions(
        source=str(conf.get("source", os.environ.get("STOCKPIPE_DAG_SOURCE", "simulator"))),
        paths=tuple(str(p) for p in conf.get("files", ())),
        symbol=conf.get("symbol"),
        column_map={str(k): str(v) for k, v in dict(conf.get("map", {})).items()},
        interval=str(conf.get("interval", "1min")),
        date_format=conf.get("date_format"),
        exchange=str(conf.get("exchange", "XNYS")),
        lenient=bool(conf.get("lenient", True)),
        symbols=tuple(conf.get("symbols", ())),
        n_symbols=int(conf.get("n_symbols", 20)),
        seed=int(conf.get("seed", 42)),
        start=pendulum.parse(conf["start"]).date() if conf.get("start") else None,  # type: ignore[union-attr]
        end=pendulum.parse(conf["end"]).date() if conf.get("end") else None,  # type: ignore[union-attr]
    )
    result = run_step(step, get_settings(), options)
    return result.counts


def _cleaning_task() -> Any:
    if SPARK_CONN_ID:
        from pathlib import Path

        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

        import stockpipe

        return SparkSubmitOperator(
            task_id="Spark_Cleaning_Job",
            conn_id=SPARK_CONN_ID,
            application=str(Path(stockpipe.__file__).parent / "clean" / "submit.py"),
            name="stockpipe-clean",
        )
    return PythonOperator(
        task_id="Spark_Cleaning_Job",
        python_callable=_run_step,
        op_kwargs={"step": "Spark_Cleaning_Job"},
    )


with DAG(
    dag_id=DAG_ID,
    description="stockpipe: Kafka -> bronze -> Spark silver -> warehouse -> dbt gold",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "stockpipe",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["stockpipe", "medallion"],
) as dag:
    tasks = [
        _cleaning_task()
        if step == "Spark_Cleaning_Job"
        else PythonOperator(task_id=step, python_callable=_run_step, op_kwargs={"step": step})
        for step in STEP_NAMES
    ]
    for upstream, downstream in itertools.pairwise(tasks):
        upstream >> downstream
