"""Free-tier request pacing for Alpha Vantage, with an injectable clock and sleep.

Requests are spaced at least ``60 / per_minute`` seconds apart (the free tier also
rejects bursts, so no burst capacity), and at most ``per_day`` requests are made in any
24-hour window; when that budget is used up ``acquire`` raises ``SourceError`` instead of
sleeping for hours.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from stockpipe.sources.errors import SourceError

DAY_SECONDS = 86_400.0


class RateLimiter:
    """Even spacing per minute plus a rolling daily budget."""

    def __init__(
        self,
        per_minute: int,
        per_day: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("rate limits must be at least 1")
        self.spacing = 60.0 / per_minute
        self.per_day = per_day
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._sent: deque[float] = deque()

    def acquire(self) -> float:
        """Wait until the next request is allowed; return the seconds waited."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= DAY_SECONDS:
            self._sent.popleft()
        if len(self._sent) >= self.per_day:
            raise SourceError(
                f"The Alpha Vantage budget of {self.per_day} requests per day is used up; "
                "try again tomorrow or raise STOCKPIPE_ALPHAVANTAGE_REQUESTS_PER_DAY for a premium key."
            )
        waited = 0.0
        if self._last is not None:
            due = self._last + self.spacing
            if due > now:
                waited = due - now
                self._sleep(waited)
                now = max(self._clock(), due)
        self._last = now
        self._sent.append(now)
        return waited
