from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stockpipe.contract import Bar
from stockpipe.errors import ConfigError
from stockpipe.sources import SourceOptions
from stockpipe.sources.errors import ReplayParseError
from stockpipe.sources.registry import build_source
from stockpipe.sources.replay import ReplaySource

DATA = Path(__file__).resolve().parents[1] / "data" / "sources"
YAHOO_DAILY = DATA / "replay" / "yahoo_aapl_daily.csv"
YAHOO_5M = DATA / "replay" / "yahoo_msft_intraday_5m.csv"
AV_INTRADAY = DATA / "alphavantage" / "intraday_ibm_1min.json"
AV_DAILY = DATA / "alphavantage" / "daily_ibm.json"


def _replay(*paths: Path, **kw: object) -> list[Bar]:
    return list(ReplaySource(SourceOptions(paths=paths, **kw)).bars())  # type: ignore[arg-type]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _row(bar: Bar) -> tuple[object, ...]:
    return (bar.symbol, bar.interval, bar.bar_ts, bar.open, bar.high, bar.low, bar.close, bar.volume)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- acceptance -------------------------------------------------------------------------


def test_acceptance_yahoo_daily_csv() -> None:
    bars = _replay(YAHOO_DAILY, symbol="aapl")
    # Daily bars are stamped 09:30 New York: 14:30Z before the 2024-03-10 DST change, 13:30Z after.
    assert [_row(b) for b in bars] == [
        ("AAPL", "1day", _utc(2024, 3, 6, 14, 30), 171.059998, 171.240005, 168.679993, 169.119995, 68587700),
        ("AAPL", "1day", _utc(2024, 3, 7, 14, 30), 169.149994, 170.729996, 168.490005, 169.0, 71765100),
        ("AAPL", "1day", _utc(2024, 3, 8, 14, 30), 169.0, 173.699997, 168.940002, 170.729996, 76114600),
        ("AAPL", "1day", _utc(2024, 3, 11, 13, 30), 172.940002, 174.380005, 172.050003, 172.75, 60139500),
        ("AAPL", "1day", _utc(2024, 3, 12, 13, 30), 173.149994, 174.029999, 171.009995, 173.229996, 59825400),
    ]
    assert bars[0].bar_ts.isoformat() == "2024-03-06T09:30:00-05:00"
    assert all(b.source == "replay" and b.produced_at.tzinfo is not None for b in bars)


def test_acceptance_alpha_vantage_intraday_json() -> None:
    bars = _replay(AV_INTRADAY)
    # US/Eastern: EST (UTC-5) on 2024-03-08, EDT (UTC-4) on 2024-03-11; sorted oldest first.
    assert [_row(b) for b in bars] == [
        ("IBM", "1min", _utc(2024, 3, 8, 14, 30), 197.06, 197.23, 196.75, 196.9, 120384),
        ("IBM", "1min", _utc(2024, 3, 8, 20, 59), 195.95, 196.08, 195.9, 195.95, 98211),
        ("IBM", "1min", _utc(2024, 3, 11, 12, 0), 195.5, 195.5, 195.4, 195.4, 310),
        ("IBM", "1min", _utc(2024, 3, 11, 13, 30), 195.09, 195.25, 194.88, 195.1, 141267),
        ("IBM", "1min", _utc(2024, 3, 11, 13, 31), 195.1, 195.41, 195.05, 195.33, 22961),
        ("IBM", "1min", _utc(2024, 3, 11, 13, 32), 195.33, 195.65, 195.3, 195.6, 18872),
        ("IBM", "1min", _utc(2024, 3, 11, 13, 33), 195.6, 195.78, 195.51, 195.72, 20514),
    ]
    assert bars[3].bar_ts.isoformat() == "2024-03-11T09:30:00-04:00"


# ---- other layouts ----------------------------------------------------------------------


def test_alpha_vantage_daily_json() -> None:
    bars = _replay(AV_DAILY)
    assert [b.bar_ts for b in bars] == [_utc(2024, 3, d, 14, 30) for d in (4, 5, 6, 7, 8)]
    assert {b.interval for b in bars} == {"1day"}
    assert {b.symbol for b in bars} == {"IBM"}
    assert (bars[-1].open, bars[-1].close, bars[-1].volume) == (196.06, 195.95, 3967893)


def test_yahoo_intraday_with_offsets_infers_5min() -> None:
    bars = _replay(YAHOO_5M, symbol="MSFT")
    assert [b.bar_ts for b in bars] == [_utc(2024, 3, 11, 13, m) for m in (30, 35, 40)]
    assert {b.interval for b in bars} == {"5min"}


