"""The cleaning job's state under ``silver/_state``: the ledger and the swap journal.

* **Ledger** (``ledger-<n>.json``): the bronze files already cleaned into silver, with their
  record counts. A new version is written (temp file + rename to a fresh name, both atomic)
  only after the silver and quarantine writes of a run are in place; the highest version wins
  and older ones are then deleted. A corrupt ledger stops the job with ``StateFileError``
  naming the file: silently starting over would clean every bronze file a second time.
* **Journal** (``journal.json``): the write-ahead record of a run's commit: which staged
  partitions to swap in, which quarantine files to move (or, for a quarantine replay, delete),
  which files to add to the ledger.
  It is written after everything is staged and before the first rename, and deleted when the
  commit is complete. A run that finds a journal replays it first (every step is idempotent),
  so a kill at any point converges to the same silver.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from stockpipe.errors import StateFileError
from stockpipe.lake.fs import LakeFS

LEDGER_RE = re.compile(r"^ledger-(\d{10})\.json$")
JOURNAL_NAME = "journal.json"
STATE_VERSION = 1


def _load_json(fs: LakeFS, uri: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(fs.read_bytes(uri))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFileError(
            f"The {what} {uri} is corrupt ({type(exc).__name__}); restore it from a backup "
            "or delete it deliberately to start over."
        ) from exc
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise StateFileError(
            f"The {what} {uri} is not a stockpipe version-{STATE_VERSION} state file; "
            "restore it from a backup or delete it deliberately to start over."
        )
    return doc


@dataclass
class Ledger:
    """Bronze file name → records, for every bronze file already cleaned."""

    files: dict[str, int] = field(default_factory=dict)
    seq: int = 0


def load_ledger(fs: LakeFS, state_dir: str) -> Ledger:
    versions = [(int(m[1]), e.uri) for e in fs.list(state_dir) if (m := LEDGER_RE.match(e.name))]
    if not versions:
        return Ledger()
    seq, uri = max(versions)
    doc = _load_json(fs, uri, "clean ledger")
    files = doc.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, int) for v in files.values()):
        raise StateFileError(f"The clean ledger {uri} has no valid 'files' map; restore it from a backup.")
    return Ledger(files={str(k): int(v) for k, v in files.items()}, seq=seq)


def save_ledger(fs: LakeFS, state_dir: str, ledger: Ledger) -> Ledger:
    """Write the next ledger version atomically, then drop the older versions."""
    seq = ledger.seq + 1
    doc = {"version": STATE_VERSION, "files": dict(sorted(ledger.files.items()))}
    fs.write_atomic(f"{state_dir}/ledger-{seq:010d}.json", json.dumps(doc).encode())
    for e in fs.list(state_dir):
        m = LEDGER_RE.match(e.name)
        if m and int(m[1]) < seq:
            fs.delete(e.uri)
    return Ledger(files=dict(ledger.files), seq=seq)


@dataclass
class Journal:
    """A run's commit plan (see the module docstring)."""

    run_id: str
    staging: str
    partitions: list[str]
    quarantine_moves: list[tuple[str, str]]
    ledger_add: dict[str, int]
    quarantine_deletes: list[str] = field(default_factory=list)  # quarantine replay: emptied files

    def to_json(self) -> bytes:
        doc = {
            "version": STATE_VERSION,
            "run_id": self.run_id,
            "staging": self.staging,
            "partitions": self.partitions,
            "quarantine_moves": [list(m) for m in self.quarantine_moves],
            "ledger_add": self.ledger_add,
            "quarantine_deletes": self.quarantine_deletes,
        }
        return json.dumps(doc).encode()


def write_journal(fs: LakeFS, state_dir: str, journal: Journal) -> None:
    fs.write_atomic(f"{state_dir}/{JOURNAL_NAME}", journal.to_json())


def load_journal(fs: LakeFS, state_dir: str) -> Journal | None:
    uri = f"{state_dir}/{JOURNAL_NAME}"
    if not fs.exists(uri):
        return None
    doc = _load_json(fs, uri, "clean journal")
    try:
        return Journal(
            run_id=str(doc["run_id"]),
            staging=str(doc["staging"]),
            partitions=[str(p) for p in doc["partitions"]],
            quarantine_moves=[(str(a), str(b)) for a, b in doc["quarantine_moves"]],
            ledger_add={str(k): int(v) for k, v in doc["ledger_add"].items()},
            quarantine_deletes=[str(u) for u in doc.get("quarantine_deletes", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(
            f"The clean journal {uri} is incomplete ({exc}); restore it from a backup."
        ) from exc


def delete_journal(fs: LakeFS, state_dir: str) -> None:
    fs.delete(f"{state_dir}/{JOURNAL_NAME}")
