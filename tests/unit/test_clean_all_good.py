"""A batch with no bad record at all (the common case in production) cleans without error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockpipe.clean.job import run_clean
from stockpipe.settings import Settings
from tests.fixtures.spark import SPARK_MODES, spark_in_mode
from tests.helpers_bronze import bar_json, ny, write_bronze


@pytest.fixture(params=SPARK_MODES)
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Every test of this module over a classic and over a Spark Connect session."""
    yield from spark_in_mode(request)


def test_a_batch_without_any_bad_record_cleans_and_counts_right(spark: Any, settings: Settings) -> None:
    minutes = ["09:30", "09:31", "09:32", "09:33"]
    values = [bar_json(symbol=s, bar_ts=ny("2024-03-04", m)) for s in ("AAPL", "MSFT") for m in minutes]
    write_bronze(settings.lake_root, values)
    result = run_clean(settings, spark=spark, with_companies=False)
    assert result.bronze_records == len(values)
    assert result.quarantined == 0
    assert result.by_rule == {}
    assert result.silver_rows_written == len(values)
    again = run_clean(settings, spark=spark, with_companies=False)
    assert again.bronze_records == 0
