"""Shared fixtures. Engine fixtures (broker, Spark, warehouse) live in tests/fixtures/*."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockpipe.settings import Settings

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.spark",
    "tests.fixtures.warehouse",
    "tests.fixtures.airflow",
    "tests.fixtures.pipeline",
    "tests.fixtures.faults",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
# fixtures that start a JVM (a SparkSession, a Spark cluster, or a `stockpipe run` that cleans)
SPARK_FIXTURES = frozenset(
    {
        "spark",
        "spark_cluster",
        "spark_connect_server",
        "embedded_run",
        "bad_input_run",
        "kill_chain",
        "error_chain",
        "warm_spark_env",
    }
)
ARTIFACTS = REPO_ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``spark`` every test whose fixtures start a JVM (``pytest -m "not spark"`` skips them)."""
    for item in items:
        if SPARK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's STOCKPIPE_* variables, .env or stockpipe.toml."""
    for name in list(os.environ):
        if name.startswith("STOCKPIPE_") and not name.startswith("STOCKPIPE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STOCKPIPE_CONFIG", str(tmp_path / "no-such-stockpipe.toml"))
    # The shipped default is a warm local Spark Connect server; a test that runs `stockpipe`
    # would leave one per data folder. Tests use in-process Spark unless they ask for Connect
    # (the `spark` fixture's connect mode, tests/fixtures/spark.py).
    monkeypatch.setenv("STOCKPIPE_SPARK_MODE", "classic")
    return


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Settings on a fresh data folder (embedded broker unless a test sets bootstrap servers)."""
    return Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
