"""The Kafka trades -> bars aggregator: kill -9 mid-window, restart, bars equal a pandas resample."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stockpipe.contract import Bar
from stockpipe.ingest.producer import produce_raw
from stockpipe.ingest.topics import ensure_trades_topic, topic_configs
from stockpipe.settings import Settings
from stockpipe.sources.live.aggregator_service import dead_letter_path, read_dead_letters
from stockpipe.sources.live.status import read_live_statuses
from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import REPO_ROOT
from tests.helpers_live import read_topic
from tests.live_helpers import bars_frame, mismatches, pandas_bars, random_trades, trade

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _send(settings: Settings, trades: list[Trade]) -> None:
    kafka = settings.kafka.model_copy(update={"topic": settings.kafka.trades_topic})
    result = produce_raw(
        settings.model_copy(update={"kafka": kafka}), [(t.key(), t.to_json_bytes()) for t in trades]
    )
    assert result.failed == 0


def _aggregate(env: dict[str, str], log: Path, **extra: str) -> int:
    with log.open("wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "stockpipe", "aggregate", "--idle-exit", "8"],
            env={**env, **extra}, cwd=str(REPO_ROOT), stdout=out, stderr=subprocess.STDOUT, timeout=300,
        )  # fmt: skip
    return proc.returncode


def test_kill_9_mid_window_and_restart_rebuilds_the_open_windows_exactly(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    kafka = kafka_settings.kafka.model_copy(
        update={"trades_topic": f"trades-{suffix}", "aggregator_group_id": f"agg-{suffix}"}
    )
    settings = kafka_settings.model_copy(update={"kafka": kafka})
    env = {
        **kafka_env,
        "STOCKPIPE_KAFKA_TRADES_TOPIC": kafka.trades_topic,
        "STOCKPIPE_KAFKA_AGGREGATOR_GROUP_ID": kafka.aggregator_group_id,
    }
    ensure_trades_topic(settings)
    assert topic_configs(settings, kafka.trades_topic)["retention.ms"] == str(3 * 24 * 3600 * 1000)
    trades = random_trades(["AAPL", "MSFT", "IBM"], START, seconds=200, per_second=20, jitter=1.0)
    half = len(trades) // 2  # about 100 s in: the second minute's windows are open
    _send(settings, trades[:half])
    # killed right after its first flush of bars: no snapshot written, nothing committed
    assert (
        _aggregate(env, tmp_path / "killed.log", STOCKPIPE_FAULT_AGGREGATOR_AFTER_FLUSH="1")
        == -signal.SIGKILL
    )
    before = len(read_topic(str(kafka.bootstrap_servers), kafka.topic))
    assert before > 0

    late = trade("AAPL", START + timedelta(seconds=10), 1.0, 7)  # beyond the 120 s grace by then
    _send(settings, [*trades[half:], late])
    log = tmp_path / "restart.log"
    assert _aggregate(env, log) == 0, log.read_text()

    bars = [
        Bar.model_validate_json(v or b"") for _, v in read_topic(str(kafka.bootstrap_servers), kafka.topic)
    ]
    versions: dict[tuple[str, datetime], list[Bar]] = defaultdict(list)
    for bar in bars:
        versions[bar.symbol, bar.bar_ts].append(bar)
    resent = [v for v in versions.values() if len(v) > 1]
    assert resent, "the restart re-emitted the bars the killed run had flushed"
    for v in resent:  # same key, same values; silver keeps one
        assert {(b.open, b.high, b.low, b.close, b.volume) for b in v} == {
            (v[0].open, v[0].high, v[0].low, v[0].close, v[0].volume)
        }
    assert mismatches(bars_frame(bars), pandas_bars(trades)) == 0
    dead = read_dead_letters(settings)
    assert [d["reason"] for d in dead] == ["late_trade"]
    assert dead[0]["trade"]["price"] == 1.0
    assert dead_letter_path(settings).parent == settings.data_path / "dead_letters"
    status = {s["name"]: s for s in read_live_statuses(settings)}["aggregator"]
    assert status["late_trades"] == 1
    assert status["running"] is False
    assert json.loads((settings.state_dir / "live" / f"aggregator-{kafka.trades_topic}.json").read_text())[
        "seen"
    ]
