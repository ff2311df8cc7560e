"""External-engines mode: `stockpipe run` against engines it did not start, by settings only.

The broker is a separately started Kafka-compatible process (an external bootstrap address to
stockpipe) and Spark is a real standalone master + worker from the pyspark package, both on
loopback. No code path is special to this test: only STOCKPIPE_* settings differ from the
embedded run, and gold must come out the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e_helpers import RUN_ARGS, gold_snapshot, run_cli, stockpipe_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_on_external_broker_and_spark_cluster_matches_the_embedded_run(
    embedded_run: dict[str, Any], kafka_broker: str, spark_cluster: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "external"
    data_dir.mkdir()
    env = stockpipe_env(
        data_dir,
        STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS=kafka_broker,
        STOCKPIPE_KAFKA_TOPIC="external-stock-prices",
        STOCKPIPE_KAFKA_GROUP_ID="external-bronze",
        STOCKPIPE_SPARK_MASTER=spark_cluster,
    )
    proc = run_cli(RUN_ARGS, env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert not (data_dir / "state" / "broker.json").exists(), "no embedded broker may be started"
    assert gold_snapshot(data_dir / "warehouse.duckdb") == embedded_run["gold_first"]
