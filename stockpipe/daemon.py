"""Detached local services (the embedded broker, the Spark Connect server): the shared process part.

A service runs in its own session (process group), outlives the command that started it and is
tracked by a JSON state file under ``<data_dir>/state``; its output goes to a log file next to it.
This module holds what every such service needs: loopback ports, liveness of a recorded pid,
the state file (written by temp file + rename), a start lock, the log tail for an error message,
and stopping a process group (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from stockpipe.errors import StateFileError

HOST = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` is a live (not zombie) process whose command line contains ``marker``.

    Reaps it first if it is our own dead child. The marker guards against a recycled pid.
    """
    import psutil

    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return marker in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def read_state(path: Path, cls: Callable[..., T], what: str) -> T | None:
    """The dataclass recorded in ``path``, or None when there is no state file."""
    try:
        data = json.loads(path.read_text())
        return cls(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StateFileError(f"The {what} state file {path} is corrupt ({exc}); delete it.") from exc


def write_state(path: Path, state: Any) -> None:
    """Record a dataclass in ``path`` atomically (temp file + rename)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, path)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file joined by `` | `` (empty when unreadable)."""
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def terminate(pid: int, marker: str, grace: float = 5.0) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL it after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not pid_alive(pid, marker):
                return
            time.sleep(0.05)


@contextlib.contextmanager
def start_lock(state_dir: Path, name: str, timeout: float) -> Iterator[None]:
    """An inter-process lock around starting or stopping one service."""
    from filelock import FileLock

    state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state_dir / name), timeout=timeout):
        yield


@contextlib.contextmanager
def on_signals(handle: Callable[[int], None]) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT call ``handle(signum)`` (previous handlers restored after).

    Signal handlers can only be set in the main thread: elsewhere the block runs unguarded.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        handle(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_on_signals(stop: Callable[[], None], exit_code: int | None = None) -> Any:
    """Within the block, SIGTERM and SIGINT run ``stop`` then exit (``exit_code``, else 128 + signal).

    For a command that owns child processes: they end with it instead of being orphaned. ``stop``
    must not wait on a ``Popen`` the interrupted code is waiting on (its lock is not reentrant).
    """

    def handle(signum: int) -> None:
        stop()
        raise SystemExit(128 + signum if exit_code is None else exit_code)

    return on_signals(handle)
