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
- ``LOAD_MID_TRANSACTION``  warehouse: rows inserted, not committed; exits with ``FAULT_EXIT_CODE``
  (97) instead of SIGKILL, so a test can tell the fault from a real crash

``STOCKPIPE_FAULT_CLEAN=<point>`` names one point of the cleaning commit instead (``fault_at``):
the process exits with 137 (as if SIGKILLed) at that point (see clean/commit.py).
"""

from __future__ import annotations

import os
import signal

FAULT_EXIT_CODE = 97
KILLED_EXIT_CODE = 137  # what a shell reports for a SIGKILLed process
_hits: dict[str, int] = {}


def fault_point(name: str, *, exit_code: int | None = None) -> None:
    """Kill this process if ``STOCKPIPE_FAULT_<name>`` says so (test hook).

    Without ``exit_code`` the process SIGKILLs itself; with it, it exits at once with that code.
    """
    raw = os.environ.get(f"STOCKPIPE_FAULT_{name}")
    if not raw:
        return
    _hits[name] = _hits.get(name, 0) + 1
    try:
        target = int(raw)
    except ValueError:
        target = 1
    if _hits[name] >= target:
        if exit_code is not None:
            os._exit(exit_code)
        os.kill(os.getpid(), signal.SIGKILL)


def fault_at(group: str, point: str) -> None:
    """Exit with 137 (as if SIGKILLed) when ``STOCKPIPE_FAULT_<group>`` names ``point`` (test hook)."""
    if os.environ.get(f"STOCKPIPE_FAULT_{group}") == point:
        os._exit(KILLED_EXIT_CODE)
