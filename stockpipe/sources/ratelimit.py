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


class QuotaExhaustedError(SourceError):
    """The daily request budget is used up (a poller waits for it; a one-off fetch fails)."""


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

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= DAY_SECONDS:
            self._sent.popleft()

    def preload(self, times: list[float]) -> None:
        """Count requests made earlier (clock values, e.g. from a checkpoint) against the day budget."""
        self._sent = deque(sorted(times))
        if self._sent:
            self._last = self._sent[-1]
        self._expire(self._clock())

    def history(self) -> list[float]:
        """Clock values of the requests in the current 24-hour window (to persist)."""
        self._expire(self._clock())
        return list(self._sent)

    def remaining_today(self) -> int:
        """Requests still allowed in the rolling 24-hour window."""
        self._expire(self._clock())
        return self.per_day - len(self._sent)

    def day_budget_free_at(self) -> float:
        """Clock value when the next request fits the day budget (now, when it already does)."""
        now = self._clock()
        self._expire(now)
        if len(self._sent) < self.per_day:
            return now
        return self._sent[len(self._sent) - self.per_day] + DAY_SECONDS

    def acquire(self) -> float:
        """Wait until the next request is allowed; return the seconds waited.

        The day budget is judged at the moment the request would go out (after the spacing wait).
        """
        now = self._clock()
        due = now if self._last is None else max(now, self._last + self.spacing)
        self._expire(due)
        if len(self._sent) >= self.per_day:
            raise QuotaExhaustedError(
                f"The Alpha Vantage budget of {self.per_day} requests per day is used up; "
                "try again tomorrow or raise STOCKPIPE_ALPHAVANTAGE_REQUESTS_PER_DAY for a premium key."
            )
        waited = 0.0
        if due > now:
            waited = due - now
            self._sleep(waited)
            now = max(self._clock(), due)
        self._last = now
        self._sent.append(now)
        return waited
