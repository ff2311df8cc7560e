"""The local Spark Connect server's supervisor (idle stop, signals) and its command line, no JVM.

The supervisor is run for real (``python -m stockpipe.clean.connect_server``) around a stand-in
child (``sleep``): what is tested is the watchdog, not Spark.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stockpipe.clean import connect_server
from stockpipe.clean.session import spark_conf
from stockpipe.settings import Settings


def _supervisor(state_dir: Path, idle_seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "STOCKPIPE_TEST_SPARK_WATCH_SECONDS": "0.2"}
    cmd = [sys.executable, "-m", connect_server.MARKER, "--state-dir", str(state_dir)]
    cmd += ["--idle-seconds", str(idle_seconds), "--", "sleep", "600"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _child(proc: subprocess.Popen[str]) -> psutil.Process:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(proc.pid).children()
        if children:
            return children[0]
        time.sleep(0.05)
    raise AssertionError("the supervisor started no child")


def test_the_server_stops_itself_when_unused_for_the_idle_timeout(tmp_path: Path) -> None:
    connect_server.touch(tmp_path)
    proc = _supervisor(tmp_path, idle_seconds=1.5)
    child = _child(proc)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "idle" in out
    assert not child.is_running()


def test_a_heartbeat_keeps_the_server_alive_past_the_idle_timeout(tmp_path: Path) -> None:
    connect_server.touch(tmp_path)
    proc = _supervisor(tmp_path, idle_seconds=1.0)
    try:
        child = _child(proc)
        for _ in range(12):  # 3 s of use, three times the timeout
            connect_server.touch(tmp_path)
            time.sleep(0.25)
        assert proc.poll() is None
        assert child.is_running()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_supervisor_stops_the_server_it_owns(tmp_path: Path, sig: signal.Signals) -> None:
    connect_server.touch(tmp_path)
    proc = _supervisor(tmp_path, idle_seconds=600)
    child = _child(proc)
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    psutil.wait_procs([child], timeout=10)
    assert not child.is_running()


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux only")
def test_the_server_does_not_outlive_a_supervisor_killed_with_sigkill(tmp_path: Path) -> None:
    connect_server.touch(tmp_path)
    proc = _supervisor(tmp_path, idle_seconds=600)
    child = _child(proc)
    proc.kill()
    proc.communicate(timeout=30)
    _, alive = psutil.wait_procs([child], timeout=10)
    assert not alive, "the server's process outlived its supervisor"


def test_the_server_command_binds_loopback_on_the_configured_port(settings: Settings) -> None:
    settings.spark.connect_port = 15123
    cmd = connect_server.server_command(settings, 15123, spark_conf(settings))
    assert cmd[0].endswith("bin/spark-submit")
    assert "--class" not in cmd
    assert cmd[-1].endswith("stockpipe/clean/connect_host.py")  # hosts Spark's SparkConnectPlugin
    confs = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")
    assert confs["spark.plugins"] == connect_server.PLUGIN
    assert confs["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert confs["spark.connect.grpc.binding.port"] == "15123"
    assert confs["spark.sql.session.timeZone"] == "UTC"
    # the whole heap from the start (flat resident memory), the JIT option kept
    java_opts = confs["spark.driver.extraJavaOptions"].split()
    assert f"-Xms{settings.spark.driver_memory}" in java_opts
    assert "-XX:+AlwaysPreTouch" in java_opts
    assert "-XX:-DontCompileHugeMethods" in java_opts
    settings.spark.conf = {"spark.driver.extraJavaOptions": "-Xms512m"}
    cmd = connect_server.server_command(settings, 15123, spark_conf(settings))
    confs = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")
    assert confs["spark.driver.extraJavaOptions"].split().count("-Xms512m") == 1
    assert "-Xms2g" not in confs["spark.driver.extraJavaOptions"]
    settings.spark.conf = {"spark.driver.extraJavaOptions": "-XX:-AlwaysPreTouch"}
    cmd = connect_server.server_command(settings, 15123, spark_conf(settings))
    confs = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")
    assert "-XX:+AlwaysPreTouch" not in confs["spark.driver.extraJavaOptions"]  # the user's choice wins
    settings.spark.conf = {"spark.plugins": "com.example.Mine"}
    cmd = connect_server.server_command(settings, 15123, spark_conf(settings))
    confs = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")
    assert confs["spark.plugins"] == f"com.example.Mine,{connect_server.PLUGIN}"  # theirs kept


def test_status_masks_a_remote_token_and_names_classic(settings: Settings) -> None:
    from pydantic import SecretStr

    settings.spark.remote = SecretStr("sc://cluster.example:443/;token=s3cr3t;use_ssl=true")
    status = connect_server.server_status(settings)
    assert status["mode"] == "remote"
    assert "s3cr3t" not in str(status)
    assert "token=***" in status["url"]
    settings.spark.remote = None
    settings.spark.mode = "classic"
    assert connect_server.server_status(settings)["mode"] == "classic"
    settings.spark.mode = "connect"
    status = connect_server.server_status(settings)
    assert status["mode"] == "connect (local)"
    assert status["running"] is False
