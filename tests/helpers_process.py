"""Stopping a helper server a fixture started (moto, fakesnow, streamlit): terminate, then kill."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited within ``timeout`` seconds; reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
