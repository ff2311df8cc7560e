"""Durable local file writes: one ``atomic_write`` for every file stockpipe replaces on a local disk.

The new content goes to a hidden temp file in the same folder (``.<name>.<random>.tmp``), which is
flushed and fsynced, renamed over the target, and then the folder is fsynced so the rename itself
survives a power cut. A reader (or a process that restarts after a kill) sees the old file or the
new one, never a part; a failed write removes its temp file. Lake writes that go through fsspec
(HDFS, S3) have their own atomic path in ``stockpipe.lake``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """The hidden temp name next to ``path`` that ``atomic_write`` uses."""
    return path.parent / f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[BinaryIO]:
    """Yield a binary file; on a clean exit it replaces ``path`` durably (temp, fsync, rename, fsync dir).

    The folder must exist. On any error the temp file is removed and the error propagates.
    """
    target = Path(path)
    tmp = temp_path(target)
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably (see ``atomic_write``)."""
    with atomic_write(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` durably (see ``atomic_write``)."""
    atomic_write_bytes(path, text.encode(encoding))
