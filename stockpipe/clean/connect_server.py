"""The local Spark Connect server: warm Spark for every command, started on demand.

``ensure_server(settings)`` returns ``sc://127.0.0.1:<port>`` of a running server, starting one if
needed. The server is Spark's own Spark Connect service from the pyspark wheel's jars, run as
the ``SparkConnectPlugin`` of a small Spark application (``spark-submit ... connect_host.py``;
``clean.connect_host`` says why not ``SparkConnectServer``), bound to 127.0.0.1, under a small
supervisor process (``python -m stockpipe.clean.connect_server``) that

* owns the server (same process group: stopping the group stops both);
* stops it after ``spark.idle_timeout_minutes`` without use: clients touch
  ``<state_dir>/spark-connect.last_used`` when they open a session and every
  ``HEARTBEAT_SECONDS`` while it is open (so a long job or a ``stream`` keeps it alive);
* stops it on SIGTERM / SIGINT and removes the state file.

State and log follow the embedded broker's pattern (``stockpipe.daemon``):
``<state_dir>/spark-connect.json`` and ``<state_dir>/spark-connect.log``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe import daemon
from stockpipe.clean import connect_host
from stockpipe.daemon import HOST, log_tail, port_answers, start_lock
from stockpipe.errors import StockpipeError
from stockpipe.settings import redact_url

if TYPE_CHECKING:
    from stockpipe.settings import Settings

STATE_FILE = "spark-connect.json"
LOG_FILE = "spark-connect.log"
LOCK_FILE = "spark-connect.lock"
LAST_USED_FILE = "spark-connect.last_used"
MARKER = "stockpipe.clean.connect_server"  # in the supervisor's command line
PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
START_TIMEOUT = 120.0
HEARTBEAT_SECONDS = 30.0
WATCH_SECONDS = float(os.environ.get("STOCKPIPE_TEST_SPARK_WATCH_SECONDS", "5"))


@dataclass(frozen=True)
class ServerState:
    """What ``spark-connect.json`` records about the running local server."""

    pid: int  # the supervisor, leader of the process group
    port: int
    idle_timeout_minutes: int
    started_at: str
    log_file: str

    @property
    def url(self) -> str:
        return f"sc://{HOST}:{self.port}"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def server_command(settings: Settings, port: int, spark_conf: dict[str, str]) -> list[str]:
    """The ``spark-submit`` command line of the Connect server (``spark_conf`` as ``--conf``)."""
    conf = dict(spark_conf)
    conf.pop("spark.app.name", None)
    conf["spark.connect.grpc.binding.address"] = HOST
    conf["spark.connect.grpc.binding.port"] = str(port)
    conf["spark.ui.enabled"] = "false"
    # A long-running server holds its whole heap from the start, as Elasticsearch's defaults do
    # (-Xms = -Xmx = driver memory, pages touched at start): G1 otherwise grows and shrinks the
    # committed heap with each burst and touches old-generation pages for the first time long
    # after start, so the server's resident memory swung by hundreds of MiB in the soak
    # (docs/benchmarks.md) instead of staying where it started.
    heap = conf.get("spark.driver.memory", settings.spark.driver_memory)
    java_opts = conf.get("spark.driver.extraJavaOptions", "")
    if "-Xms" not in java_opts:
        java_opts = f"{java_opts} -Xms{heap}"
    if "AlwaysPreTouch" not in java_opts:
        java_opts = f"{java_opts} -XX:+AlwaysPreTouch"
    conf["spark.driver.extraJavaOptions"] = java_opts.strip()
    plugins = [p for p in conf.get("spark.plugins", "").split(",") if p.strip()]
    conf["spark.plugins"] = ",".join(dict.fromkeys([*plugins, PLUGIN]))
    cmd = [str(spark_home() / "bin" / "spark-submit")]
    cmd += ["--name", "stockpipe-connect", "--master", settings.spark.master]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(Path(connect_host.__file__).resolve())]


CLIENT_ENV = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_MODE")
"""Variables that make pyspark a Connect client: the server's host program builds a classic session."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=HOST,
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


def read_state(state_dir: Path) -> ServerState | None:
    return daemon.read_state(state_dir / STATE_FILE, ServerState, "Spark Connect")


def live_state(state_dir: Path) -> ServerState | None:
    """The recorded server if its process is alive and its port answers, else None."""
    state = read_state(state_dir)
    if state is not None and daemon.pid_alive(state.pid, MARKER) and port_answers(state.port):
        return state
    return None


def touch(state_dir: Path) -> None:
    """Record a use of the local server (the idle clock starts again)."""
    with contextlib.suppress(OSError):
        (state_dir / LAST_USED_FILE).touch()


