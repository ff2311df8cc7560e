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
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
        master = spark.sparkContext.master
    except StockpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(json.dumps({**asdict(result), "master": master, "executors": executors}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
