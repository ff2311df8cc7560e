"""Write a replay's unparsable rows to the quarantine layer (contract: ``contract/unparsable.py``).

One file per input file, named from the file's content hash, written to a hidden temporary name
and renamed into place: a re-run of the same file (even on another day) replaces the earlier
file instead of adding a copy, a crash leaves either the old or the new file, and a re-run that
parses every row (say, with a ``--date-format`` that fixes them) removes it.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from stockpipe.contract.layout import silver_dir
from stockpipe.contract.unparsable import FILE_PREFIX, UNPARSABLE_RULE, unparsable_schema
from stockpipe.lake.fs import filesystem
from stockpipe.settings import Settings
from stockpipe.sources.base import Source
from stockpipe.sources.errors import ReplayParseError
from stockpipe.sources.replay import ReplaySource


def file_digest(path: Path) -> str:
    """16 hex chars of the sha256 of ``path``'s bytes: the quarantine file's name."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def write_unparsable(
    settings: Settings,
    files: Iterable[Path],
    errors: Iterable[ReplayParseError],
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """Quarantine ``errors`` (each names its file); returns rows written per file.

    Every file in ``files`` gets its quarantine file (re)written, or removed when it has no
    unparsable row any more.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    moment = now or datetime.now(UTC)
    by_file: dict[str, list[ReplayParseError]] = defaultdict(list)
    for err in errors:
        by_file[err.file].append(err)
    fs, root = filesystem(settings)
    qdir = silver_dir(root, "quarantine")
    written: dict[str, int] = {}
    for path in files:
        name = f"{FILE_PREFIX}{file_digest(Path(path))}.parquet"
        existing = sorted(fs.glob(f"{qdir}/ingest_date=*/{name}")) if fs.exists(qdir) else []
        rows = by_file.get(str(path), [])
        if not rows:
            for old in existing:
                fs.rm(old)
            continue
        target = existing[0] if existing else f"{qdir}/ingest_date={moment.date().isoformat()}/{name}"
        for extra in existing[1:]:
            fs.rm(extra)
        n = len(rows)
        table = pa.table(
            {
                "kafka_topic": pa.nulls(n, pa.string()),
                "kafka_partition": pa.nulls(n, pa.int32()),
                "kafka_offset": pa.nulls(n, pa.int64()),
                "kafka_ts": pa.nulls(n, pa.timestamp("us", tz="UTC")),
                "key": pa.nulls(n, pa.string()),
                "raw_payload": [e.raw for e in rows],
                "failed_rules": [[UNPARSABLE_RULE]] * n,
                "bronze_file": pa.nulls(n, pa.string()),
                "quarantined_at": [moment] * n,
                "source_file": [e.file for e in rows],
                "source_line": [e.line for e in rows],
                "detail": [e.reason for e in rows],
            },
            schema=unparsable_schema(),
        )
        folder = target.rsplit("/", 1)[0]
        fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{name}.{os.getpid()}.tmp"
        with fs.open(tmp, "wb") as fh:
            pq.write_table(table, fh)
        fs.mv(tmp, target)
        written[str(path)] = n
    return written


def quarantine_unparsable(settings: Settings, source: Source) -> int:
    """Before a replay sends anything: parse every file (a strict replay raises here, naming file
    and line) and quarantine the unparsable rows of a lenient one. Returns how many there were
    (0 for other sources)."""
    if not isinstance(source, ReplaySource):
        return 0
    source.load()
    write_unparsable(settings, source.options.paths, source.errors)
    return len(source.errors)
