"""`stockpipe run` end to end: one trading day x 500 symbols (195,000 bars), then 10x and 50x.

Each scale runs the seven steps in a fresh data folder, in a child process (so a JVM and
its memory start from zero), on the embedded default (local broker, Spark local[*], DuckDB).
The parent samples the resident memory of the child and all of its descendants (the JVM,
the broker is excluded: it is a separate detached process) every 0.2 s and records the peak.
``--mode`` picks stockpipe's Spark mode (classic: an in-process session, the default; connect:
the local Spark Connect server, started by each scale's run and stopped after it; section
``run_connect``).

``--mode connect --warm-days N`` measures the warm case instead (issue 15, 500 symbols x 1 day
warm <= 20 s): N+1 runs in ONE data folder, one new trading day each; run 1 starts the local
Spark Connect server, runs 2..N+1 find it warm. Section ``run_warm`` of docs/benchmarks.md.

Usage:  .venv/bin/python benchmarks/bench_run.py [--scales 1,10,50] [--mode classic] [--no-write]
        .venv/bin/python benchmarks/bench_run.py --mode connect --warm-days 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._procs import child_env, stop_owned, tree_rss
from benchmarks._report import write_section

SYMBOLS = 500
FIRST_DAY = date(2024, 1, 2)
MODES = ("classic", "connect")
WARM_GOAL_SECONDS = 20

_CHILD = r"""
import json, sys, time
from datetime import date
from stockpipe.orchestration.pipeline import RunOptions, run_pipeline
from stockpipe.settings import Settings
args = json.loads(sys.argv[1])
settings = Settings()
options = RunOptions(symbols=tuple(args["symbols"]), start=date.fromisoformat(args["start"]),
                     end=date.fromisoformat(args["end"]))
t0 = time.perf_counter()
results = run_pipeline(settings, options)
print("RESULT" + json.dumps({"total": time.perf_counter() - t0,
      "steps": [[r.step, r.seconds, r.counts] for r in results]}))
