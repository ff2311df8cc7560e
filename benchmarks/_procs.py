"""Benchmark child processes: their environment, and stopping what they left running (bench_*.py).

``stockpipe run`` and ``stream`` leave the embedded broker and the local Spark Connect server warm
for the next command; a benchmark's data folder has no next command, so it stops both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from stockpipe.daemon import free_port


def child_env(data_dir: Path, mode: str | None = None, **extra: str) -> dict[str, str]:
    """This shell's environment without its ``STOCKPIPE_*`` settings, for a child in ``data_dir``.

    With ``mode`` (``classic`` or ``connect``) the child uses that Spark mode; its local Spark
    Connect server gets a free port, so it never meets a server another program left running.
    ``extra`` are more ``STOCKPIPE_*`` variables.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(STOCKPIPE_DATA_DIR=str(data_dir), **extra)
    if mode is not None:
        env.update(STOCKPIPE_SPARK_MODE=mode, STOCKPIPE_SPARK_CONNECT_PORT=str(free_port()))
    return env


def stop_owned(env: dict[str, str]) -> None:
    """``stockpipe spark stop`` and ``stockpipe broker stop`` with the child's environment."""
    for cmd in (["spark", "stop"], ["broker", "stop"]):
        subprocess.run([sys.executable, "-m", "stockpipe", *cmd], env=env, capture_output=True, check=False)


def tree_rss(proc: psutil.Process, only: str | None = None, skip: str | None = None) -> int | None:
    """Resident memory of ``proc`` and its descendants, in bytes (None when none could be read).

    ``only``/``skip`` keep or leave out processes whose name contains that text. A child running
    the same executable as its parent is a fork that has not exec'd yet (the JVM forks for an
    instant to run Hadoop's ``chmod``; a Python process may fork a worker): it shares its parent's
    pages copy-on-write, so adding its RSS would count them twice. It adds its private pages (USS)
    only.
    """
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return None
    exes: dict[int, str] = {}
    for p in procs:
        try:
            exes[p.pid] = p.exe()
        except psutil.Error:
            continue
    total, found = 0, False
    for p in procs:
        try:
            name = p.name()
            if (only is not None and only not in name) or (skip is not None and skip in name):
                continue
            parent_exe = exes.get(p.ppid())
            if p is not proc and parent_exe is not None and parent_exe == exes.get(p.pid):
                total += p.memory_full_info().uss
            else:
                total += p.memory_info().rss
            found = True
        except psutil.Error:
            continue
    return total if found else None
