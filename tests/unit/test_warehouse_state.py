from __future__ import annotations

import json
from pathlib import Path

import pytest

from stockpipe.errors import StateFileError
from stockpipe.warehouse.state import LoadState, read_state, state_path, write_state


def test_missing_state_file_is_empty(tmp_path: Path) -> None:
    state = read_state(tmp_path / "nope.json")
    assert state.targets == {}
    assert state.table("duckdb:x", "stock_prices") == {}


def test_round_trip_keeps_targets_apart(tmp_path: Path) -> None:
    path = state_path(tmp_path / "state")
    state = LoadState(path)
    state.set_table(
        "duckdb:/a.duckdb", "stock_prices", {"trade_date=2024-03-05": "f2", "trade_date=2024-03-04": "f1"}
    )
    state.set_table("snowflake:acct/DB", "stock_prices", {"trade_date=2024-03-04": "other"})
    write_state(state)

    again = read_state(path)
    assert again.table("duckdb:/a.duckdb", "stock_prices") == {
        "trade_date=2024-03-04": "f1",
        "trade_date=2024-03-05": "f2",
    }
    assert again.table("snowflake:acct/DB", "stock_prices") == {"trade_date=2024-03-04": "other"}
    assert again.table("duckdb:/a.duckdb", "companies") == {}
    # table() returns a copy: changing it does not change the state
    again.table("duckdb:/a.duckdb", "stock_prices")["x"] = "y"
    assert "x" not in again.table("duckdb:/a.duckdb", "stock_prices")


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    for i in range(3):
        state = LoadState(path)
        state.set_table("t", "stock_prices", {"k": str(i)})
        write_state(state)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert json.loads(path.read_text())["targets"]["t"]["stock_prices"] == {"k": "2"}


def test_forget_drops_one_table(tmp_path: Path) -> None:
    state = LoadState(tmp_path / "s.json")
    state.set_table("t", "a", {"k": "1"})
    state.set_table("t", "b", {"k": "2"})
    state.forget("t", "a")
    assert state.table("t", "a") == {}
    assert state.table("t", "b") == {"k": "2"}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 99, "targets": {}}',
        '{"version": 1, "targets": []}',
        '{"version": 1, "targets": {"t": {"stock_prices": {"k": 1}}}}',
    ],
)
def test_corrupt_state_file_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "warehouse_load_state.json"
    path.write_text(content)
    with pytest.raises(StateFileError) as err:
        read_state(path)
    message = str(err.value)
    assert str(path) in message
    assert "corrupt" in message
    assert message.count("\n") == 0