"""


def universe(tmp: Path) -> tuple[list[str], Path]:
    """The 148 shipped companies plus synthetic ones up to 500, as a companies reference file."""
    from stockpipe.sources.companies import companies_csv_path

    with companies_csv_path().open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0].keys())
    symbols = [r["Symbol"] for r in rows if "." not in r["Symbol"]]
    n = 0
    while len(symbols) < SYMBOLS:
        n += 1
        sym = f"SYN{n:03d}"
        symbols.append(sym)
        rows.append(
            {
                "Symbol": sym, "AssetType": "Common Stock", "Name": f"Synthetic {n}",
                "Description": "Synthetic company for benchmarks.", "Exchange": "NYSE",
                "Sector": "TECHNOLOGY", "Industry": "SERVICES-PREPACKAGED SOFTWARE",
            }
        )  # fmt: skip
    path = tmp / "companies-500.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return symbols[:SYMBOLS], path


def session_days(n: int) -> list[date]:
    """The first ``n`` trading days from ``FIRST_DAY`` (the exchange calendar's sessions)."""
    from stockpipe.sources.calendar import trading_days as days

    return days(FIRST_DAY, date(FIRST_DAY.year + 1, 12, 31))[:n]


def trading_days(n: int) -> tuple[date, date]:
    days = session_days(n)
    return days[0], days[-1]


def peak_rss(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    """Sample the RSS of ``proc``'s tree (the broker left out, fork copies counted once:
    ``tree_rss``) every 0.2 s until ``stop``; append the peak to ``out``."""
    peak = 0
    while not stop.is_set():
        total = tree_rss(proc, skip="tansu")
        if total is None:
            break
        peak = max(peak, total)
        stop.wait(0.2)
    out.append(peak)


def run_child(env: dict[str, str], symbols: list[str], first: date, last: date) -> dict[str, object]:
    """``stockpipe run`` of ``symbols`` from ``first`` to ``last`` in a child process (as from a
    shell): its result, the process's wall time and peak RSS."""
    arg = json.dumps({"symbols": symbols, "start": first.isoformat(), "end": last.isoformat()})
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, arg],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop, peaks = threading.Event(), []
    sampler = threading.Thread(target=peak_rss, args=(psutil.Process(child.pid), stop, peaks))
    sampler.start()
    out, err = child.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
    if child.returncode != 0 or not line:
        raise SystemExit(f"stockpipe run {first}..{last} failed:\n{out[-3000:]}\n{err[-3000:]}")
    result = json.loads(line[-1][len("RESULT") :])
    bars = result["steps"][0][2]["bars_sent"]
    return {"bars": bars, "wall": wall, "peak": peaks[0], **result}


def run_scale(scale: int, symbols: list[str], companies: Path, tmp: Path, mode: str) -> dict[str, object]:
    first, last = trading_days(scale)
    env = child_env(tmp / f"scale-{scale}", mode, STOCKPIPE_COMPANIES_FILE=str(companies))
    try:
        return {"scale": scale, **run_child(env, symbols, first, last)}
    finally:
        stop_owned(env)


def run_warm(warm_days: int, symbols: list[str], companies: Path, tmp: Path) -> list[dict[str, object]]:
    """``warm_days + 1`` runs of one new trading day each in ONE data folder, over Spark Connect:
    run 1 starts the local server (and broker), the later runs find them warm."""
    env = child_env(tmp / "warm", "connect", STOCKPIPE_COMPANIES_FILE=str(companies))
    results: list[dict[str, object]] = []
    try:
        for i, day in enumerate(session_days(warm_days + 1), start=1):
            r = {"run": i, "day": day.isoformat(), **run_child(env, symbols, day, day)}
            print(f"run {i} ({day}): {r['bars']:,} bars, {r['wall']:.1f}s end to end", flush=True)
            results.append(r)
    finally:
        stop_owned(env)
    return results


def step_table(results: list[dict[str, object]], labels: list[str]) -> list[str]:
    """Seconds and share of each step, one column per result."""
    lines = ["| step | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(results)]
    for i, (step, _, _) in enumerate(results[0]["steps"]):  # type: ignore[arg-type]
        cells = []
        for r in results:
            seconds = r["steps"][i][1]  # type: ignore[index]
            cells.append(f"{seconds:.1f} s ({100 * seconds / r['total']:.0f}%)")  # type: ignore[operator]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def report(results: list[dict[str, object]], symbols: int, mode: str) -> str:
    base = results[0]
    spark = "Spark `local[*]`" if mode == "classic" else "a local Spark Connect server started by the run"
    lines = [
        "## `stockpipe run` end to end (issue 5)" + ("" if mode == "classic" else ", Spark Connect (cold)"),
        "",
        f"{symbols} symbols x N trading days of 1-minute bars, embedded default (tansu broker, "
        f"{spark}, DuckDB, dbt), each scale in a fresh data folder and a fresh process. "
        "Peak RSS = the pipeline process plus its JVM (sampled every 0.2 s). Goal at 1x: "
        "<= 60 s and <= 2.5 GB; time should grow linearly or better.",
        "",
        "| scale | bars | run (s) | process wall (s) | bars/s | peak RSS | time vs 1x | data vs 1x |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['scale']}x | {r['bars']:,} | {r['total']:.1f} | {r['wall']:.1f} | "
            f"{r['bars'] / r['total']:,.0f} | {r['peak'] / 2**30:.2f} GiB | "
            f"{r['total'] / base['total']:.1f}x | {r['bars'] / base['bars']:.0f}x |"
        )  # type: ignore[operator]
    lines += ["", "Share of each step:", ""]
    lines += step_table(results, [f"{r['scale']}x" for r in results])
    return "\n".join(lines)


def report_warm(results: list[dict[str, object]], symbols: int) -> str:
    warm = results[1:]
    median_wall = statistics.median(float(r["wall"]) for r in warm)  # type: ignore[arg-type]
    median_run = statistics.median(float(r["total"]) for r in warm)  # type: ignore[arg-type]
    lines = [
        "## `stockpipe run` warm over Spark Connect (issue 15)",
        "",
        f"`benchmarks/bench_run.py --mode connect --warm-days {len(warm)}`: {len(results)} runs of "
        f"{symbols} symbols x 1 trading day of 1-minute bars in ONE data folder, one new trading day "
        "per run (from the exchange calendar), each a new `stockpipe run` process as from a shell. "
        "Run 1 starts the local Spark Connect server and the broker; runs 2.. find them warm. "
        "End to end = the child process's wall time, imports included; run = `run_pipeline` alone.",
        "",
        "| run | day | Spark | bars | end to end (s) | run (s) |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in results:
        spark = "cold (starts the server)" if r["run"] == 1 else "warm"
        lines.append(
            f"| {r['run']} | {r['day']} | {spark} | {r['bars']:,} | {r['wall']:.1f} | {r['total']:.1f} |"
        )
    lines += ["", "Seconds per step:", ""]
    lines += step_table(results, [f"run {r['run']}" for r in results])
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Warm run median {median_wall:.1f} s (goal ≤ {WARM_GOAL_SECONDS} s) end to end, over "
        f"{len(warm)} warm runs; `run_pipeline` alone {median_run:.1f} s.",
        f"Load average at the end: {load:.1f} on {os.cpu_count()} CPUs.",
    ]
    return "\n".join(lines)


def run_scales(scales: list[int], symbols: list[str], companies: Path, tmp: Path, mode: str) -> str:
    results = []
    for scale in scales:
        r = run_scale(scale, symbols, companies, tmp, mode)
        print(f"{scale}x: {r['bars']:,} bars in {r['total']:.1f}s, peak {r['peak'] / 2**30:.2f} GiB")  # type: ignore[operator]
        results.append(r)
    return report(results, len(symbols), mode)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default=None, help="trading days per run, comma list (default 1,10,50)")
    parser.add_argument("--mode", choices=MODES, default="classic", help="stockpipe's Spark mode")
    parser.add_argument(
        "--warm-days",
        type=int,
        default=0,
        help="with --mode connect: N+1 one-day runs in one folder, 2.. warm",
    )
    parser.add_argument(
        "--symbols", type=int, default=SYMBOLS, help="first N symbols of the universe (testing)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.warm_days and (args.mode != "connect" or (args.scales or "1") != "1"):
        parser.error("--warm-days needs --mode connect and runs one day per run (no --scales)")
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        symbols, companies = universe(Path(tmp))
        symbols = symbols[: args.symbols]
        if args.warm_days:
            section = "run_warm"
            text = report_warm(run_warm(args.warm_days, symbols, companies, Path(tmp)), len(symbols))
        else:
            section = "run" if args.mode == "classic" else "run_connect"
            scales = [int(s) for s in (args.scales or "1,10,50").split(",")]
            text = run_scales(scales, symbols, companies, Path(tmp), args.mode)
    print(text)
    if not args.no_write:
        write_section(section, text)


if __name__ == "__main__":
    main()
