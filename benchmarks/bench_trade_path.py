"""The per-trade costs of the live path on one core, next to the bare ``json`` calls beneath them.

    .venv/bin/python benchmarks/bench_trade_path.py [--trades 500000] [--rounds 3]

1. Feed: ``FinnhubFeed.parse`` of Finnhub ``trade`` messages (50 trades each, the layout of the
   provider's docs) into validated ``Trade`` objects, vs bare ``json.loads`` of the same messages.
2. Feed -> trades topic: ``Trade.to_json_bytes`` (what the feed produces), vs ``json.dumps`` of
   the same dicts.
3. Aggregator service: ``Trade.from_json_bytes`` (what it decodes from the trades topic), vs bare
   ``json.loads`` of the same records.

These rates, with the broker and aggregation rates above, are what docs/scaling.md sizes the
whole US tape from. Best of ``--rounds``; the garbage collector runs as usual.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_section
from stockpipe.sources.live.finnhub import FinnhubFeed
from stockpipe.sources.live.trades import Trade

PER_MESSAGE = 50


def _messages(trades: int, symbols: list[str]) -> list[str]:
    rng = random.Random(3)
    t0 = 1_717_000_000_000
    out = []
    for m in range(trades // PER_MESSAGE):
        data = [
            {"s": rng.choice(symbols), "p": round(100 + rng.random() * 50, 2), "t": t0 + m * 20 + i,
             "v": rng.randint(1, 500), "c": ["1"] if i % 7 else ["1", "12"]}
            for i in range(PER_MESSAGE)
        ]  # fmt: skip
        out.append(json.dumps({"type": "trade", "data": data}))
    return out


def _best(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    symbols = [f"S{i:03d}" for i in range(500)]
    messages = _messages(args.trades, symbols)
    n = len(messages) * PER_MESSAGE
    feed = FinnhubFeed("ws://127.0.0.1:9", "bench-token", symbols)
    trades: list[Trade] = [t for m in messages for t in feed.parse(m)]  # type: ignore[misc]
    assert len(trades) == n, (len(trades), n)
    dicts = [t.to_dict() for t in trades]
    records = [t.to_json_bytes() for t in trades]
    assert Trade.from_json_bytes(records[0]) == trades[0]

    r = args.rounds
    rows = [
        ("feed: bare `json.loads` of the messages", _best(lambda: [json.loads(m) for m in messages], r)),
        ("feed: `FinnhubFeed.parse` -> `Trade`s", _best(lambda: [feed.parse(m) for m in messages], r)),
        ("encode: bare `json.dumps` of the trade dicts", _best(lambda: [json.dumps(d) for d in dicts], r)),
        ("encode: `Trade.to_json_bytes`", _best(lambda: [t.to_json_bytes() for t in trades], r)),
        ("decode: bare `json.loads` of the records", _best(lambda: [json.loads(x) for x in records], r)),
        ("decode: `Trade.from_json_bytes`", _best(lambda: [Trade.from_json_bytes(x) for x in records], r)),
    ]
    load = os.getloadavg()
    lines = [
        "## Live trade path, per core (issue 14)",
        "",
        f"`benchmarks/bench_trade_path.py`: {n:,} trades in Finnhub messages of {PER_MESSAGE}, best of "
        f"{args.rounds}, one process. Load average at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        "",
        "| step | seconds | trades/s | vs bare json |",
        "|---|---:|---:|---:|",
    ]
    for i, (label, secs) in enumerate(rows):
        ratio = "—" if i % 2 == 0 else f"{rows[i - 1][1] / secs:.0%}"
        lines.append(f"| {label} | {secs:.3f} | {n / secs:,.0f} | {ratio} |")
    feed_rate = n / rows[1][1]
    encode_rate = n / rows[3][1]
    decode_rate = n / rows[5][1]
    lines += [
        "",
        f"One feed process parses and encodes about {1 / (1 / feed_rate + 1 / encode_rate):,.0f} trades/s "
        f"before any network or broker cost; the aggregator service decodes about {decode_rate:,.0f} "
        "trades/s before aggregating. docs/scaling.md builds on these.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("trade_path", text)


if __name__ == "__main__":
    main()