def test_alpha_vantage_error_reply_file_is_an_error_not_data() -> None:
    with pytest.raises(ReplayParseError, match=r"note_rate_limit\.json: holds an Alpha Vantage error reply"):
        _replay(DATA / "alphavantage" / "note_rate_limit.json")


def test_alpha_vantage_bad_entry_names_its_line(tmp_path: Path) -> None:
    payload = json.loads(AV_DAILY.read_text())
    payload["Time Series (Daily)"]["2024-03-06"]["3. low"] = "abc"
    path = _write(tmp_path, "av.json", json.dumps(payload, indent=4))
    expected_line = path.read_text().splitlines().index('        "2024-03-06": {') + 1
    with pytest.raises(ReplayParseError) as info:
        _replay(path)
    assert str(info.value).startswith(
        f"{path} line {expected_line}: bar '2024-03-06': cannot parse low 'abc'"
    )


def test_generic_csv_with_column_map_and_symbol_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "export.csv",
        "when;ticker;o;h;l;c;shares\n"
        '2024-03-04 09:31:00;msft;"1,005.50";1006;1005;1005.75;"1,234,567"\n'
        "2024-03-04 09:30:00;aapl;175.1;175.4;174.9;175.2;800\n",
    )
    bars = _replay(path, column_map={"bar_ts": "when", "open": "o", "high": "h", "low": "l", "close": "c",
                                     "volume": "shares"})  # fmt: skip
    assert [_row(b) for b in bars] == [
        ("AAPL", "1min", _utc(2024, 3, 4, 14, 30), 175.1, 175.4, 174.9, 175.2, 800),
        ("MSFT", "1min", _utc(2024, 3, 4, 14, 31), 1005.5, 1006.0, 1005.0, 1005.75, 1234567),
    ]


def test_seed_format_and_separate_date_time_columns(tmp_path: Path) -> None:
    seed = _write(
        tmp_path, "seed.csv", "Symbol,Date,Open,High,Low,Close,Volume\nNVDA,04-03-2024 09:35,10,11,9,10.5,5\n"
    )
    split = _write(
        tmp_path, "split.csv", "Date,Time,Open,High,Low,Close,Volume\n03/04/2024,09:36,10,11,9,10.5,5\n"
    )
    bars = _replay(seed, split, symbol="AMD")
    assert [(b.symbol, b.bar_ts) for b in bars] == [
        ("NVDA", _utc(2024, 3, 4, 14, 35)),  # the file's symbol column wins over the option
        ("AMD", _utc(2024, 3, 4, 14, 36)),
    ]


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2024-03-04", _utc(2024, 3, 4, 14, 30)),
        ("2024-03-04 10:00:00", _utc(2024, 3, 4, 15, 0)),
        ("2024-03-04 10:00:00-05:00", _utc(2024, 3, 4, 15, 0)),
        ("2024-03-04T15:00:00Z", _utc(2024, 3, 4, 15, 0)),
        ("03/04/2024", _utc(2024, 3, 4, 14, 30)),
        ("04-03-2024 10:00", _utc(2024, 3, 4, 15, 0)),
        ("1709564400", _utc(2024, 3, 4, 15, 0)),
        ("1709564400000", _utc(2024, 3, 4, 15, 0)),
    ],
)
def test_each_date_format_in_a_csv(tmp_path: Path, stamp: str, utc: datetime) -> None:
    path = _write(tmp_path, "one.csv", f"timestamp,open,high,low,close,volume\n{stamp},1,2,0.5,1.5,10\n")
    (bar,) = _replay(path, symbol="X")
    assert bar.bar_ts == utc


def test_parquet_with_native_and_text_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    table = pa.table(
        {
            "Symbol": ["AAPL", "AAPL"],
            "Datetime": pa.array(
                [_utc(2024, 3, 4, 14, 31), _utc(2024, 3, 4, 14, 30)], pa.timestamp("us", "UTC")
            ),
            "Open": [10.0, 9.0],
            "High": [11.0, 10.5],
            "Low": [9.5, 8.5],
            "Close": [10.5, 10.0],
            "Volume": pa.array([100, 200], pa.int64()),
        }
    )
    pq.write_table(table, path)
    bars = _replay(path)
    assert [(b.bar_ts, b.open, b.volume, b.interval) for b in bars] == [
        (_utc(2024, 3, 4, 14, 30), 9.0, 200, "1min"),
        (_utc(2024, 3, 4, 14, 31), 10.0, 100, "1min"),
    ]
    mapped = tmp_path / "mapped.parquet"
    pq.write_table(
        pa.table({"d": ["2024-03-04"], "o": [1.0], "h": [2.0], "lo": [0.5], "c": [1.5], "v": [7]}), mapped
    )
    (bar,) = _replay(mapped, symbol="KO", column_map={"bar_ts": "d", "open": "o", "high": "h", "low": "lo",
                                                       "close": "c", "volume": "v"})  # fmt: skip
    assert (bar.symbol, bar.interval, bar.bar_ts) == ("KO", "1day", _utc(2024, 3, 4, 14, 30))


