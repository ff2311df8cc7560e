"""Spool -> bronze: publish each spool file atomically and idempotently, record it, delete it.

Per file, in order: publish the data file (temp + rename, or a single put on S3), write the
manifest entry (same way), delete the spool copy. A kill between any two steps is completed
by the next run without a duplicate: an identical file already published (found through the
manifest or, before its entry was written, under any ``ingest_date``) is reused, never copied
again; the same name with different content is a ``StateFileError``.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stockpipe.contract.layout import BatchId, bronze_dir, bronze_file, bronze_manifest_dir
from stockpipe.contract.spool import file_cluster_id, spool_files
from stockpipe.errors import PipelineLockedError, StateFileError, StorageError
from stockpipe.faults import fault_point
from stockpipe.fsutil import atomic_write, fsync_dir
from stockpipe.lake.fs import filesystem, scheme_of
from stockpipe.lake.manifest import (
    ManifestEntry,
    entry_path,
    published_batches,
    read_entry,
    read_manifest,
)

if TYPE_CHECKING:
    from stockpipe.settings import Settings

__all__ = ["ManifestEntry", "UploadResult", "published_batches", "read_manifest", "upload_spool"]

ProgressCallback = Callable[[int], None]
Clock = Callable[[], datetime]
LOCK_FILE = "upload.lock"
LOCK_TIMEOUT = 60.0


@dataclass
class UploadResult:
    """Outcome of one upload run."""

    files: int
    records: int
    skipped_existing: int
    bytes: int
    seconds: float


class _Publisher:
    """Writes into the lake; knows which writes are atomic on which filesystem."""

    def __init__(self, settings: Settings) -> None:
        self.fs, self.root = filesystem(settings)
        self.uri_root = settings.lake_root
        self.scheme = scheme_of(self.uri_root)
        self._existing: dict[str, dict[str, str]] = {}

    def existing_data(self, topic: str) -> dict[str, str]:
        """Published bronze data files of ``topic``: file name -> path (listed once per run)."""
        if topic not in self._existing:
            found: dict[str, str] = {}
            for path in self.fs.glob(f"{bronze_dir(self.root, topic)}/ingest_date=*/*.parquet"):
                found[str(path).rsplit("/", 1)[-1]] = str(path)
            self._existing[topic] = found
        return self._existing[topic]

    def write(self, path: str, data: bytes) -> None:
        """Make ``path`` appear with ``data`` all at once (never a partial file under its name).

        A failed write (disk full, read-only, a file where a folder must be) removes its temp
        file and raises ``StorageError`` naming ``path``.
        """
        try:
            self._write(path, data)
        except OSError as exc:
            raise StorageError(f"Cannot write {self.uri(path)} to the lake: {exc.strerror or exc}.") from exc

    def _write(self, path: str, data: bytes) -> None:
        parent, name = path.rsplit("/", 1)
        if self.scheme == "file":
            os.makedirs(parent, exist_ok=True)
            with atomic_write(path) as fh:
                half = len(data) // 2
                fh.write(memoryview(data)[:half])
                fault_point("BRONZE_MID_COPY")  # test-only: killed with half the file copied
                fh.write(memoryview(data)[half:])
        elif self.scheme in ("s3", "s3a"):
            self.fs.pipe_file(path, data)  # a single PUT is atomic
        else:  # hdfs: rename within a directory is atomic
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)

    def clean_temp_files(self, topic: str) -> int:
        """Delete the hidden temp files a killed upload left (safe: the upload lock is held)."""
        if self.scheme in ("s3", "s3a"):
            return 0  # single PUTs: no temp files
        removed = 0
        for folder in (
            f"{bronze_dir(self.root, topic)}/ingest_date=*",
            bronze_manifest_dir(self.root, topic),
        ):
            for path in self.fs.glob(f"{folder}/.*.tmp"):
                self.fs.rm_file(path)
                removed += 1
        return removed

    def uri(self, path: str) -> str:
        """The lake URI of an in-filesystem path (what the manifest records)."""
        return self.uri_root + path[len(self.root) :] if path.startswith(self.root) else path


def _ingest_date_of(path: str) -> str:
    part = path.rsplit("/", 2)[-2]
    return part.split("=", 1)[1] if part.startswith("ingest_date=") else ""


def upload_spool(
    settings: Settings, *, on_progress: ProgressCallback | None = None, clock: Clock | None = None
) -> UploadResult:
    """Publish every spool file to bronze (ingest_date = today in UTC) and record it.

    ``on_progress(1)`` is called after each spool file; ``clock`` (tests) replaces
    ``datetime.now(UTC)``.
    """
    from filelock import FileLock, Timeout

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.state_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:
        raise PipelineLockedError(
            f"Another upload holds {settings.state_dir / LOCK_FILE}; try again when it has finished."
        ) from None
    try:
        return _upload(settings, on_progress, clock or (lambda: datetime.now(UTC)))
    finally:
        lock.release()


def _upload(settings: Settings, on_progress: ProgressCallback | None, clock: Clock) -> UploadResult:
    started = time.monotonic()
    pub = _Publisher(settings)
    pub.clean_temp_files(settings.kafka.topic)
    result = UploadResult(0, 0, 0, 0, 0.0)
    spool_dir = settings.spool_dir
    for path in spool_files(spool_dir):
        try:
            batch = BatchId.parse(path.name)
        except ValueError:
            continue  # not ours: leave it alone
        published, records, size = _publish_one(pub, path, batch, clock)
        path.unlink()
        fsync_dir(spool_dir)
        if published:
            result.files += 1
            result.records += records
            result.bytes += size
        else:
            result.skipped_existing += 1
        if on_progress is not None:
            on_progress(1)
    result.seconds = time.monotonic() - started
    return result


def _publish_one(pub: _Publisher, path: Path, batch: BatchId, clock: Clock) -> tuple[bool, int, int]:
    """Publish one spool file; returns (newly published, records, bytes)."""
    import pyarrow.parquet as pq

    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    manifest_path = entry_path(pub.root, batch.topic, path.name)
    entry = read_entry(pub.fs, manifest_path)
    if entry is not None:
        if entry.sha256 != sha:
            raise StateFileError(
                f"Bronze already holds {path.name} with different content (sha256 {entry.sha256[:12]}, "
                f"spool {sha[:12]}); move one of them away."
            )
        return False, entry.records, entry.bytes
    existing = pub.existing_data(batch.topic).get(path.name)
    if existing is not None:  # published by a run killed before its manifest entry
        if hashlib.sha256(pub.fs.cat_file(existing)).hexdigest() != sha:
            raise StateFileError(
                f"Bronze file {existing} differs from the spool file of the same name; move one of them away."
            )
        target, ingest_date = existing, _ingest_date_of(existing)
    else:
        ingest_date = clock().astimezone(UTC).date().isoformat()
        target = bronze_file(pub.root, batch.topic, ingest_date, batch)
        pub.write(target, data)
        pub.existing_data(batch.topic)[path.name] = target
    fault_point("AFTER_BRONZE_PUBLISH")
    meta = pq.read_metadata(path)
    entry = ManifestEntry(
        file=path.name,
        path=pub.uri(target),
        topic=batch.topic,
        cluster_id=file_cluster_id(path) or batch.cluster,
        partition=batch.partition,
        first_offset=batch.first,
        last_offset=batch.last,
        records=meta.num_rows,
        bytes=len(data),
        sha256=sha,
        ingest_date=ingest_date,
        uploaded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    pub.write(manifest_path, entry.to_json())
    fault_point("AFTER_MANIFEST_WRITE")
    return True, entry.records, entry.bytes


def pending_spool_files(settings: Settings) -> int:
    """How many batch files wait in the spool (for progress totals and status)."""
    return len(spool_files(settings.spool_dir))
