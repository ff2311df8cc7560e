"""Load state: for each warehouse target and raw table, the fingerprint of every loaded partition.

The file (``<state_dir>/warehouse_load_state.json``) is replaced atomically (write a temporary
file in the same folder, fsync, rename), so a crash leaves either the old or the new state,
never half of one. The loader updates it only after the warehouse transaction committed: a
crash in between means the next load reloads those partitions, which is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockpipe.errors import StateFileError
from stockpipe.fsutil import atomic_write_text

STATE_FILE_NAME = "warehouse_load_state.json"
STATE_VERSION = 1

TableState = dict[str, str]  # partition key -> fingerprint


@dataclass
class LoadState:
    """Fingerprints per target (e.g. ``duckdb:/data/warehouse.duckdb``) and table."""

    path: Path
    targets: dict[str, dict[str, TableState]] = field(default_factory=dict)

    def table(self, target: str, table: str) -> TableState:
        """The loaded partitions of ``table`` on ``target`` (a copy; change it with ``set_table``)."""
        return dict(self.targets.get(target, {}).get(table, {}))

    def set_table(self, target: str, table: str, partitions: TableState) -> None:
        self.targets.setdefault(target, {})[table] = dict(sorted(partitions.items()))

    def forget(self, target: str, table: str) -> None:
        self.targets.get(target, {}).pop(table, None)

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "targets": self.targets}


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE_NAME


def read_state(path: Path) -> LoadState:
    """Read the state file; a missing file is an empty state, a corrupt one a ``StateFileError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadState(path)
    except OSError as exc:
        raise StateFileError(f"Cannot read the load state file {path}: {exc.strerror}.") from exc
    try:
        doc = json.loads(text)
        targets = _validated_targets(doc)
    except (ValueError, TypeError) as exc:
        raise StateFileError(
            f"The load state file {path} is corrupt ({exc}); delete it to reload every partition."
        ) from exc
    return LoadState(path, targets)


def _validated_targets(doc: Any) -> dict[str, dict[str, TableState]]:
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise ValueError(f"expected an object with version {STATE_VERSION}")
    targets = doc.get("targets")
    if not isinstance(targets, dict):
        raise ValueError("'targets' is not an object")
    for target, tables in targets.items():
        if not isinstance(tables, dict):
            raise ValueError(f"target {target!r} is not an object")
        for table, parts in tables.items():
            if not isinstance(parts, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in parts.items()
            ):
                raise ValueError(f"table {table!r} of target {target!r} is not a string map")
    return targets


def write_state(state: LoadState) -> None:
    """Atomically replace the state file with ``state``."""
    state.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state.path, json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n")
