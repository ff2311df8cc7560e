"""Stop what a benchmark's ``stockpipe`` child left running in its data folder (shared by bench_*.py).

``stockpipe run`` and ``stream`` leave the embedded broker and the local Spark Connect server warm
for the next command; a benchmark's data folder has no next command, so it stops both.
"""

from __future__ import annotations

import subprocess
import sys


def stop_owned(env: dict[str, str]) -> None:
    """``stockpipe spark stop`` and ``stockpipe broker stop`` with the child's environment."""
    for cmd in (["spark", "stop"], ["broker", "stop"]):
        subprocess.run([sys.executable, "-m", "stockpipe", *cmd], env=env, capture_output=True, check=False)
