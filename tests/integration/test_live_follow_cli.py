"""``stockpipe produce --source alphavantage --follow`` as a process: SIGTERM, kill -9, restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from stockpipe.settings import Settings
from tests.e2e_helpers import REPO_ROOT
from tests.helpers_live import Market, RealClock, market_server, read_topic

pytestmark = pytest.mark.integration
ARGS = [
    sys.executable,
    "-m",
    "stockpipe",
    "produce",
    "--source",
    "alphavantage",
    "--follow",
    "--symbols",
    "IBM,MSFT",
]


def _env(kafka_env: dict[str, str], url: str, **extra: str) -> dict[str, str]:
    return {
        **kafka_env,
        "STOCKPIPE_ALPHAVANTAGE_API_KEY": "LOOPBACK-KEY",
        "STOCKPIPE_ALPHAVANTAGE_BASE_URL": url,
        "STOCKPIPE_ALPHAVANTAGE_REQUESTS_PER_MINUTE": "600",
        "COLUMNS": "200",
        **extra,
    }


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ARGS, env=env, cwd=str(REPO_ROOT), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.2)


def _keys(settings: Settings) -> Counter[tuple[str, str, float]]:
    rows = [
        json.loads(v or b"")
        for _, v in read_topic(str(settings.kafka.bootstrap_servers), settings.kafka.topic)
    ]
    return Counter((r["symbol"], r["bar_ts"], r["close"]) for r in rows)


def test_sigterm_flushes_and_a_restart_sends_nothing_twice(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    market = Market(RealClock())
    with market_server(market) as url:
        env = _env(kafka_env, url)
        log = tmp_path / "first.log"
        proc = _start(env, log)
        _wait_for(log, "MSFT full", proc)  # both symbols filled
        _wait_for(log, "each symbol refreshed every", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert "produce --follow" in log.read_text()
        first = _keys(kafka_settings)
        assert first
        assert max(first.values()) == 1
        assert {s for s, _, _ in first} == {"IBM", "MSFT"}

        log2 = tmp_path / "second.log"
        proc = _start(env, log2)
        _wait_for(log2, "following alphavantage", proc)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log2.read_text()
    assert _keys(kafka_settings) == first  # not due yet: no request, nothing re-sent
    assert len(market.requests) == 2
    status = subprocess.run(
        [sys.executable, "-m", "stockpipe", "status"], env=env, cwd=str(REPO_ROOT),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "live sources" in status.stdout
    line = next(x for x in status.stdout.splitlines() if "alphavantage" in x)
    assert "poller" in line
    assert "stopped" in line


def test_kill_9_between_flush_and_checkpoint_resends_the_same_bars_only(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    market = Market(RealClock())
    with market_server(market) as url:
        env = _env(kafka_env, url)
        log = tmp_path / "killed.log"
        # the second batch (MSFT) is flushed to the topic, then the process dies before its checkpoint
        proc = _start({**env, "STOCKPIPE_FAULT_LIVE_AFTER_FLUSH": "2"}, log)
        assert proc.wait(timeout=120) == -signal.SIGKILL, log.read_text()
        killed = _keys(kafka_settings)
        checkpoint = json.loads(
            (kafka_settings.state_dir / "live" / "alphavantage.checkpoint.json").read_text()
        )
        assert set(checkpoint["marks"]) == {"IBM|1min"}  # MSFT's mark was never written

        log2 = tmp_path / "restart.log"
        proc = _start(env, log2)
        _wait_for(log2, "MSFT full", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log2.read_text()
    after = _keys(kafka_settings)
    msft = {k for k in killed if k[0] == "MSFT"}
    # IBM (checkpointed) was not polled again; MSFT was re-sent with the same key and values,
    # which silver keeps once; nothing else was sent twice
    assert [q["symbol"] for _, q in market.requests] == ["IBM", "MSFT", "MSFT"]
    assert all(after[k] == 2 for k in msft if k[1] != max(t for s, t, _ in msft))
    assert {k for k in after if k[0] == "IBM"} == {k for k in killed if k[0] == "IBM"}
