"""The one fault-injection module: each kind of point kills the process exactly where it is armed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stockpipe.faults import FAULT_EXIT_CODE, KILLED_EXIT_CODE

REPO = Path(__file__).resolve().parents[2]
HITS = 3  # each script reaches its point three times, then prints "alive"


def _run(call: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "from stockpipe.faults import fault_at, fault_point\n"
        f"for i in range({HITS}):\n    {call}\n    print(i, flush=True)\nprint('alive')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "code", "printed"),
    [
        ({}, 0, ["0", "1", "2", "alive"]),
        ({"STOCKPIPE_FAULT_P": "2"}, -signal.SIGKILL, ["0"]),  # killed at the 2nd hit
        ({"STOCKPIPE_FAULT_P": "4"}, 0, ["0", "1", "2", "alive"]),  # never reaches the 4th
    ],
)
def test_counted_point_sigkills_at_the_nth_hit(env: dict[str, str], code: int, printed: list[str]) -> None:
    proc = _run('fault_point("P")', env)
    assert (proc.returncode, proc.stdout.split()) == (code, printed)


def test_counted_point_with_an_exit_code_exits_with_it() -> None:
    proc = _run('fault_point("LOAD", exit_code=97)', {"STOCKPIPE_FAULT_LOAD": "1"})
    assert (proc.returncode, proc.stdout.split()) == (FAULT_EXIT_CODE, [])


@pytest.mark.parametrize(
    ("armed", "code", "printed"), [("here", KILLED_EXIT_CODE, []), ("elsewhere", 0, None)]
)
def test_named_point_exits_137_only_where_named(armed: str, code: int, printed: list[str] | None) -> None:
    proc = _run('fault_at("CLEAN", "here")', {"STOCKPIPE_FAULT_CLEAN": armed})
    assert proc.returncode == code
    assert proc.stdout.split() == (printed if printed is not None else ["0", "1", "2", "alive"])