def spawn_server(
    settings: Settings, spark_conf: dict[str, str], *, timeout: float = START_TIMEOUT
) -> ServerState:
    """Start the supervisor + server detached, wait until the server accepts connections."""
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    port = settings.spark.connect_port
    if port_answers(port):
        raise StockpipeError(
            f"Port {port} on {HOST} is taken by another program; set STOCKPIPE_SPARK_CONNECT_PORT "
            "to a free port for the local Spark Connect server."
        )
    log_path = state_dir / LOG_FILE
    touch(state_dir)
    cmd = [sys.executable, "-m", MARKER, "--state-dir", str(state_dir)]
    cmd += ["--idle-seconds", str(settings.spark.idle_timeout_minutes * 60), "--"]
    cmd += server_command(settings, port, spark_conf)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
        )
    state = ServerState(
        pid=proc.pid,
        port=port,
        idle_timeout_minutes=settings.spark.idle_timeout_minutes,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        log_file=str(log_path),
    )
    deadline = time.monotonic() + timeout
    # a SIGTERM/SIGINT while waiting stops the server this command started (it owns it until ready)
    with daemon.stop_on_signals(lambda: daemon.terminate(proc.pid, MARKER)):
        while not port_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                daemon.terminate(proc.pid, MARKER)
                what = "exited" if proc.poll() is not None else f"did not start within {timeout:.0f} s"
                tail = log_tail(log_path)
                raise StockpipeError(f"The local Spark Connect server {what}. Log: {tail or log_path}")
            time.sleep(0.1)
    daemon.write_state(state_dir / STATE_FILE, state)
    return state


def ensure_server(settings: Settings, spark_conf: dict[str, str]) -> ServerState:
    """The running local server, started if there is none (stopped at exit without keep_warm).

    ``spark_conf`` (``session.spark_conf``) configures a server this call starts.
    """
    with start_lock(settings.state_dir, LOCK_FILE, START_TIMEOUT * 2):
        state = live_state(settings.state_dir)
        if state is None:
            (settings.state_dir / STATE_FILE).unlink(missing_ok=True)  # stale: dead pid
            state = spawn_server(settings, spark_conf)
            if not settings.spark.keep_warm:
                atexit.register(stop_server, settings)
    touch(settings.state_dir)
    return state


def stop_server(settings: Settings) -> bool:
    """Stop the local server if one is recorded; True if a live one was stopped."""
    with start_lock(settings.state_dir, LOCK_FILE, START_TIMEOUT * 2):
        state = read_state(settings.state_dir)
        if state is None:
            return False
        alive = daemon.pid_alive(state.pid, MARKER)
        if alive:
            daemon.terminate(state.pid, MARKER, grace=15.0)
        (settings.state_dir / STATE_FILE).unlink(missing_ok=True)
        return alive


def server_status(settings: Settings) -> dict[str, Any]:
    """Mode, address and liveness of the Spark stockpipe uses (never starts anything)."""

    sp = settings.spark
    if sp.remote is not None:
        return {"mode": "remote", "url": redact_url(sp.remote.get_secret_value()), "running": None}
    if sp.mode == "classic":
        return {"mode": "classic", "master": sp.master, "running": None}
    status: dict[str, Any] = {"mode": "connect (local)", "running": False}
    status["state_file"] = str(settings.state_dir / STATE_FILE)
    state = read_state(settings.state_dir)
    if state is None:
        return status
    status.update(asdict(state))
    status["url"] = state.url
    status["running"] = daemon.pid_alive(state.pid, MARKER) and port_answers(state.port)
    with contextlib.suppress(OSError):
        idle = time.time() - (settings.state_dir / LAST_USED_FILE).stat().st_mtime
        status["idle_minutes"] = round(idle / 60, 1)
    return status


def start_heartbeat(state_dir: Path) -> None:
    """Touch the last-use file every ``HEARTBEAT_SECONDS`` while this process lives (daemon thread)."""

    def beat() -> None:
        while True:
            touch(state_dir)
            time.sleep(HEARTBEAT_SECONDS)

    threading.Thread(target=beat, name="spark-connect-heartbeat", daemon=True).start()


# ---- the supervisor process ------------------------------------------------------------------


def _die_with(parent: int) -> None:
    """In the server's process, before ``exec``: on Linux, get SIGTERM when ``parent`` dies.

    A supervisor killed with SIGKILL (or by the OOM killer) cannot stop its child; without this
    the JVM would live on, unrecorded, holding the port (seen once while developing: the next
    ``stockpipe run`` then failed with "port taken by another program"). A parent that died
    before the request was made is caught by the parent-pid check. Elsewhere a no-op.
    """
    # the supervisor's Python handlers are still installed in this forked child until ``exec``: a
    # SIGTERM arriving now would only set the supervisor's flag in this copy and be lost, and the
    # server would outlive its parent (seen as a rare flake of the SIGKILL test); the default kills
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(state_dir: Path, idle_seconds: float, cmd: list[str]) -> int:
    """Run the server as a child; stop it when idle too long, on SIGTERM/SIGINT, or when it dies."""
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    # handlers first: a signal that arrives while the child is starting still stops it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    me = os.getpid()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=lambda: _die_with(me))
    reason = "stopped"
    while not stopping.wait(WATCH_SECONDS):
        if child.poll() is not None:
            reason = f"the server exited with code {child.returncode}"
            break
        try:
            idle = time.time() - (state_dir / LAST_USED_FILE).stat().st_mtime
        except OSError:
            idle = 0.0
        if idle > idle_seconds:
            reason = f"idle for {idle_seconds / 60:g} min"
            break
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    state = read_state(state_dir)
    if state is not None and state.pid == os.getpid():
        (state_dir / STATE_FILE).unlink(missing_ok=True)
    print(f"stockpipe: Spark Connect server stopped ({reason})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stockpipe's Spark Connect server supervisor")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--idle-seconds", type=float, required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return supervise(args.state_dir, args.idle_seconds, cmd)


if __name__ == "__main__":
    sys.exit(main())
