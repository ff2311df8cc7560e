"""Your own data: real export layouts, compact/float dates, other exchanges, lenient replay and
the producer-side quarantine (rule ``unparsable_row``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from stockpipe.contract.unparsable import UNPARSABLE_RULE, quarantine_union_schema
from stockpipe.errors import ConfigError
from stockpipe.lake.unparsable import quarantine_unparsable, write_unparsable
from stockpipe.orchestration.status import layer_counts
from stockpipe.settings import Settings
from stockpipe.sources import SourceOptions
from stockpipe.sources.errors import ReplayParseError
from stockpipe.sources.replay import ReplaySource
from stockpipe.sources.timeparse import coerce_timestamp, parse_timestamp
from tests.e2e_helpers import run_cli, stockpipe_env

OWN = Path(__file__).resolve().parents[1] / "data" / "sources" / "own"

# file, options, (data rows, bars, unparsable), first bar_ts (UTC), bad lines
CASES = [
    ("yahoo_aapl_daily_nulls.csv", {"symbol": "AAPL"}, (12, 10, 2),
     datetime(2024, 7, 1, 13, 30, tzinfo=UTC), [9, 12]),
    ("msft_yyyymmdd_extra.csv", {}, (10, 7, 3), datetime(2024, 7, 1, 13, 30, tzinfo=UTC), [7, 8, 9]),
    ("nvda_float_dates.csv", {"symbol": "NVDA"}, (8, 7, 1), datetime(1999, 11, 5, 14, 30, tzinfo=UTC), [8]),
    ("shel_london_daily.csv", {"symbol": "SHEL.L", "exchange": "XLON"}, (9, 9, 0),
     datetime(2024, 3, 25, 8, 0, tzinfo=UTC), []),
    ("asml_amsterdam_semicolon.csv", {"symbol": "ASML.AS", "exchange": "XAMS"}, (6, 5, 1),
     datetime(2024, 6, 3, 7, 0, tzinfo=UTC), [6]),
]  # fmt: skip


def _lenient(name: str, **kw: object) -> ReplaySource:
    return ReplaySource(SourceOptions(paths=(OWN / name,), on_error="skip-and-report", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "opts", "counts", "first", "bad_lines"), CASES, ids=[c[0] for c in CASES])
def test_every_row_is_a_bar_or_an_unparsable_row(
    name: str, opts: dict[str, str], counts: tuple[int, int, int], first: datetime, bad_lines: list[int]
) -> None:
    src = _lenient(name, **opts)
    bars = src.load()
    lines = (OWN / name).read_text().splitlines()
    assert src.rows_read == len(lines) - 1 == len(bars) + len(src.errors)
    assert (src.rows_read, len(bars), len(src.errors)) == counts
    assert bars[0].bar_ts == first
    assert {b.interval for b in bars} == {"1day"}
    assert [e.line for e in src.errors] == bad_lines
    assert [e.raw for e in src.errors] == [lines[n - 1] for n in bad_lines]  # the raw line, verbatim


def test_decimal_commas_and_dotted_thousands() -> None:
    bars = _lenient("asml_amsterdam_semicolon.csv", symbol="ASML.AS", exchange="XAMS").load()
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        1011.2, 1019.8, 1002.4, 1016.6, 1254300,
    )  # fmt: skip
    assert bars[1].volume == 987650


def test_bare_dates_are_stamped_at_the_exchange_session_open() -> None:
    shel = _lenient("shel_london_daily.csv", symbol="SHEL.L", exchange="XLON").load()
    # London's open is 08:00 local: GMT before 2024-03-31, BST (UTC+1) after.
    assert shel[0].bar_ts == datetime(2024, 3, 25, 8, 0, tzinfo=UTC)
    assert shel[-1].bar_ts == datetime(2024, 4, 4, 7, 0, tzinfo=UTC)
    # An alias works too; an unknown code is one clear error.
    assert (
        _lenient("shel_london_daily.csv", symbol="SHEL.L", exchange="LSE").load()[0].bar_ts == shel[0].bar_ts
    )
    with pytest.raises(ConfigError, match="Unknown exchange 'XXXX'"):
        _lenient("shel_london_daily.csv", symbol="SHEL.L", exchange="XXXX")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20040817", datetime(2004, 8, 17, 13, 30, tzinfo=UTC)),
        (20040817, datetime(2004, 8, 17, 13, 30, tzinfo=UTC)),
        (19991110.0, datetime(1999, 11, 10, 14, 30, tzinfo=UTC)),
        ("19991110.0", datetime(1999, 11, 10, 14, 30, tzinfo=UTC)),
        ("17.08.2004", datetime(2004, 8, 17, 13, 30, tzinfo=UTC)),
        # epoch seconds are 9+ digits, never a YYYYMMDD date
        (1092749400, datetime(2004, 8, 17, 13, 30, tzinfo=UTC)),
        ("1092749400", datetime(2004, 8, 17, 13, 30, tzinfo=UTC)),
    ],
)
def test_compact_and_float_dates_without_a_flag(value: object, expected: datetime) -> None:
    assert coerce_timestamp(value)[0] == expected


@pytest.mark.parametrize("text", ["20241332", "20240230", "18991231", "2024081"])
def test_invalid_compact_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse date"):
        parse_timestamp(text)


def test_date_format_forces_one_layout(tmp_path: Path) -> None:
    path = tmp_path / "dmy.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n04/03/2024,10,11,9,10.5,5\n2024-03-05,10,11,9,10.5,5\n")
    src = ReplaySource(
        SourceOptions(paths=(path,), symbol="AAPL", date_format="%d/%m/%Y", on_error="skip-and-report")
    )
    bars = src.load()
    assert [b.bar_ts for b in bars] == [datetime(2024, 3, 4, 14, 30, tzinfo=UTC)]  # day first: 4 March
    assert "does not match the date format '%d/%m/%Y'" in src.errors[0].reason
    assert parse_timestamp("2024-03-04 10:15", date_format="%Y-%m-%d %H:%M")[0] == datetime(
        2024, 3, 4, 15, 15, tzinfo=UTC
    )


def test_strict_replay_names_file_and_line() -> None:
    src = ReplaySource(SourceOptions(paths=(OWN / "yahoo_aapl_daily_nulls.csv",), symbol="AAPL"))
    with pytest.raises(ReplayParseError, match=r"yahoo_aapl_daily_nulls.csv line 9: missing open"):
        src.load()


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _quarantine_files(settings: Settings) -> list[Path]:
    return sorted((settings.data_path / "lake" / "silver" / "quarantine").rglob("*.parquet"))


def test_unparsable_rows_go_to_the_quarantine_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    source = OWN / "msft_yyyymmdd_extra.csv"
    assert quarantine_unparsable(settings, _lenient("msft_yyyymmdd_extra.csv")) == 3
    files = _quarantine_files(settings)
    assert len(files) == 1
    assert files[0].name.startswith("part-unparsable-")
    # a re-run, even on another day, rewrites the same file instead of adding one
    src = _lenient("msft_yyyymmdd_extra.csv")
    src.load()
    write_unparsable(settings, [source], src.errors, now=datetime(2030, 1, 2, tzinfo=UTC))
    assert _quarantine_files(settings) == files
    table = ds.dataset(
        files[0].parent.parent, format="parquet", partitioning="hive", schema=quarantine_union_schema()
    ).to_table()
    rows = sorted(table.to_pylist(), key=lambda r: r["source_line"])
    assert [r["source_line"] for r in rows] == [7, 8, 9]
    assert {r["source_file"] for r in rows} == {str(source)}
    assert all(r["failed_rules"] == [UNPARSABLE_RULE] for r in rows)
    assert rows[1]["raw_payload"] == "20240710,MSFT,461.220001,466.459991"
    assert rows[2]["detail"] == "cannot parse date '20241332'"
    assert all(r["kafka_offset"] is None for r in rows)
    # status counts them with the Spark job's quarantine
    counts = layer_counts(settings)
    assert counts.quarantine_rows == 3
    assert counts.quarantine_by_rule == {UNPARSABLE_RULE: 3}
    # a file whose rows all parse now (say, after a fix) leaves no quarantine behind
    write_unparsable(settings, [source], [])
    assert _quarantine_files(settings) == []


def test_strict_cli_aborts_before_anything_is_sent(tmp_path: Path) -> None:
    env = stockpipe_env(tmp_path / "data")
    # no broker is configured or started: a strict replay must fail on reading, before Kafka
    done = run_cli(
        ["produce", "--source", "replay", "--file", str(OWN / "nvda_float_dates.csv"), "--symbol", "NVDA",
         "--strict"],
        env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "nvda_float_dates.csv line 8: missing high" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "state" / "broker.json").exists()
