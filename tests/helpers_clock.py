"""A fake clock for code that takes injectable ``monotonic`` and ``sleep`` functions."""

from __future__ import annotations


class FakeClock:
    """``sleep`` advances ``now`` instantly and records every requested sleep."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
