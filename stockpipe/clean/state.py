"""The cleaning job's state under ``silver/_state``: the ledger and the swap journal.

* **Ledger** (``ledger-<n>.json``): the bronze files already cleaned into silver, with their
  record counts. A new version is written (temp file + rename to a fresh name, both atomic)
  only after the silver and quarantine writes of a run are in place; the highest version wins
  and older ones are then deleted. A corrupt ledger stops the job with ``StateFileError``
  naming the file: silently starting over would clean every bronze file a second time.
* **Journal** (``journal.json``): the write-ahead record of a run's commit: which staged
  partitions to swap in (``<dataset>/<column>=<value>``, e.g. ``stock_prices/trade_date=2024-03-04``
  or ``stock_prices_daily/trade_month=2024-03``; a journal written before the daily dataset
  existed lists bare trade dates, read as ``stock_prices/trade_date=<date>``), which partitions
  to remove, which quarantine files to move (or, for a quarantine replay, delete), which files
  to add to the ledger, and (layout migration) the silver layout version to record.
* **Layout marker** (``layout.json``): the silver layout version (``layout.SILVER_LAYOUT_VERSION``);
  missing means a lake written before the marker existed (version 1: daily bars under
  ``stock_prices/trade_date=D``), which ``clean.migrate`` moves once.
  It is written after everything is staged and before the first rename, and deleted when the
  commit is complete. A run that finds a journal replays it first (every step is idempotent),
  so a kill at any point converges to the same silver.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from stockpipe.contract.layout import INTRADAY_PRICES
from stockpipe.errors import StateFileError
from stockpipe.lake.fs import LakeFS

LEDGER_RE = re.compile(r"^ledger-(\d{10})\.json$")
JOURNAL_NAME = "journal.json"
LAYOUT_NAME = "layout.json"
STATE_VERSION = 1
_BARE_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    partitions: list[str]  # <dataset>/<column>=<value>, staged under <staging>/ with that path
    quarantine_moves: list[tuple[str, str]]
    ledger_add: dict[str, int]
    quarantine_deletes: list[str] = field(default_factory=list)  # quarantine replay: emptied files
    removed_partitions: list[str] = field(default_factory=list)  # layout migration: emptied days
    layout_version: int | None = None  # silver layout to record (a migration, a new lake's first commit)

    def to_json(self) -> bytes:
        doc = {
            "version": STATE_VERSION,
            "run_id": self.run_id,
            "staging": self.staging,
            "partitions": self.partitions,
            "quarantine_moves": [list(m) for m in self.quarantine_moves],
            "ledger_add": self.ledger_add,
            "quarantine_deletes": self.quarantine_deletes,
            "removed_partitions": self.removed_partitions,
            "layout_version": self.layout_version,
        }
        return json.dumps(doc).encode()


def journal_partition(part: str) -> str:
    """A journal's partition entry as ``<dataset>/<column>=<value>`` (a bare date: intraday)."""
    if _BARE_DATE_RE.match(part):
        return f"{INTRADAY_PRICES.name}/{INTRADAY_PRICES.partition}={part}"
    return part


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
            partitions=[journal_partition(str(p)) for p in doc["partitions"]],
            quarantine_moves=[(str(a), str(b)) for a, b in doc["quarantine_moves"]],
            ledger_add={str(k): int(v) for k, v in doc["ledger_add"].items()},
            quarantine_deletes=[str(u) for u in doc.get("quarantine_deletes", [])],
            removed_partitions=[str(p) for p in doc.get("removed_partitions", [])],
            layout_version=None if doc.get("layout_version") is None else int(doc["layout_version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(
            f"The clean journal {uri} is incomplete ({exc}); restore it from a backup."
        ) from exc


def delete_journal(fs: LakeFS, state_dir: str) -> None:
    fs.delete(f"{state_dir}/{JOURNAL_NAME}")


def load_layout_version(fs: LakeFS, state_dir: str) -> int:
    """The silver layout version the lake's marker records (1 when there is no marker)."""
    uri = f"{state_dir}/{LAYOUT_NAME}"
    if not fs.exists(uri):
        return 1
    doc = _load_json(fs, uri, "silver layout marker")
    layout = doc.get("silver_layout")
    if not isinstance(layout, int):
        raise StateFileError(f"The silver layout marker {uri} has no valid 'silver_layout'; restore it.")
    return layout


def write_layout_version(fs: LakeFS, state_dir: str, layout: int) -> None:
    fs.write_atomic(
        f"{state_dir}/{LAYOUT_NAME}", json.dumps({"version": STATE_VERSION, "silver_layout": layout}).encode()
    )
