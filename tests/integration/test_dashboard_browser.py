"""The dashboard in real headless Chromium against a real Streamlit server and a real DuckDB file.

Every check runs twice: on a warehouse built by ``tests/helpers_gold.py`` (30 days, so moving
averages and movers have history) and on the warehouse of the session's real ``stockpipe run``
(``embedded_run``); ``STOCKPIPE_TEST_DASHBOARD_WAREHOUSE`` replaces the first by any other file.
Warehouses are copied first, so the original is never locked. Every expected value is computed
here with SQL on the file.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stockpipe.dashboard.app import DEFAULT_RANGE_DAYS
from stockpipe.dashboard.health import LAYER_TABLES
from stockpipe.dashboard.server import settings_env, streamlit_command
from stockpipe.settings import Settings
from tests.helpers_browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers_gold import GoldSpec, build_empty_warehouse, build_gold_warehouse
from tests.helpers_process import stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REAL_WAREHOUSE = os.environ.get("STOCKPIPE_TEST_DASHBOARD_WAREHOUSE")
WAIT_MS = 30_000
DAILY_JS = "document.querySelector('.st-key-daily-chart .js-plotly-plot')"
INTRADAY_JS = "document.querySelector('.st-key-intraday-chart .js-plotly-plot')"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def streamlit_server(data_dir: Path, refresh_seconds: int = 30) -> Iterator[str]:
    """A real ``streamlit run`` of the dashboard on a free loopback port; yields its URL."""
    settings = Settings(
        data_dir=data_dir,
        dashboard={"refresh_seconds": refresh_seconds},
        _env_file=None,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env["STOCKPIPE_CONFIG"] = str(data_dir / "no-such-stockpipe.toml")
    env.update(settings_env(settings))
    port = _free_port()
    log_path = data_dir.parent / f"streamlit-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            streamlit_command("127.0.0.1", port, python=sys.executable),
            env=env,
            cwd=data_dir.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout=15)


@pytest.fixture(scope="module", params=["generated-gold", "pipeline-built"])
def warehouse_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two warehouses: 30 generated days (every chart has history), and one `stockpipe run` built."""
    data = tmp_path_factory.mktemp("dash") / "data"
    data.mkdir()
    target = data / "warehouse.duckdb"
    real = REAL_WAREHOUSE
    if request.param == "pipeline-built":
        real = str(request.getfixturevalue("embedded_run")["data_dir"] / "warehouse.duckdb")
    if real:
        shutil.copyfile(real, target)
        if Path(real + ".wal").exists():
            shutil.copyfile(real + ".wal", str(target) + ".wal")
    else:
        build_gold_warehouse(target, GoldSpec(days=30, bars_per_day=120, with_freshness=True))
    return data


