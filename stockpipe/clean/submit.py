"""``spark-submit`` application: run the clean step with settings from the environment.

Run it on any Spark deployment (the same file an Airflow ``SparkSubmitOperator`` points at)::

    STOCKPIPE_LAKE_ROOT=hdfs://namenode:8020/stockpipe \\
    PYSPARK_PYTHON=$(which python) \\
    spark-submit --master spark://127.0.0.1:7077 <site-packages>/stockpipe/clean/submit.py

(``python -c 'import stockpipe.clean.submit as m; print(m.__file__)'`` prints the path.)

The master given to ``spark-submit`` wins over ``STOCKPIPE_SPARK_MASTER`` (the session already
exists when the job starts). The driver needs the stockpipe package importable (installed in the
Python that ``spark-submit`` runs); the executors need nothing of it (no Python UDFs). The result
is printed as one JSON line on stdout (the ``CleanResult`` fields plus ``master`` and
``executors``, the number of executors besides the driver); errors exit with status 1 and one
sentence on stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

from stockpipe.clean.job import run_clean
from stockpipe.clean.session import get_spark
from stockpipe.errors import StockpipeError
from stockpipe.settings import get_settings


def main() -> int:
    """Build settings from the environment, run ``run_clean`` on the active session, print JSON."""
    from pyspark.sql import SparkSession

    settings = get_settings()
    active = SparkSession.getActiveSession()
    spark = active if active is not None else get_spark(settings)
    try:
        result = run_clean(settings, spark=spark)
        master = spark.conf.get("spark.master")
        executors = _executors(spark)
    except StockpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(json.dumps({**asdict(result), "master": master, "executors": executors}, default=str))
    return 0


def _executors(spark: SparkSession) -> int:
    """Executors besides the driver, from the status REST API of the driver's UI (-1: unknown).

    Public API only (no SparkContext handle), so the same job file runs over Spark Connect.
    """
    import urllib.request

    ui = spark.conf.get("spark.ui.enabled", "true") == "true"
    app_id = spark.conf.get("spark.app.id", None)
    host = spark.conf.get("spark.driver.host", "127.0.0.1")
    port = spark.conf.get("spark.ui.port", "4040")
    if not ui or not app_id:
        return -1
    url = f"http://{host}:{port}/api/v1/applications/{app_id}/executors"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # the driver's own UI
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return -1
    return sum(1 for e in data if e.get("id") != "driver")


if __name__ == "__main__":
    sys.exit(main())
