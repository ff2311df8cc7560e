"""The calendar's session tables: equal to exchange_calendars, cached on disk, rebuilt when stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import exchange_calendars as xcals
import pytest

from stockpipe.sources import session_table as st


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    st.aliases.cache_clear()
    yield tmp_path / "stockpipe" / "calendars"
    st.aliases.cache_clear()


@pytest.mark.parametrize("code", ["XNYS", "XSHG", "XLON"])
def test_a_table_holds_every_session_of_the_library_calendar(code: str) -> None:
    table = st.build_table(code, "1990-01-01")
    first = date.fromordinal(table.days[0])
    # from 1990, or the first day the library supports (XSHG: December 1990)
    assert first == date(1990, 1, 2) if code != "XSHG" else date(1990, 12, 3) <= first < date(1991, 1, 1)
    cal = xcals.get_calendar(code, start=first.isoformat())
    sched = cal.schedule
    assert table.tz == str(cal.tz)
    assert len(table.days) == len(sched)
    assert [date.fromordinal(d) for d in table.days] == sched.index.date.tolist()
    # every open and close, to the second
    for ours, theirs in ((table.opens, sched["open"]), (table.closes, sched["close"])):
        assert [datetime.fromtimestamp(v, UTC) for v in ours] == [t.to_pydatetime() for t in theirs]


def test_a_table_is_cached_and_reused_without_the_library(cache_home: Path) -> None:
    table = st.load_table("XNYS", "1990-01-01")
    path = cache_home / "XNYS.json"
    assert path.is_file()
    assert st.load_table("XNYS", "1990-01-01") == table
    # a new process with the cache in place answers without importing exchange_calendars
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from stockpipe.sources import calendar as c\n"
        "assert c.trading_days(date(2024, 7, 1), date(2024, 7, 8))[3] == date(2024, 7, 5)\n"
        "assert str(c.exchange_zone('NASDAQ')) == 'America/New_York'\n"
        "print('exchange_calendars' in sys.modules, 'pandas' in sys.modules)\n"
    )
    st.aliases()  # the alias map is cached too
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home.parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_a_stale_or_broken_file_is_rebuilt(cache_home: Path) -> None:
    table = st.load_table("XNYS", "1990-01-01")
    path = cache_home / "XNYS.json"
    doc = json.loads(path.read_text())
    # built by another version of the library: rebuilt, not used
    path.write_text(json.dumps({**doc, "library": "0.0.1", "days": doc["days"][:10]}))
    assert st.load_table("XNYS", "1990-01-01") == table
    assert json.loads(path.read_text())["library"] == st.library_version()
    # built on another day (the library's calendars end a year after they are built): rebuilt
    path.write_text(json.dumps({**doc, "built": "2000-01-01", "days": doc["days"][:10]}))
    assert st.load_table("XNYS", "1990-01-01") == table
    # half a file, or lists that disagree: rebuilt
    path.write_text(path.read_text()[:1000])
    assert st.load_table("XNYS", "1990-01-01") == table
    path.write_text(json.dumps({**doc, "opens": doc["opens"][:-1]}))
    assert st.load_table("XNYS", "1990-01-01") == table


def test_an_unwritable_cache_folder_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    table = st.load_table("XNYS", "1990-01-01")
    assert table.days[0] == date(1990, 1, 2).toordinal()
    assert not (blocker / "stockpipe").exists()


def test_aliases_resolve_like_the_library(cache_home: Path) -> None:
    names = st.aliases()
    assert names["NASDAQ"] == str(xcals.resolve_alias("NASDAQ")) == "XNYS"
    assert names["XLON"] == "XLON"
    assert set(names) == set(xcals.get_calendar_names(include_aliases=True))
    assert (cache_home / "aliases.json").is_file()
