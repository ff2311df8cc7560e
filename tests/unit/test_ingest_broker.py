"""Embedded broker bookkeeping that needs no running broker."""

from __future__ import annotations

import json

import pytest

from stockpipe import faults
from stockpipe.errors import StateFileError
from stockpipe.faults import fault_point
from stockpipe.ingest.broker import broker_status, ensure_bootstrap, is_embedded, read_state
from stockpipe.settings import Settings


def test_configured_servers_start_nothing(settings: Settings) -> None:
    s = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": "k:9092"})}
    )
    assert ensure_bootstrap(s) == "k:9092"
    assert broker_status(s) == {"mode": "external", "bootstrap": "k:9092", "running": None}
    assert not (s.state_dir / "broker.json").exists()
    assert not is_embedded(s)


def test_stale_state_file_reports_not_running(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True)
    state = {
        "pid": 2**22 + 12345,  # above the default pid_max: never alive
        "port": 1,
        "cluster_id": "c",
        "storage": "memory://tansu/",
        "started_at": "2024-01-01T00:00:00+00:00",
        "log_file": "x.log",
    }
    (settings.state_dir / "broker.json").write_text(json.dumps(state))
    status = broker_status(settings)
    assert status["mode"] == "embedded"
    assert status["running"] is False
    assert status["stale"] is True
    assert is_embedded(settings)
    recorded = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})}
    )
    assert is_embedded(recorded)


def test_corrupt_state_file_names_the_file(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / "broker.json").write_text("{not json")
    with pytest.raises(StateFileError, match=r"broker\.json"):
        read_state(settings.state_dir)


def test_fault_point_is_inert_unless_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKPIPE_FAULT_NOWHERE", raising=False)
    monkeypatch.setitem(faults._hits, "NOWHERE", 0)
    fault_point("NOWHERE")  # returns: the test process is still alive
    assert faults._hits["NOWHERE"] == 0  # unset: not even counted
    monkeypatch.setenv("STOCKPIPE_FAULT_NOWHERE", "1000")
    for _ in range(5):
        fault_point("NOWHERE")  # armed for the 1000th hit only
    assert faults._hits["NOWHERE"] == 5
