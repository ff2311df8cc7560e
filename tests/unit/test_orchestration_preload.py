"""When ``run_pipeline`` starts dbt's background import: before its first step (the producer
too), when dbt steps follow."""

from __future__ import annotations

import pytest

from stockpipe.orchestration import pipeline
from stockpipe.settings import Settings


def _calls(monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: tuple[str, ...]) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(pipeline, "preload_dbt", lambda _s: calls.append("preload"))
    monkeypatch.setattr(pipeline, "run_step", lambda name, *_a: calls.append(name))
    pipeline.run_pipeline(settings, steps=steps)
    return calls


def test_the_import_starts_before_the_first_step_when_dbt_steps_follow(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    steps = (pipeline.KAFKA_PRODUCER, pipeline.UPLOAD_TO_HDFS, pipeline.BUILD_MODELS)
    assert _calls(monkeypatch, settings, steps) == ["preload", *steps]


@pytest.mark.parametrize(
    "steps",
    [
        (pipeline.UPLOAD_TO_HDFS, pipeline.UPLOAD_TO_SNOWFLAKE),  # no dbt step
        (pipeline.BUILD_MODELS, pipeline.QUALITY_MODELS_TEST),  # dbt first: it imports dbt itself
    ],
)
def test_no_background_import_without_a_later_dbt_step(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: tuple[str, ...]
) -> None:
    assert _calls(monkeypatch, settings, steps) == list(steps)