@pytest.fixture(scope="module")
def dashboard_url(warehouse_dir: Path) -> Iterator[str]:
    with streamlit_server(warehouse_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


def _sql(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _tables(data_dir: Path) -> set[str]:
    rows = _sql(data_dir, "select table_schema || '.' || table_name from information_schema.tables")
    return {r[0] for r in rows}


def _no_exception(page: Any) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


DECODE_JS = """
const decode = (v) => {
  if (!v || !v.bdata) { return Array.from(v || []); }
  const kinds = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
                 u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};
  const bytes = Uint8Array.from(atob(v.bdata), (ch) => ch.charCodeAt(0));
  return Array.from(new kinds[v.dtype](bytes.buffer));
};
"""


def _chart(page: Any, js: str) -> dict[str, Any]:
    """Title, trace type, point count, close values and drawn candle paths of a plotly div."""
    result: dict[str, Any] = page.evaluate(
        f"""() => {{ {DECODE_JS} const gd = {js};
        const c = gd.data[0] || {{type: null, x: [], close: []}};  // empty figure: a message only
        return {{title: gd.layout.title.text, type: c.type, n: c.x.length, close: decode(c.close),
                 candles: gd.querySelectorAll('.trace.boxes path').length}}; }}"""
    )
    return result


def _wait_chart(page: Any, js: str, symbol: str) -> dict[str, Any]:
    page.wait_for_function(
        f"() => {{ const gd = {js}; return !!(gd && gd.data && gd.layout && gd.layout.title "
        f"&& gd.layout.title.text.includes({symbol!r})); }}",
        timeout=WAIT_MS,
    )
    return _chart(page, js)


def _expected_daily(data_dir: Path, symbol: str) -> list[float]:
    first, last = _sql(data_dir, "select min(trade_date), max(trade_date) from gold.mart_daily_ohlcv")[0]
    start = max(first, last - timedelta(days=DEFAULT_RANGE_DAYS))
    rows = _sql(
        data_dir,
        "select close from gold.mart_daily_ohlcv where symbol = ? and trade_date between ? and ? "
        "order by trade_date",
        [symbol, start, last],
    )
    return [r[0] for r in rows]


def _expected_intraday(data_dir: Path, symbol: str) -> int:
    rows = _sql(
        data_dir,
        "with day as (select * from gold.fact_stock where symbol = ? and interval <> '1day' and "
        "trade_date = (select max(trade_date) from gold.mart_daily_ohlcv where symbol = ?)) "
        "select count(*) from day where interval_minutes = (select min(interval_minutes) from day)",
        [symbol, symbol],
    )
    return int(rows[0][0]) if rows else 0


def test_candlestick_drawn_and_symbol_switch_changes_it(
    page: Any, dashboard_url: str, warehouse_dir: Path, artifacts_dir: Path
) -> None:
    rows = _sql(warehouse_dir, "select distinct symbol from gold.mart_daily_ohlcv order by 1")
    symbols = [r[0] for r in rows]
    assert len(symbols) >= 2
    first, second = symbols[0], symbols[1]
    page.goto(dashboard_url)
    page.get_by_role("tab", name="Symbol").click()
    chart = _wait_chart(page, DAILY_JS, first)
    expected = _expected_daily(warehouse_dir, first)
    assert chart["type"] == "candlestick"
    assert chart["n"] == len(expected) > 0
    assert chart["close"] == pytest.approx(expected)
    assert chart["candles"] >= len(expected)  # one drawn path per candle
    intraday = _wait_chart(page, INTRADAY_JS, first)
    assert intraday["n"] == _expected_intraday(warehouse_dir, first) > 0

    page.locator(".st-key-symbol").get_by_role("combobox").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(second)}( —|$)")).click()
    switched = _wait_chart(page, DAILY_JS, second)
    expected_second = _expected_daily(warehouse_dir, second)
    assert switched["type"] == "candlestick"
    assert switched["close"] == pytest.approx(expected_second)
    assert switched["close"] != chart["close"]
    assert first not in switched["title"]
    assert f"symbol={second}" in page.url  # shareable: the picker is bound to the URL
    intraday2 = _wait_chart(page, INTRADAY_JS, second)
    assert intraday2["n"] == _expected_intraday(warehouse_dir, second)  # 0: daily bars only
    _no_exception(page)
    shot = artifacts_dir / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000


def test_health_panel_shows_the_warehouse_row_counts(
    page: Any, dashboard_url: str, warehouse_dir: Path
) -> None:
    page.goto(dashboard_url)
    page.get_by_role("tab", name="Pipeline health").click()
    page.wait_for_selector(".st-key-health-rows table tbody tr", timeout=WAIT_MS)
    cells = page.locator(".st-key-health-rows table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td, th')).map(c => c.innerText.trim()))"
    )
    shown = {row[-2]: row[-1] for row in cells}
    present = _tables(warehouse_dir)
    expected = {}
    for layer, name in LAYER_TABLES:
        table = f"{layer}.{name}"
        count = _sql(warehouse_dir, f"select count(*) from {table}")[0][0] if table in present else None
        expected[table] = "missing" if count is None else f"{count:,}"
    assert shown == expected
    assert shown["gold.fact_stock"] != "missing"
    if "raw.quarantine_summary" in present:
        rules = dict(
            _sql(warehouse_dir, "select rule, sum(records) from raw.quarantine_summary group by rule")
        )
        quarantine = page.locator(".st-key-health-quarantine table tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.querySelectorAll('td, th')).map(c => c.innerText.trim()))"
        )
        assert {row[-2]: int(row[-1].replace(",", "")) for row in quarantine} == rules
    latest = (
        _sql(warehouse_dir, "select p95_seconds from raw.freshness order by cycle_at desc limit 1")
        if "raw.freshness" in present
        else []
    )
    if latest:  # a batch `stockpipe run` records no streaming freshness; `stream` does
        stream = page.locator(".st-key-health-stream").inner_text()
        assert f"{latest[0][0]:.1f} s" in stream
    _no_exception(page)


def test_overview_movers_and_sector_chart(page: Any, dashboard_url: str, warehouse_dir: Path) -> None:
    page.goto(dashboard_url)
    page.wait_for_selector(".st-key-sector-chart .js-plotly-plot", timeout=WAIT_MS)
    gainers = [
        r[0]
        for r in _sql(
            warehouse_dir,
            "select symbol from gold.mart_daily_returns where daily_return > 0 and trade_date = "
            "(select max(trade_date) from gold.mart_daily_returns) order by daily_return desc limit 5",
        )
    ]
    if gainers:  # the sector chart can render before the movers table: wait for its rows too
        page.wait_for_selector(".st-key-gainers table tbody tr", timeout=WAIT_MS)
    shown = page.locator(".st-key-gainers table tbody tr").evaluate_all(
        "rows => rows.map(r => r.querySelector('td, th').innerText.trim())"
    )
    assert shown == gainers
    sectors = _sql(
        warehouse_dir,
        "select count(*) from gold.mart_sector_daily where trade_date = "
        "(select max(trade_date) from gold.mart_sector_daily)",
    )[0][0]
    bars = page.evaluate(
        "() => document.querySelector('.st-key-sector-chart .js-plotly-plot').data[0].y.length"
    )
    assert bars == sectors > 0
    _no_exception(page)


def test_missing_then_empty_then_filled_warehouse_refreshes_itself(
    page: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "warehouse.duckdb"
    with streamlit_server(data, refresh_seconds=1) as url:
        page.goto(url)
        message = page.locator(".st-key-warehouse-message")
        message.get_by_text("does not exist yet").wait_for(timeout=WAIT_MS)
        assert "stockpipe run" in message.inner_text()
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "dashboard-missing.png"))
        build_empty_warehouse(path)
        message.get_by_text("has no gold tables yet").wait_for(timeout=WAIT_MS)
        _no_exception(page)
        build_gold_warehouse(path, GoldSpec(days=2, bars_per_day=30))
        page.wait_for_selector(".st-key-sector-chart .js-plotly-plot", timeout=WAIT_MS)  # no reload
        assert message.count() == 0
        _no_exception(page)
        # new trading days arrive (streaming): the untouched date range follows them
        last = _sql(data, "select max(trade_date) from gold.mart_daily_ohlcv")[0][0]
        assert _range_end(page) == last.isoformat()
        build_gold_warehouse(path, GoldSpec(days=3, bars_per_day=30))
        newer = _sql(data, "select max(trade_date) from gold.mart_daily_ohlcv")[0][0]
        assert newer > last
        page.wait_for_function(
            f"() => Array.from(document.querySelectorAll('.st-key-range input')).pop()?.value === "
            f"'{newer.isoformat()}'",
            timeout=WAIT_MS,
        )
        _no_exception(page)


def _range_end(page: Any) -> str:
    values = [e.input_value() for e in page.locator(".st-key-range input").all()]
    return str(values[-1])
