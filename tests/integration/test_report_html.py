"""``stockpipe report``: data for every symbol, no network resource, renders offline in Chromium."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from stockpipe.cli import app
from stockpipe.dashboard.report import build_report, slug
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings
from tests.helpers_browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers_gold import GoldSpec, build_gold_warehouse

pytestmark = pytest.mark.integration
NETWORK = re.compile(r"^\s*(https?:|//|ftp:|wss?:)", re.IGNORECASE)


class _Resources(HTMLParser):
    """Collects every URL-bearing attribute and inline style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "srcset", "data", "action", "poster", "background"} and value:
                self.urls.append((tag, name, value))
            if name == "style" and value:
                self.styles.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, str]:
    data = tmp_path_factory.mktemp("report")
    build_gold_warehouse(data / "warehouse.duckdb", GoldSpec(days=5, bars_per_day=90))
    settings = Settings(data_dir=data, _env_file=None)
    out = data / "out" / "report.html"
    build_report(settings, out)
    return settings, out, out.read_text(encoding="utf-8")


def _decode(values: Any) -> list[Any]:
    """A plotly JSON array: a list, or ``{"dtype", "bdata"}`` base64 typed array."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values)


def _figure_data(text: str, div_id: str) -> list[dict[str, Any]]:
    """The trace list passed to ``Plotly.newPlot("<div_id>", [...])`` in the document."""
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', text)
    assert match, f"no figure {div_id}"
    data, _ = json.JSONDecoder().raw_decode(text, match.end())
    return data


def test_report_has_data_for_every_symbol(report: tuple[Settings, Path, str]) -> None:
    settings, _, text = report
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        symbols = [
            r[0] for r in con.execute("select distinct symbol from gold.fact_stock order by 1").fetchall()
        ]
        assert len(symbols) == 4
        for symbol in symbols:
            closes = [
                r[0]
                for r in con.execute(
                    "select close from gold.mart_daily_ohlcv where symbol = ? order by trade_date", [symbol]
                ).fetchall()
            ]
            candle = _figure_data(text, f"chart-daily-{slug(symbol)}")[0]
            assert candle["type"] == "candlestick"
            assert candle["name"] == symbol
            assert _decode(candle["close"]) == pytest.approx(closes)
            intraday_rows = con.execute(
                "select count(*) from gold.fact_stock where symbol = ? and trade_date = "
                "(select max(trade_date) from gold.fact_stock where symbol = ?)",
                [symbol, symbol],
            ).fetchone()[0]  # type: ignore[index]
            intraday = _figure_data(text, f"chart-intraday-{slug(symbol)}")[0]
            assert len(_decode(intraday["x"])) == intraday_rows > 0
            assert f'data-symbol="{symbol}"' in text
        layer_rows = con.execute("select count(*) from gold.fact_stock").fetchone()[0]  # type: ignore[index]
        assert f"{layer_rows:,}" in text
    finally:
        con.close()


def test_report_references_no_network_resource(report: tuple[Settings, Path, str]) -> None:
    _, _, text = report
    parser = _Resources()
    parser.feed(text)
    assert parser.urls, "expected in-page links"
    remote = [u for u in parser.urls if NETWORK.match(u[2])]
    assert remote == []
    assert all(value.startswith("#") for _, _, value in parser.urls)
    assert not any(re.search(r"url\(\s*['\"]?(https?:)?//", s) for s in parser.styles)
    assert "<script src" not in text.lower()
    assert "cdn.plot.ly" not in text.split("</script>", 2)[-1]  # not outside the inline bundle
    assert text.count("Plotly.newPlot(") >= 10


def test_report_renders_offline_in_chromium(report: tuple[Settings, Path, str]) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    settings, path, text = report
    expected = text.count("Plotly.newPlot(")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()

            def block(route: Any) -> None:
                requests.append(route.request.url)
                route.abort()

            context.route(re.compile(r"^(?!file:).*"), block)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot').length === {expected}", timeout=30_000
            )
            # candles drawn per chart: plotly draws each candle as one ``path.box``
            candles = page.evaluate(
                "() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]"
                ".map(d => [d.id, d.querySelectorAll('.trace.boxes path.box').length]))"
            )
        finally:
            browser.close()
    assert requests == []
    assert errors == []
    assert candles == _expected_candles(settings, list(candles))


def _expected_candles(settings: Settings, charts: list[str]) -> dict[str, int]:
    """Per chart, the bars gold holds for it: every trading day (daily), the last day's bars (intraday)."""
    expected = dict.fromkeys(charts, 0)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        daily = con.execute("select symbol, count(*) from gold.mart_daily_ohlcv group by 1").fetchall()
        intraday = con.execute(
            "select symbol, count(*) from gold.fact_stock f where trade_date = "
            "(select max(trade_date) from gold.fact_stock g where g.symbol = f.symbol) group by 1"
        ).fetchall()
    for symbol, n in daily:
        expected[f"chart-daily-{slug(symbol)}"] = n
    for symbol, n in intraday:
        expected[f"chart-intraday-{slug(symbol)}"] = n
    return expected


def test_report_cli_and_unknown_symbol(
    report: tuple[Settings, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, _ = report
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(settings.data_path))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--symbols", "msft,AAPL"])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert 'data-symbol="MSFT"' in text
    assert 'data-symbol="AAPL"' in text
    assert 'data-symbol="XOM"' not in text
    bad = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "x.html"), "--symbols", "NOPE"])
    assert isinstance(bad.exception, StockpipeError)
    assert "has no bars for NOPE" in str(bad.exception)
    assert not (tmp_path / "x.html").exists()
