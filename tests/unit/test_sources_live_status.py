"""Live status files: atomic writes, dead processes reported stopped, the shared display rows."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from stockpipe.dashboard.health import live_sources_display
from stockpipe.settings import Settings
from stockpipe.sources.live.status import (
    STATUS_COLUMNS,
    StatusWriter,
    read_live_statuses,
    status_path,
    status_rows,
)


def test_writer_rows_and_a_dead_process(settings: Settings) -> None:
    writer = StatusWriter(settings, "finnhub", "feed")
    writer.status.connected = True
    writer.status.reconnects = 2
    writer.status.late_trades = 3
    writer.status.bars_emitted = 1234
    writer.message(10, at=datetime(2024, 3, 4, 14, 30, tzinfo=UTC))
    writer.write(force=True)
    # a process that died without closing (kill -9): its file says connected, its pid is gone
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path = status_path(settings, "aggregator")
    path.write_text(json.dumps({"name": "aggregator", "kind": "aggregator", "connected": True,
                                "pid": int(dead.stdout), "bars_emitted": 5}))  # fmt: skip
    statuses = {s["name"]: s for s in read_live_statuses(settings)}
    assert statuses["finnhub"]["running"] is True
    assert statuses["aggregator"]["running"] is False
    assert statuses["aggregator"]["connected"] is False
    now = datetime(2024, 3, 4, 14, 32, tzinfo=UTC)
    rows = dict((r[0], r) for r in status_rows(list(statuses.values()), now))
    assert rows["finnhub"] == (
        "finnhub",
        "feed",
        "running",
        "yes",
        "2 min ago",
        rows["finnhub"][5],
        "1,234",
        "3",
        "2",
    )
    assert rows["aggregator"][2:4] == ("stopped", "no")
    frame = live_sources_display(list(statuses.values()), now)
    assert list(frame.columns) == list(STATUS_COLUMNS)
    assert len(frame) == 2
    writer.close()
    assert read_live_statuses(settings)[1]["running"] is False  # closed: stopped


def test_unreadable_status_file_is_reported_not_raised(settings: Settings) -> None:
    path = status_path(settings, "broken")
    path.parent.mkdir(parents=True)
    path.write_text("{")
    (row,) = status_rows(read_live_statuses(settings), datetime.now(UTC) + timedelta(seconds=1))
    assert row[:3] == ("broken", "?", "unreadable status-broken.json")
