"""Loopback websocket servers speaking the Finnhub and Alpaca market-data protocols (127.0.0.1).

Each server runs an asyncio ``websockets`` server in a background thread and is scripted per
connection: ``scripts[n]`` is the list of steps the n-th accepted connection plays after its
handshake (the last script repeats for later connections; no script = stay open quietly). Steps:

* ``Send(obj_or_text)``: one websocket message (a dict/list is sent as JSON, a str verbatim);
* ``Sleep(seconds)``;
* ``Close()``: close the connection (mid-minute, say);
* ``Hold()``: keep the connection open until the client goes (default at the end of a script).

Counters: ``attempts`` (TCP upgrades tried, refused ones included), ``connections`` (handshakes
completed), ``received`` (client messages). ``FreezingProxy`` forwards TCP and can stop
forwarding on every open connection (a silent dead socket: no data, no pongs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


@dataclass
class Send:
    payload: Any


@dataclass
class Sleep:
    seconds: float


@dataclass
class Close:
    pass


@dataclass
class Hold:
    pass


Step = Send | Sleep | Close | Hold


def _text(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))


class _Loop:
    """An asyncio loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        async def _cancel_all() -> None:
            for _ in range(5):  # cancelling may start a few more (close handshakes): repeat
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    return
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            self.run(_cancel_all(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class ScriptedServer:
    scripts: list[list[Step]] = field(default_factory=list)
    attempts: int = 0
    connections: int = 0
    received: list[Any] = field(default_factory=list)
    _server: Server | None = None
    _loop: _Loop | None = None
    port: int = 0

    # --- lifecycle ---
    def __enter__(self) -> ScriptedServer:
        self._loop = _Loop()
        self._server = self._loop.run(self._start())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> Server:
        return await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=1,  # a close handshake over a frozen proxy must not outlive the test
        )

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._server is not None
        server = self._server

        async def _close() -> None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 3)

        with contextlib.suppress(Exception):
            self._loop.run(_close())
        self._loop.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # --- per protocol ---
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        return None

    async def handshake(self, ws: ServerConnection) -> bool:
        return True

    async def _handle(self, ws: ServerConnection) -> None:
        if not await self.handshake(ws):
            return
        n = self.connections
        self.connections += 1
        reader = asyncio.ensure_future(self._read_rest(ws))
        script = self.scripts[min(n, len(self.scripts) - 1)] if self.scripts else []
        try:
            for step in script:
                if isinstance(step, Send):
                    await ws.send(_text(step.payload))
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Close):
                    await ws.close()
                    return
                elif isinstance(step, Hold):
                    break
            await ws.wait_closed()
        except Exception:  # the client went away mid-script
            return
        finally:
            reader.cancel()

    async def _read_rest(self, ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for msg in ws:
                self.received.append(json.loads(msg))


@dataclass
class FinnhubServer(ScriptedServer):
    """``?token=`` checked on the upgrade (HTTP 401 when wrong); subscribe messages recorded."""

    token: str = "test-token"
    subscribe_wait: int = 0  # wait for this many subscribe messages before playing the script

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        query = parse_qs(urlsplit(request.path).query)
        if query.get("token") != [self.token]:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        return None

    async def handshake(self, ws: ServerConnection) -> bool:
        got = 0
        while got < self.subscribe_wait:
            msg = json.loads(await ws.recv())
            self.received.append(msg)
            if msg.get("type") == "subscribe":
                got += 1
        return True

    @property
    def subscribed(self) -> list[str]:
        return [m["symbol"] for m in self.received if isinstance(m, dict) and m.get("type") == "subscribe"]


@dataclass
class AlpacaServer(ScriptedServer):
    """connected -> auth (key/secret checked: 402) -> subscribe (ack; 405 over ``symbol_limit``).

    ``connection_limit``: greet every connection with error 406 instead of ``connected``."""

    key: str = "key-id"
    secret: str = "secret-key"
    connection_limit: bool = False
    symbol_limit: int = 30

    async def handshake(self, ws: ServerConnection) -> bool:
        if self.connection_limit:
            await ws.send(_text([{"T": "error", "code": 406, "msg": "connection limit exceeded"}]))
            await ws.close()
            return False
        await ws.send(_text([{"T": "success", "msg": "connected"}]))
        auth = json.loads(await ws.recv())
        self.received.append(auth)
        if auth.get("action") != "auth" or auth.get("key") != self.key or auth.get("secret") != self.secret:
            await ws.send(_text([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await ws.close()
            return False
        await ws.send(_text([{"T": "success", "msg": "authenticated"}]))
        sub = json.loads(await ws.recv())
        self.received.append(sub)
        symbols = set(sub.get("trades", [])) | set(sub.get("bars", []))
        if len(symbols) > self.symbol_limit:
            await ws.send(_text([{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]))
            await ws.close()
            return False
        ack = {
            "T": "subscription",
            "trades": sub.get("trades", []),
            "quotes": [],
            "bars": sub.get("bars", []),
        }
        ack |= {"updatedBars": sub.get("updatedBars", []), "dailyBars": [], "statuses": [], "lulds": []}
        await ws.send(_text([ack]))
        return True


class FreezingProxy:
    """TCP forwarder to ``target_port``; ``freeze()`` stops moving bytes on the connections open
    now (no data, no pongs: a silent dead socket); later connections forward normally."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._accepted = 0
        self._frozen_below = 0
        self._loop = _Loop()
        self._server: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> FreezingProxy:
        self._server = self._loop.run(self._start())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._loop.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self._accepted
        self._accepted += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if number < self._frozen_below:
                        await asyncio.sleep(3600)  # swallowed: nothing more crosses
                    dst.write(data)
                    await dst.drain()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def freeze(self) -> None:
        self._frozen_below = self._accepted


def finnhub_trade_messages(trades: Sequence[Any], batch: int = 50) -> list[Step]:
    """``Send`` steps of Finnhub trade messages, ``batch`` trades each (from ``Trade`` objects)."""
    steps: list[Step] = []
    for i in range(0, len(trades), batch):
        data = [
            {
                "s": t.symbol,
                "p": t.price,
                "t": round(t.ts.timestamp() * 1000),
                "v": t.size,
                "c": list(t.conditions) or None,
            }
            for t in trades[i : i + batch]
        ]
        steps.append(Send({"type": "trade", "data": data}))
    return steps


def alpaca_trade_messages(trades: Sequence[Any], ids: Sequence[int], batch: int = 50) -> list[Step]:
    steps: list[Step] = []
    for i in range(0, len(trades), batch):
        msgs = [
            {"T": "t", "S": t.symbol, "i": ids[i + k], "x": "V", "p": t.price, "s": int(t.size),
             "c": list(t.conditions) or ["@"], "t": t.ts.isoformat().replace("+00:00", "Z"), "z": "C"}
            for k, t in enumerate(trades[i : i + batch])
        ]  # fmt: skip
        steps.append(Send(msgs))
    return steps


Handler = Callable[[ServerConnection], Awaitable[None]]
