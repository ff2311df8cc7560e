"""Pure numpy generation of one symbol's simulated session: the maths behind ``SimulatorSource``.

Per symbol a ``numpy.random.Generator`` seeded from ``(seed, crc32(symbol))`` draws, once,
a start price, an annual volatility and an average daily volume, then, per session, an
intrabar geometric random walk (``SUBSTEPS`` points per minute). Each minute's open is the
previous minute's close (the same path point), high/low are the envelope of the minute's
path, prices are rounded to cents and re-enveloped so ``low <= min(open, close)`` and
``high >= max(open, close)`` still hold. Volume follows a U-shaped intraday profile (heavy
at the open and the close, light at midday) times log-normal noise, as integers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


SUBSTEPS = 8
MINUTES_PER_YEAR = 252 * 390
VOLUME_NOISE = 0.35


@dataclass
class SymbolWalk:
    """The evolving state of one symbol's random walk."""

    symbol: str
    rng: np.random.Generator
    log_price: float
    sigma_minute: float
    minute_volume: float
    started: bool = False


@dataclass(frozen=True)
class MinuteBars:
    """One session of 1-minute bars for one symbol (prices in cents-rounded dollars)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64


def symbol_rng(seed: int, symbol: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``symbol`` (not on the other symbols)."""
    import numpy as np

    entropy = [seed % (1 << 63), zlib.crc32(symbol.encode())]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def new_walk(seed: int, symbol: str) -> SymbolWalk:
    """Draw a symbol's plausible start price ($20-$800), volatility (18-55 %/yr) and volume."""
    import numpy as np

    rng = symbol_rng(seed, symbol)
    price = float(np.exp(rng.uniform(np.log(20.0), np.log(800.0))))
    annual_vol = float(rng.uniform(0.18, 0.55))
    daily_volume = float(np.exp(rng.uniform(np.log(1.0e6), np.log(4.0e7))))
    return SymbolWalk(
        symbol=symbol,
        rng=rng,
        log_price=float(np.log(price)),
        sigma_minute=annual_vol / np.sqrt(MINUTES_PER_YEAR),
        minute_volume=daily_volume / 390.0,
    )


def volume_profile(n: int) -> np.ndarray:
    """U-shaped weights (mean 1) for ``n`` minutes: high at both ends, low at midday."""
    import numpy as np

    x = (np.arange(n) + 0.5) / n
    minutes = np.arange(n)
    profile = 0.45 + 2.2 * (2.0 * x - 1.0) ** 2 + 1.2 * np.exp(-minutes / 6.0)
    return profile / profile.mean()


def simulate_session(walk: SymbolWalk, n_minutes: int) -> MinuteBars:
    """Advance ``walk`` through one session of ``n_minutes`` 1-minute bars."""
    import numpy as np

    rng = walk.rng
    sigma = walk.sigma_minute
    if walk.started:  # overnight gap: about half a day's volatility
        walk.log_price += float(rng.normal(0.0, sigma * np.sqrt(390.0) * 0.5))
    walk.started = True
    steps = rng.standard_normal(n_minutes * SUBSTEPS) * (sigma / np.sqrt(SUBSTEPS))
    path = np.exp(walk.log_price + np.concatenate(([0.0], np.cumsum(steps))))
    walk.log_price = float(np.log(path[-1]))

    points = path[:-1].reshape(n_minutes, SUBSTEPS)
    raw_open = points[:, 0]
    raw_close = path[SUBSTEPS::SUBSTEPS]
    raw_high = np.maximum(points.max(axis=1), raw_close)
    raw_low = np.minimum(points.min(axis=1), raw_close)

    o = np.round(raw_open, 2)
    c = np.round(raw_close, 2)
    h = np.maximum(np.round(raw_high, 2), np.maximum(o, c))
    low = np.maximum(np.minimum(np.round(raw_low, 2), np.minimum(o, c)), 0.01)
    o, c, h = np.maximum(o, 0.01), np.maximum(c, 0.01), np.maximum(h, 0.01)

    minute_z = np.abs(np.log(raw_close / raw_open)) / sigma
    day_factor = float(rng.lognormal(0.0, 0.25))
    noise = rng.lognormal(-0.5 * VOLUME_NOISE**2, VOLUME_NOISE, n_minutes)
    volume = walk.minute_volume * day_factor * volume_profile(n_minutes) * noise * (0.7 + 0.3 * minute_z)
    return MinuteBars(o, h, low, c, np.rint(volume).astype(np.int64))


def group_starts(n_minutes: int, minutes_per_bar: int | None) -> np.ndarray:
    """Indexes of the first minute of each bar (``None``: one bar for the whole session)."""
    import numpy as np

    step = n_minutes if minutes_per_bar is None else minutes_per_bar
    return np.arange(0, n_minutes, step)


def aggregate(bars: MinuteBars, starts: np.ndarray) -> MinuteBars:
    """Combine 1-minute bars into longer ones starting at ``starts`` (last one may be short)."""
    import numpy as np

    if len(starts) == len(bars.open):
        return bars
    ends = np.append(starts[1:], len(bars.open)) - 1
    return MinuteBars(
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends],
        volume=np.add.reduceat(bars.volume, starts),
    )
