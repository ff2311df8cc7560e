"""One pipeline at a time per data folder: an OS-level file lock (released if the process dies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from stockpipe.errors import PipelineLockedError
from stockpipe.fsutil import atomic_write_text
from stockpipe.settings import Settings


@contextmanager
def pipeline_lock(settings: Settings, what: str = "run") -> Iterator[None]:
    """Hold ``<state>/pipeline.lock`` for the duration; refuse at once if another process has it.

    The lock is an ``flock`` on the file, so a SIGKILLed holder releases it automatically:
    a stale lock can never block the next run.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "pipeline.lock"
    info = settings.state_dir / "pipeline.lock.owner"
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = info.read_text().strip() if info.exists() else "another stockpipe process"
        raise PipelineLockedError(
            f"The data folder {settings.data_path} is in use by {owner}; "
            "wait for it to finish (two pipelines must not share a data folder)."
        ) from None
    try:
        atomic_write_text(
            info, f"stockpipe {what} (pid {os.getpid()}, since {datetime.now(UTC):%H:%M:%S} UTC)"
        )
        yield
    finally:
        info.unlink(missing_ok=True)
        lock.release()
