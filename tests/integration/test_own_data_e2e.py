"""Your own data end to end: real export layouts from three exchanges -> `stockpipe run --source
replay` -> gold daily marts equal to an independent pandas recomputation, every row accounted for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import exchange_calendars as xcals
import pandas as pd
import pytest

from tests.e2e_helpers import run_cli, stockpipe_env, stop_embedded_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

OWN = Path(__file__).resolve().parents[1] / "data" / "sources" / "own"
# file -> (symbol, exchange, replay options, pandas reader options)
EU = {"sep": ";", "decimal": ","}
FILES: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    "yahoo_aapl_daily_nulls.csv": ("AAPL", "XNYS", ["--symbol", "AAPL"], {"date_format": "%Y-%m-%d"}),
    "msft_yyyymmdd_extra.csv": ("MSFT", "XNYS", [], {"date_format": "%Y%m%d"}),
    "nvda_float_dates.csv": ("NVDA", "XNYS", ["--symbol", "NVDA"], {"date_format": "%Y%m%d.0"}),
    "shel_london_daily.csv": (
        "SHEL.L", "XLON", ["--symbol", "SHEL.L", "--exchange", "XLON"], {"date_format": "%Y-%m-%d"}
    ),
    "asml_amsterdam_semicolon.csv": (
        "ASML.AS", "XAMS", ["--symbol", "ASML.AS", "--exchange", "XAMS"], {"date_format": "%d.%m.%Y", **EU}
    ),
}  # fmt: skip
BAD_ROWS = {"yahoo_aapl_daily_nulls.csv": 2, "msft_yyyymmdd_extra.csv": 3, "nvda_float_dates.csv": 1,
            "shel_london_daily.csv": 0, "asml_amsterdam_semicolon.csv": 1}  # fmt: skip


def _expected_bars(name: str) -> pd.DataFrame:
    """The file's valid rows with pandas alone: numbers, dates and sessions checked independently."""
    symbol, exchange, _, opts = FILES[name]
    opts = dict(opts)
    fmt = opts.pop("date_format")
    df = pd.read_csv(
        OWN / name, dtype=str, keep_default_na=False, **{k: v for k, v in opts.items() if k == "sep"}
    )
    df.columns = [c.lower() for c in df.columns]
    out = pd.DataFrame({"date": pd.to_datetime(df["date"], format=fmt, errors="coerce")})
    for col in ("open", "high", "low", "close", "volume"):
        text = df[col] if col in df else pd.Series([""] * len(df))
        if opts.get("decimal") == ",":
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out[col] = pd.to_numeric(text, errors="coerce")
    out = out.dropna().copy()
    out["symbol"] = symbol
    cal = xcals.get_calendar(exchange, start="1990-01-01")
    out["trade_date"] = out["date"].dt.date
    out["regular"] = [cal.is_session(d) for d in out["date"]]
    return out


def _expected_marts() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = pd.concat([_expected_bars(n) for n in FILES], ignore_index=True)
    daily = bars[bars["regular"]].copy()
    typical = (daily["high"] + daily["low"] + daily["close"]) / 3
    daily["vwap"] = (typical * daily["volume"]).where(daily["volume"] > 0) / daily["volume"].where(
        daily["volume"] > 0
    )
    daily = daily.sort_values(["symbol", "trade_date"])
    daily["prev_close"] = daily.groupby("symbol")["close"].shift(1)
    daily["daily_return"] = daily["close"] / daily["prev_close"] - 1
    return bars, daily


@pytest.fixture(scope="module")
def own_run(
    tmp_path_factory: pytest.TempPathFactory, warm_spark_env: dict[str, str]
) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("own-data")
    env = stockpipe_env(data_dir, **warm_spark_env)
    outputs: dict[str, str] = {}
    try:
        for symbol, exchange in (("SHEL.L", "XLON"), ("ASML.AS", "XAMS")):
            added = run_cli(
                ["companies", "add", symbol, "--name", symbol, "--exchange", exchange], env, timeout=120
            )
            assert added.returncode == 0, added.stderr
        names = list(FILES)
        for name in names[:-1]:  # produce all but the last file; `run` replays the last and does the rest
            done = run_cli(["produce", "--source", "replay", "--file", str(OWN / name), *FILES[name][2]], env)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            outputs[name] = done.stdout
        last = names[-1]
        done = run_cli(["run", "--source", "replay", "--file", str(OWN / last), *FILES[last][2]], env)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        outputs[last] = done.stdout
        status = run_cli(["status"], env, timeout=120)
        yield {"data_dir": data_dir, "outputs": outputs, "status": status.stdout}
    finally:
        stop_embedded_broker(env)


def _number(text: str, label: str) -> int:
    m = re.search(rf"{re.escape(label)}\D*?([\d,]+)", text)
    assert m, f"{label!r} not in output"
    return int(m[1].replace(",", ""))


