"""The shared websocket client: connect, handshake, read, reconnect; provider adapters are thin.

``WebsocketFeed.events()`` is a plain (synchronous) generator of ``Trade`` and ``Bar`` objects,
built on the ``websockets`` sync client, that runs until ``stop()``:

* **Reconnect** on a dropped connection, a network error or a dead socket, with exponential
  backoff and full jitter (``initial * 2**attempt`` capped at ``max``, times a uniform 0.5..1),
  then the adapter's handshake (auth, subscribe) again. The attempt counter resets once a
  connection delivered a message. (tenacity's retry loop fits one call retried until it
  succeeds; a connection that lives for hours and may drop many times is this small loop.)
* **Dead socket**: the websockets keepalive pings every ``ping_interval`` and drops the
  connection when no pong comes within ``ping_timeout``; optionally ``idle_timeout`` also drops a
  connection that delivered no message at all for that long.
* **No retry storm**: an adapter raises ``FeedRefusedError`` for a refused key, a subscription
  error or a connection limit: the generator stops with that one sentence (the CLI exits
  non-zero). An HTTP 401/403 or 429 on the websocket upgrade is the same.
* **Malformed messages** (not JSON, not the documented layout) are counted and logged with a
  short sample, and the connection continues; ``max_malformed_in_a_row`` of them in a row stop
  the feed with ``FeedProtocolError`` (the server is not speaking this protocol).
* **Repeats** after a reconnect are dropped by ``dedupe.TradeDeduper`` (see there).
* The URL is shown only redacted (``token=***``), in logs, errors and status.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from stockpipe.contract import Bar
from stockpipe.errors import first_line
from stockpipe.sources.live.dedupe import TradeDeduper
from stockpipe.sources.live.errors import FeedProtocolError, FeedRefusedError
from stockpipe.sources.live.redact import install_log_redaction, redact
from stockpipe.sources.live.trades import Trade

log = logging.getLogger(__name__)
Event = Trade | Bar
RATE_WINDOW_SECONDS = 10


class MalformedMessageError(ValueError):
    """One message that does not follow the provider's documented layout."""


class _SilentSocketError(Exception):
    """No message for ``idle_timeout`` seconds."""


@dataclass(frozen=True)
class FeedOptions:
    reconnect_initial_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    ping_interval_seconds: float = 20.0
    ping_timeout_seconds: float = 20.0
    idle_timeout_seconds: float = 0.0
    open_timeout_seconds: float = 10.0
    max_malformed_in_a_row: int = 100
    recv_poll_seconds: float = 0.25  # how often a blocked read checks stop() and idle time

    @classmethod
    def from_settings(cls, live: Any) -> FeedOptions:
        return cls(
            reconnect_initial_seconds=live.reconnect_initial_seconds,
            reconnect_max_seconds=live.reconnect_max_seconds,
            ping_interval_seconds=live.ping_interval_seconds,
            ping_timeout_seconds=live.ping_timeout_seconds,
            idle_timeout_seconds=live.idle_timeout_seconds,
            open_timeout_seconds=live.open_timeout_seconds,
            max_malformed_in_a_row=live.max_malformed_in_a_row,
        )


