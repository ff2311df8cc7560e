"""The bronze manifest: one JSON object per published file (``<lake>/bronze/_manifest/<topic>/``).

The entry is written after its data file, so a listed entry always has its file. Entry
names are ``<batch file name>.json``; the batch id is parsed from the name alone, so
finding the highest published offsets needs a directory listing, not a read per entry.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from stockpipe.contract.layout import BatchId, bronze_manifest_dir
from stockpipe.errors import StateFileError
from stockpipe.lake.fs import filesystem

if TYPE_CHECKING:
    from stockpipe.settings import Settings

ENTRY_SUFFIX = ".json"


@dataclass(frozen=True)
class ManifestEntry:
    """One published bronze file (field names as in docs/architecture.md)."""

    file: str
    path: str
    topic: str
    cluster_id: str
    partition: int
    first_offset: int
    last_offset: int
    records: int
    bytes: int
    sha256: str
    ingest_date: str
    uploaded_at: str

    def to_json(self) -> builtins.bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: builtins.bytes, where: str) -> ManifestEntry:
        """Parse an entry; a corrupt one raises ``StateFileError`` naming ``where``."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            kwargs: dict[str, Any] = {}
            for f in fields(cls):
                value = data[f.name]
                want = int if f.type in ("int", int) else str
                if not isinstance(value, want) or isinstance(value, bool):
                    raise ValueError(f"field {f.name!r} is not {want.__name__}")
                kwargs[f.name] = value
            return cls(**kwargs)
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            raise StateFileError(f"The bronze manifest entry {where} is corrupt ({exc}).") from exc


def entry_path(root: str, topic: str, file_name: str) -> str:
    return f"{bronze_manifest_dir(root, topic)}/{file_name}{ENTRY_SUFFIX}"


def _entry_names(fs: Any, root: str, topic: str) -> list[str]:
    mdir = bronze_manifest_dir(root, topic)
    try:
        names = [str(p).rsplit("/", 1)[-1] for p in fs.ls(mdir, detail=False)]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(ENTRY_SUFFIX) and not n.startswith("."))


def published_batches(settings: Settings, topic: str | None = None) -> list[BatchId]:
    """Batch ids of every file in the bronze manifest of ``topic`` (names only, no reads)."""

    fs, root = filesystem(settings)
    out = []
    for name in _entry_names(fs, root, topic or settings.kafka.topic):
        try:
            out.append(BatchId.parse(name[: -len(ENTRY_SUFFIX)]))
        except ValueError:
            continue
    return out


def read_entry(fs: Any, path: str) -> ManifestEntry | None:
    """The entry at ``path``, or None when there is none."""
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return None
    return ManifestEntry.from_json(raw, path)


def read_manifest(settings: Settings, topic: str | None = None) -> list[ManifestEntry]:
    """Every manifest entry of ``topic`` (default: the configured topic), sorted by file name."""

    fs, root = filesystem(settings)
    topic = topic or settings.kafka.topic
    mdir = bronze_manifest_dir(root, topic)
    entries = []
    for name in _entry_names(fs, root, topic):
        entry = read_entry(fs, f"{mdir}/{name}")
        if entry is not None:
            entries.append(entry)
    return entries
