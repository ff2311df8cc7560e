"""The live-source checkpoint: high-water marks, changed newest bar, atomic save."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stockpipe.contract import Bar
from stockpipe.sources.live.checkpoint import Checkpoint, CheckpointError, bar_digest

T0 = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)


def _bar(minute: int, close: float = 10.0, symbol: str = "IBM", volume: int = 100) -> Bar:
    return Bar(
        symbol=symbol, interval="1min", bar_ts=T0 + timedelta(minutes=minute), open=10.0, high=11.0,
        low=9.0, close=close, volume=volume, source="alphavantage", produced_at=datetime.now(UTC),
    )  # fmt: skip


def test_fresh_keeps_new_bars_and_the_changed_newest(tmp_path: Path) -> None:
    cp = Checkpoint(tmp_path / "cp.json")
    first = [_bar(0), _bar(1), _bar(2, close=10.5)]
    assert cp.fresh(first) == first  # nothing marked yet: all of them (the same objects)
    cp.advance(first)
    # the same bars again (produced later): nothing to send
    assert cp.fresh([_bar(0), _bar(1), _bar(2, close=10.5)]) == []
    # the newest bar changed (still forming) and a new one arrived; an old bar changed too
    again = [_bar(1, close=9.5), _bar(2, close=10.7), _bar(3)]
    assert [(b.bar_ts.minute, b.close) for b in cp.fresh(again)] == [(32, 10.7), (33, 10.0)]
    # another symbol is independent
    other = [_bar(0, symbol="AAPL")]
    assert cp.fresh(other) == other


def test_produced_at_is_not_part_of_the_digest() -> None:
    a, b = _bar(0), _bar(0).model_copy(update={"produced_at": T0})
    assert bar_digest(a) == bar_digest(b)
    assert bar_digest(a) != bar_digest(_bar(0, volume=101))


def test_save_and_reload_round_trip_and_marks_never_move_back(tmp_path: Path) -> None:
    path = tmp_path / "live" / "alphavantage.checkpoint.json"
    cp = Checkpoint(path)
    cp.advance([_bar(5), _bar(3)])
    cp.extra["requests"] = [1.0, 2.0]
    cp.save()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    again = Checkpoint(path)
    mark = again.mark("IBM", "1min")
    assert mark is not None
    assert mark.bar_ts == T0 + timedelta(minutes=5)
    assert again.extra == {"requests": [1.0, 2.0]}
    assert [b.bar_ts.minute for b in again.fresh([_bar(4), _bar(5), _bar(6)])] == [36]


def test_unreadable_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        Checkpoint(path)
    path.write_text(json.dumps({"marks": {"IBM|1min": {"bar_ts": "never"}}}))
    with pytest.raises(CheckpointError, match="move it away"):
        Checkpoint(path)
