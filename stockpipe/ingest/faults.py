"""Test-only fault points: crash the process at an exact step to prove crash safety.

A fault point is armed by the environment variable ``STOCKPIPE_FAULT_<NAME>=<n>``: the
process SIGKILLs itself (no cleanup, exactly like a crash or ``kill -9``) the ``n``-th time
it reaches the point (``1`` = the first time). Unset (always, outside tests) it costs one
dictionary lookup. The points:

- ``AFTER_FILE_WRITE``      consumer: spool file renamed and fsynced, offsets not committed
- ``AFTER_BRONZE_PUBLISH``  upload: data file published to bronze, manifest entry not written
- ``AFTER_MANIFEST_WRITE``  upload: manifest entry written, spool file not deleted
- ``BRONZE_MID_COPY``       upload: half of a bronze data file written to its hidden temp name
- ``MID_PRODUCE``           producer: the n-th message delivered, the rest never sent
- ``DBT_NODE_FINISHED``     dbt: the n-th node (model, seed, test) finished, the next not started
- ``AFTER_STEP_<step>``     orchestration: the seed step ``<step>`` finished, the next not started

Others, in the same style: ``STOCKPIPE_FAULT_LOAD_MID_TRANSACTION`` (warehouse/base.py) and
``STOCKPIPE_FAULT_CLEAN=<point>`` (clean/commit.py).
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``STOCKPIPE_FAULT_<name>`` says so (test hook)."""
    raw = os.environ.get(f"STOCKPIPE_FAULT_{name}")
    if not raw:
        return
    _hits[name] = _hits.get(name, 0) + 1
    try:
        target = int(raw)
    except ValueError:
        target = 1
    if _hits[name] >= target:
        os.kill(os.getpid(), signal.SIGKILL)
