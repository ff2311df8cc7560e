"""Benchmark child processes: their environment, and stopping what they left running (bench_*.py).

``stockpipe run`` and ``stream`` leave the embedded broker and the local Spark Connect server warm
for the next command; a benchmark's data folder has no next command, so it stops both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stockpipe.daemon import free_port


def child_env(data_dir: Path, mode: str | None = None, **extra: str) -> dict[str, str]:
    """This shell's environment without its ``STOCKPIPE_*`` settings, for a child in ``data_dir``.

    With ``mode`` (``classic`` or ``connect``) the child uses that Spark mode; its local Spark
    Connect server gets a free port, so it never meets a server another program left running.
    ``extra`` are more ``STOCKPIPE_*`` variables.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(STOCKPIPE_DATA_DIR=str(data_dir), **extra)
    if mode is not None:
        env.update(STOCKPIPE_SPARK_MODE=mode, STOCKPIPE_SPARK_CONNECT_PORT=str(free_port()))
    return env


def stop_owned(env: dict[str, str]) -> None:
    """``stockpipe spark stop`` and ``stockpipe broker stop`` with the child's environment."""
    for cmd in (["spark", "stop"], ["broker", "stop"]):
        subprocess.run([sys.executable, "-m", "stockpipe", *cmd], env=env, capture_output=True, check=False)
