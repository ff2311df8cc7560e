"""When the next stream cycle starts (``StreamRunner._wait_for_cycle``), with real threads and clocks."""

from __future__ import annotations

import threading
import time

import pytest

from stockpipe.orchestration.stream import StreamOptions, StreamRunner
from stockpipe.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(kafka_settings: Settings) -> StreamRunner:
    return StreamRunner(kafka_settings, StreamOptions(source="finnhub"))  # on the session broker


def _records_arrive_in(runner: StreamRunner, seconds: float) -> None:
    threading.Timer(seconds, runner._count_consumed, args=(50,)).start()


def test_after_an_idle_cycle_arriving_records_start_the_next_one_at_once(runner: StreamRunner) -> None:
    _records_arrive_in(runner, 0.3)
    started = time.monotonic()
    assert runner._wait_for_cycle(started + 10, early=True) is False
    assert 0.25 < time.monotonic() - started < 2.0  # not the 10 s period


def test_after_a_busy_cycle_the_period_holds(runner: StreamRunner) -> None:
    _records_arrive_in(runner, 0.1)
    started = time.monotonic()
    assert runner._wait_for_cycle(started + 1.0, early=False) is False
    assert time.monotonic() - started >= 1.0


def test_a_stop_ends_the_wait(runner: StreamRunner) -> None:
    threading.Timer(0.2, runner.request_stop).start()
    started = time.monotonic()
    assert runner._wait_for_cycle(started + 10, early=True) is True
    assert time.monotonic() - started < 2.0
