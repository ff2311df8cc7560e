"""Live-process status files: what ``stockpipe status`` and the dashboard show per live source.

Each live process (a polling source, a websocket feed, the trades -> bars aggregator) writes
``<data>/state/live/status-<name>.json`` atomically at most about once a second and at exit:
connected or not, last message time, messages per second, bars emitted, late trades, reconnects,
the pid and when it was written. Readers treat a file whose process is gone as ``stopped``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe.sources.live.atomic import write_json_atomic

if TYPE_CHECKING:
    from stockpipe.settings import Settings

WRITE_EVERY = 1.0


@dataclass
class LiveStatus:
    """One live process's counters (the fields of the status file)."""

    name: str
    kind: str  # poller | feed | aggregator
    connected: bool = False
    last_message_at: str | None = None
    messages: int = 0
    messages_per_second: float = 0.0
    bars_emitted: int = 0
    late_trades: int = 0
    reconnects: int = 0
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    updated_at: str | None = None
    pid: int = field(default_factory=os.getpid)
    stopped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def status_dir(settings: Settings) -> Path:
    return settings.state_dir / "live"


def status_path(settings: Settings, name: str) -> Path:
    return status_dir(settings) / f"status-{name}.json"


class StatusWriter:
    """Keeps a ``LiveStatus`` and writes it atomically, rate-limited (``write(force=True)`` always)."""

    def __init__(self, settings: Settings, name: str, kind: str) -> None:
        self.path = status_path(settings, name)
        self.status = LiveStatus(name=name, kind=kind)
        self._written = 0.0
        self._rate_mark = (time.monotonic(), 0)

    def message(self, n: int = 1, at: datetime | None = None) -> None:
        self.status.messages += n
        self.status.last_message_at = (at or datetime.now(UTC)).isoformat()

    def write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < WRITE_EVERY:
            return
        then, count = self._rate_mark
        if now - then > 0:
            self.status.messages_per_second = round((self.status.messages - count) / (now - then), 2)
        self._rate_mark = (now, self.status.messages)
        self.status.updated_at = datetime.now(UTC).isoformat()
        write_json_atomic(self.path, asdict(self.status))
        self._written = now

    def close(self) -> None:
        self.status.connected = False
        self.status.stopped = True
        self.write(force=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_live_statuses(settings: Settings) -> list[dict[str, Any]]:
    """Every live status file, newest first; a dead process's file says ``running: False``."""
    folder = status_dir(settings)
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("status-*.json")) if folder.exists() else []:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out.append({"name": path.stem.removeprefix("status-"), "error": f"unreadable {path.name}"})
            continue
        data["running"] = not data.get("stopped") and _alive(int(data.get("pid", 0) or 0))
        if not data["running"]:
            data["connected"] = False
        out.append(data)
    return out


STATUS_COLUMNS = (
    "source", "kind", "state", "connected", "last message", "messages/s", "bars emitted",
    "late trades", "reconnects",
)  # fmt: skip


def _age(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = max(0, round((now - datetime.fromisoformat(iso)).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


def status_rows(statuses: list[dict[str, Any]], now: datetime | None = None) -> list[tuple[str, ...]]:
    """Display rows (``STATUS_COLUMNS``) of ``read_live_statuses``: used by the CLI and the dashboard."""
    now = now or datetime.now(UTC)
    rows: list[tuple[str, ...]] = []
    for s in statuses:
        if "error" in s:
            rows.append((str(s.get("name")), "?", s["error"], "-", "-", "-", "-", "-", "-"))
            continue
        rows.append(
            (
                str(s.get("name")),
                str(s.get("kind", "")),
                "running" if s.get("running") else "stopped",
                "yes" if s.get("connected") else "no",
                _age(s.get("last_message_at"), now),
                f"{float(s.get('messages_per_second') or 0):,.1f}",
                f"{int(s.get('bars_emitted') or 0):,}",
                f"{int(s.get('late_trades') or 0):,}",
                f"{int(s.get('reconnects') or 0):,}",
            )
        )
    return rows