def test_every_row_is_a_bar_in_gold_or_an_unparsable_row(own_run: dict[str, Any]) -> None:
    with duckdb.connect(str(own_run["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        per_symbol = dict(con.execute("select symbol, count(*) from gold.fact_stock group by 1").fetchall())
        summary = dict(
            con.execute("select rule, sum(records) from raw.quarantine_summary group by 1").fetchall()
        )
    for name, (symbol, *_rest) in FILES.items():
        rows = len((OWN / name).read_text().splitlines()) - 1
        assert per_symbol[symbol] + BAD_ROWS[name] == rows, name
        if name != "asml_amsterdam_semicolon.csv":  # produced with `produce`: its summary counts them
            out = own_run["outputs"][name]
            assert _number(out, "rows read") == rows
            assert _number(out, "unparsable") == BAD_ROWS[name]
            assert _number(out, "sent") == rows - BAD_ROWS[name]
    assert summary == {"unparsable_row": sum(BAD_ROWS.values())}
    assert _number(own_run["status"], "quarantined: unparsable_row") == sum(BAD_ROWS.values())


def test_gold_daily_marts_equal_a_pandas_recomputation(own_run: dict[str, Any]) -> None:
    bars, daily = _expected_marts()
    with duckdb.connect(str(own_run["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        ohlcv = con.execute(
            "select symbol, trade_date, open, high, low, close, volume, vwap, bar_count "
            "from gold.mart_daily_ohlcv"
        ).df()
        returns = con.execute(
            "select symbol, trade_date, prev_close, daily_return from gold.mart_daily_returns"
        ).df()
        facts = con.execute("select symbol, trade_date, is_regular_session from gold.fact_stock").df()
    for frame in (ohlcv, returns, facts):  # DuckDB dates come back as pandas Timestamps
        frame["trade_date"] = pd.to_datetime(frame["trade_date"]).dt.date
    # the holiday rows (AAPL on 4 July, SHEL.L on Good Friday and Easter Monday) reach fact_stock
    # but are not regular sessions of their exchange, so they stay out of the marts
    flags = {(r.symbol, r.trade_date): r.is_regular_session for r in facts.itertuples()}
    expected_flags = {(r.symbol, r.trade_date): r.regular for r in bars.itertuples()}
    assert flags == expected_flags
    assert not flags[("SHEL.L", pd.Timestamp("2024-04-01").date())]
    assert not flags[("AAPL", pd.Timestamp("2024-07-04").date())]

    got = ohlcv.set_index(["symbol", "trade_date"]).sort_index()
    want = daily.set_index(["symbol", "trade_date"]).sort_index()
    assert list(got.index) == list(want.index)
    mismatches = 0
    for col in ("open", "high", "low", "close", "volume", "vwap"):
        a, b = got[col].astype(float), want[col].astype(float)
        both_null = a.isna() & b.isna()
        mismatches += int((~both_null & ~((a - b).abs() <= 1e-9 * b.abs().clip(lower=1))).sum())
    mismatches += int((got["bar_count"] != 1).sum())
    r = returns.set_index(["symbol", "trade_date"]).sort_index()
    for col in ("prev_close", "daily_return"):
        a, b = r[col].astype(float), want[col].astype(float)
        both_null = a.isna() & b.isna()
        mismatches += int((~both_null & ~((a - b).abs() <= 1e-9 * b.abs().clip(lower=1))).sum())
    assert mismatches == 0


def test_dim_date_parts_are_local_to_each_bars_exchange(own_run: dict[str, Any]) -> None:
    """One calendar definition down to gold: a London bar's hour is London's, New York's New York's."""
    zone_of = {symbol: str(xcals.get_calendar(exchange).tz) for symbol, exchange, *_ in FILES.values()}
    with duckdb.connect(str(own_run["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        rows = con.execute(
            "select f.symbol, f.bar_ts, f.trade_date, d.exchange_timezone, d.date, d.trade_date as d_date,"
            " d.hour, d.minute, d.day_of_week from gold.fact_stock f"
            " join gold.dim_date d on d.date_key = f.date_key"
        ).df()
        companies = dict(con.execute("select symbol, exchange_timezone from gold.dim_companies").fetchall())
        facts = con.execute("select count(*) from gold.fact_stock").fetchone()
    assert facts is not None
    assert len(rows) == facts[0]  # every fact row finds exactly one dim_date row
    assert {s: companies[s] for s in zone_of} == zone_of
    opens: dict[str, set[tuple[int, int]]] = {}
    mismatches = 0
    for r in rows.itertuples():
        local = pd.Timestamp(r.bar_ts).tz_convert(zone_of[r.symbol])
        mismatches += r.exchange_timezone != zone_of[r.symbol]
        mismatches += pd.Timestamp(r.date) != local.tz_localize(None)
        mismatches += (r.hour, r.minute, r.day_of_week) != (local.hour, local.minute, local.isoweekday())
        mismatches += pd.Timestamp(r.d_date).date() != pd.Timestamp(r.trade_date).date()
        opens.setdefault(r.symbol, set()).add((int(r.hour), int(r.minute)))
    assert mismatches == 0
    # daily bars are stamped at their exchange's open: 08:00 London, 09:00 Amsterdam, 09:30 New York
    assert opens["SHEL.L"] == {(8, 0)}
    assert opens["ASML.AS"] == {(9, 0)}
    assert opens["AAPL"] == {(9, 30)}


def test_stream_replays_a_file_and_drains_into_gold(tmp_path: Path, warm_spark_env: dict[str, str]) -> None:
    data_dir = tmp_path / "stream"
    env = stockpipe_env(data_dir, **warm_spark_env)
    name = "yahoo_aapl_daily_nulls.csv"
    try:
        done = run_cli(
            ["stream", "--source", "replay", "--file", str(OWN / name), "--symbol", "AAPL", "--drain",
             "--cycle", "2", "--duration", "600"],
            env, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert _number(done.stdout, "unparsable") == BAD_ROWS[name]
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            facts = con.execute("select count(*), count(distinct id) from gold.fact_stock").fetchone()
        assert facts == (10, 10)
    finally:
        stop_embedded_broker(env)
