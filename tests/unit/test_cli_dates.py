"""Date options: one parser for every command, a bad date is one clear sentence (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from stockpipe.cli.ui import parse_date
from stockpipe.errors import ConfigError


def test_parse_date() -> None:
    assert parse_date("2024-03-04", "--start") == date(2024, 3, 4)
    assert parse_date(None, "--start") is None
    assert parse_date("", "--end") is None
    with pytest.raises(ConfigError, match=r"^--end '2024-13-01' is not a date in the form YYYY-MM-DD\.$"):
        parse_date("2024-13-01", "--end")


@pytest.mark.parametrize("command", [["run"], ["stream"], ["produce"]])
def test_a_bad_date_is_one_sentence(command: list[str], tmp_path: Path) -> None:
    env = {"STOCKPIPE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "stockpipe", *command, "--start", "2024-02-30"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "error: --start '2024-02-30' is not a date in the form YYYY-MM-DD." in out.stderr