@dataclass
class FeedStatus:
    """Per-feed counters (read by ``stockpipe status`` / the dashboard through ``as_dict``)."""

    provider: str
    url: str  # redacted
    connected: bool = False
    last_message_at: datetime | None = None
    messages: int = 0
    malformed: int = 0
    connection_attempts: int = 0
    reconnects: int = 0
    trades: int = 0
    bars: int = 0
    duplicates: int = 0
    last_error: str | None = None
    _buckets: deque[tuple[int, int]] = field(default_factory=deque, repr=False)

    def count_message(self, now_mono: float, now_wall: datetime) -> None:
        self.messages += 1
        self.last_message_at = now_wall
        second = int(now_mono)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1] = (second, self._buckets[-1][1] + 1)
        else:
            self._buckets.append((second, 1))
            while self._buckets and self._buckets[0][0] <= second - RATE_WINDOW_SECONDS:
                self._buckets.popleft()

    def messages_per_second(self, now_mono: float) -> float:
        second = int(now_mono)
        recent = sum(n for s, n in self._buckets if s > second - RATE_WINDOW_SECONDS)
        return recent / RATE_WINDOW_SECONDS

    def as_dict(self, now_mono: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now_mono is None else now_mono
        return {
            "provider": self.provider,
            "url": self.url,
            "connected": self.connected,
            "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
            "messages": self.messages,
            "messages_per_second": round(self.messages_per_second(now), 2),
            "malformed": self.malformed,
            "connection_attempts": self.connection_attempts,
            "reconnects": self.reconnects,
            "trades": self.trades,
            "bars": self.bars,
            "duplicates": self.duplicates,
            "last_error": self.last_error,
        }


def backoff_seconds(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: ``min(max, initial * 2**attempt) * U(0.5, 1)``."""
    return min(maximum, initial * 2 ** min(attempt, 30)) * (0.5 + rng.random() / 2)


class WebsocketFeed(ABC):
    """One provider connection. Subclasses give the URL, the handshake and the message parser."""

    provider: str = "websocket"
    display_name: str = "websocket"

    def __init__(
        self,
        url: str,
        symbols: Sequence[str],
        *,
        options: FeedOptions | None = None,
        secrets: Sequence[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("a live feed needs at least one symbol")
        self.url = url
        self.symbols = tuple(symbols)
        self.options = options or FeedOptions()
        self._secrets = tuple(s for s in secrets if s)
        self._monotonic = monotonic
        self._wall = wall or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self.deduper = TradeDeduper()
        self.status = FeedStatus(provider=self.provider, url=self.redacted_url)
        install_log_redaction()

    # ---- what adapters provide ----
    def connect_url(self) -> str:
        """The URL to open (Finnhub adds its token here)."""
        return self.url

    @abstractmethod
    def handshake(self, ws: ClientConnection) -> None:
        """Authenticate and subscribe; raise ``FeedRefusedError`` when refused."""

    @abstractmethod
    def parse(self, raw: str | bytes) -> list[Event]:
        """Events of one message; ``MalformedMessageError`` when it is not the documented layout;
        ``FeedRefusedError`` for a provider error that must stop the feed."""

    def skip_entry(self, exc: Exception, item: Any) -> None:
        """Count and log one bad entry of an otherwise good batch (the others still count)."""
        self.status.malformed += 1
        log.warning(
            "%s: malformed entry skipped (%s): %r", self.display_name, exc, self.redact(repr(item)[:120])
        )

    # ---- the loop ----
    @property
    def redacted_url(self) -> str:
        """The URL as connected (with any token), secrets masked: for logs, errors, status."""
        return redact(self.connect_url(), self._secrets)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def stop(self) -> None:
        """Ask ``events()`` to end (from another thread or a signal handler)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def events(self) -> Iterator[Event]:
        attempt = 0
        first = True
        while not self._stop.is_set():
            self.status.connection_attempts += 1
            try:
                with self._open() as ws:
                    self._ws = ws
                    self.handshake(ws)
                    self.status.connected = True
                    self.status.last_error = None
                    log.info("%s: connected to %s", self.display_name, self.redacted_url)
                    if not first:
                        self.deduper.begin_overlap()
                    first = False
                    for event in self._read(ws):
                        attempt = 0  # a healthy connection resets the backoff
                        yield event
                    if self._stop.is_set():
                        return
            except (FeedRefusedError, FeedProtocolError) as exc:
                self.status.last_error = str(exc)
                raise
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code in (401, 403):
                    raise self._refused(f"refused the credentials (HTTP {code})") from None
                if code == 429:
                    raise self._refused(
                        "refused the connection: too many connections or requests (HTTP 429)"
                    ) from None
                self._dropped(f"HTTP {code} on connect")
            except InvalidURI:
                raise FeedRefusedError(
                    f"{self.display_name} URL {self.redacted_url} is not a websocket URL."
                ) from None
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError, _SilentSocketError) as exc:
                self._dropped(self.redact(first_line(exc)))
            finally:
                self._ws = None
                self.status.connected = False
            if self._stop.is_set():
                return
            delay = backoff_seconds(
                attempt, self.options.reconnect_initial_seconds, self.options.reconnect_max_seconds, self._rng
            )
            attempt += 1
            self.status.reconnects += 1
            log.warning(
                "%s: connection lost (%s); reconnecting in %.1f s",
                self.display_name,
                self.status.last_error,
                delay,
            )
            self._stop.wait(delay)

    def _open(self) -> ClientConnection:
        o = self.options
        return connect(
            self.connect_url(),
            open_timeout=o.open_timeout_seconds,
            ping_interval=o.ping_interval_seconds,
            ping_timeout=o.ping_timeout_seconds,
            close_timeout=2,
            max_size=16 * 1024 * 1024,
            max_queue=1024,
            proxy=None,
        )

    def _dropped(self, reason: str) -> None:
        self.status.last_error = reason

    def _refused(self, what: str) -> FeedRefusedError:
        return FeedRefusedError(
            f"{self.display_name} {what} at {self.redacted_url}; check the settings, not retrying."
        )

    def _read(self, ws: ClientConnection) -> Iterator[Event]:
        o = self.options
        in_a_row = 0
        last = self._monotonic()
        while not self._stop.is_set():
            try:
                raw = ws.recv(timeout=o.recv_poll_seconds)
            except TimeoutError:
                if o.idle_timeout_seconds and self._monotonic() - last >= o.idle_timeout_seconds:
                    raise _SilentSocketError(f"no message for {o.idle_timeout_seconds:g} s") from None
                continue
            last = self._monotonic()
            self.status.count_message(last, self._wall())
            try:
                events = self.parse(raw)
            except MalformedMessageError as exc:
                in_a_row += 1
                self.status.malformed += 1
                sample = raw[:120] if isinstance(raw, str) else raw[:120].decode("utf-8", "replace")
                log.warning(
                    "%s: malformed message skipped (%s): %r", self.display_name, exc, self.redact(sample)
                )
                if in_a_row >= o.max_malformed_in_a_row:
                    raise FeedProtocolError(
                        f"{self.display_name} at {self.redacted_url} sent {in_a_row} malformed messages "
                        "in a row "
                        f"(last: {exc}); it does not speak the {self.display_name} protocol."
                    ) from None
                continue
            in_a_row = 0
            for event in events:
                if isinstance(event, Trade):
                    if self.deduper.is_repeat(event):
                        self.status.duplicates += 1
                        continue
                    self.status.trades += 1
                else:
                    self.status.bars += 1
                yield event


def loads(raw: str | bytes) -> Any:
    """JSON, or ``MalformedMessageError``."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessageError(f"not JSON: {exc}") from None