def test_gzip_csv_and_sorting_across_files(tmp_path: Path) -> None:
    gz = tmp_path / "b.csv.gz"
    gz.write_bytes(gzip.compress(b"Date,Open,High,Low,Close,Volume\n2024-03-07,1,2,0.5,1.5,10\n"))
    bars = _replay(YAHOO_DAILY, gz, symbol="AAPL", symbols=("AAPL",))
    stamps = [b.bar_ts for b in bars]
    assert stamps == sorted(stamps)
    assert len(bars) == 6


# ---- errors -----------------------------------------------------------------------------


def test_bad_date_names_file_and_line(tmp_path: Path) -> None:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"2024-03-{d:02d},1,2,0.5,1.5,1.5,10" for d in range(4, 19)]
    lines.insert(16, "2024-13-45,1,2,0.5,1.5,1.5,10")  # becomes line 17
    path = _write(tmp_path, "prices.csv", "\n".join(lines) + "\n")
    with pytest.raises(ReplayParseError) as info:
        _replay(path, symbol="AAPL")
    assert str(info.value) == f"{path} line 17: cannot parse date '2024-13-45'"
    assert (info.value.line, info.value.file) == (17, str(path))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-03-04,abc,2,0.5,1.5,10", "cannot parse open 'abc'"),
        ("2024-03-04,1,2,0.5,null,10", "missing close"),
        ("2024-03-04,1,2,0.5,1.5,", "missing volume"),
        ("2024-03-04,1,2,0.5,1.5,10.5", "volume '10.5' is not a whole number"),
        ("2024-03-04,1,2,1.2,1.5,10", "OHLC inconsistent"),
        ("2024-03-04,-1,2,0.5,1.5,10", "open: Input should be greater than 0"),
        ("2024-03-04,1,2,0.5,1.5", "has 5 fields, header has 6"),
    ],
)
def test_bad_values_are_reported_with_their_line(tmp_path: Path, row: str, reason: str) -> None:
    path = _write(tmp_path, "p.csv", f"Date,Open,High,Low,Close,Volume\n2024-03-01,1,2,0.5,1.5,10\n{row}\n")
    with pytest.raises(ReplayParseError, match=rf"p\.csv line 3: {reason}"):
        _replay(path, symbol="AAPL")


def test_skip_and_report_collects_errors(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Volume\n2024-03-01,1,2,0.5,1.5,10\n"
        "bad,1,2,0.5,1.5,10\n2024-03-05,1,2,1.2,1.5,10\n2024-03-06,1,2,0.5,1.5,10\n"
    )
    path = _write(tmp_path, "p.csv", text)
    src = ReplaySource(SourceOptions(paths=(path,), symbol="AAPL", on_error="skip-and-report"))
    bars = list(src.bars())
    assert len(bars) == 2
    assert src.estimated_count() == 2
    assert [(e.line, e.reason) for e in src.errors] == [
        (3, "cannot parse date 'bad'"),
        (4, "OHLC inconsistent: need low <= open,close <= high"),
    ]


def test_file_level_problems(tmp_path: Path) -> None:
    no_symbol = _write(tmp_path, "nosym.csv", "Date,Open,High,Low,Close,Volume\n2024-03-01,1,2,0.5,1.5,10\n")
    with pytest.raises(ReplayParseError, match=r"nosym\.csv: has no symbol column"):
        _replay(no_symbol)
    no_close = _write(tmp_path, "noclose.csv", "Date,Open,High,Low,Volume\n2024-03-01,1,2,0.5,10\n")
    with pytest.raises(ReplayParseError, match=r"noclose\.csv line 1: no column for close"):
        _replay(no_close, symbol="A")
    with pytest.raises(ReplayParseError, match=r"column 'px' .* is not in the header"):
        _replay(no_close, symbol="A", column_map={"close": "px"})
    not_parquet = _write(tmp_path, "x.parquet", "nope")
    with pytest.raises(ReplayParseError, match="not a readable Parquet file"):
        _replay(not_parquet)
    with pytest.raises(ConfigError, match="not found"):
        ReplaySource(SourceOptions(paths=(tmp_path / "missing.csv",)))
    with pytest.raises(ConfigError, match="at least one input file"):
        ReplaySource(SourceOptions())


def test_registry_builds_replay(settings: object) -> None:
    src = build_source("replay", settings, SourceOptions(paths=(AV_DAILY,)))  # type: ignore[arg-type]
    assert isinstance(src, ReplaySource)
    assert src.estimated_count() == 5
