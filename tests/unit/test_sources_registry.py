from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from stockpipe.errors import ConfigError
from stockpipe.settings import Settings
from stockpipe.sources import SourceOptions
from stockpipe.sources.registry import SOURCES, build_source
from stockpipe.sources.simulator import SimulatorSource


def test_registry_names_and_simulator_factory(settings: Settings) -> None:
    assert set(SOURCES) == {"simulator", "replay", "alphavantage"}
    src = build_source("simulator", settings, SourceOptions(symbols=("AAPL",), start=date(2024, 3, 4)))
    assert isinstance(src, SimulatorSource)
    assert src.estimated_count() == 390
    with pytest.raises(ConfigError, match="Unknown source 'yahoo'"):
        build_source("yahoo", settings, SourceOptions())
    with pytest.raises(ConfigError, match="STOCKPIPE_ALPHAVANTAGE_API_KEY"):
        build_source("alphavantage", settings, SourceOptions())


def test_importing_the_sources_package_stays_cheap() -> None:
    heavy = ("pandas", "numpy", "exchange_calendars", "httpx", "pyarrow")
    code = (
        "import sys, stockpipe.sources, stockpipe.sources.registry, stockpipe.sources.errors; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
