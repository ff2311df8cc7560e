"""The local Spark Connect server compiles a job's generated code once, not once per client process.

Every ``stockpipe run``, ``clean`` or Airflow task is a new Connect session. With per-session
class loaders (what ``SparkConnectServer`` forces) Spark compiled the same generated classes
again for each one (``clean.connect_host``). The server's log names every class it compiles
("Code generated in ..."), so the test counts them: the first process compiles the query's
classes, a second process running the same query compiles none.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from tests.fixtures.spark import CONNECT_LOGS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

QUERY = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
factor = int(sys.argv[2])  # a literal Spark writes into the generated code: new code per test run
rows = (spark.range(20000).selectExpr("id % 7 AS k", f"id * {factor} AS v")
        .where("v % 3 = 0").groupBy("k").sum("v").orderBy("k").collect())
print(len(rows))
"""


def _compiled(log: str) -> int:
    with open(log, encoding="utf-8", errors="replace") as f:
        return f.read().count("Code generated in")


def _run_client(url: str, factor: int) -> None:
    env = {**os.environ, "SPARK_CONNECT_MODE_ENABLED": "1"}
    out = subprocess.run(
        [sys.executable, "-c", QUERY, url, str(factor)], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "7"


def _settled(log: str) -> int:
    """The count once the log stops growing (a line may still be on its way to the file)."""
    last = _compiled(log)
    for _ in range(20):
        time.sleep(0.1)
        now = _compiled(log)
        if now == last:
            return now
        last = now
    return last


def test_a_second_client_process_reuses_the_compiled_classes(spark_connect_server: str) -> None:
    log = str(CONNECT_LOGS[spark_connect_server])
    factor = random.randint(1000, 10**9)
    before = _settled(log)
    _run_client(spark_connect_server, factor)
    first = _settled(log)
    assert first > before, "the first process compiled nothing: the log does not show compiles"
    _run_client(spark_connect_server, factor)
    assert _settled(log) == first, "a new client session compiled the same query's classes again"
