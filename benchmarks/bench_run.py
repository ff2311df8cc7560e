"""`stockpipe run` end to end: one trading day x 500 symbols (195,000 bars), then 10x and 50x.

Each scale runs the seven steps in a fresh data folder, in a child process (so a JVM and
its memory start from zero), on the embedded default (local broker, Spark local[*], DuckDB).
The parent samples the resident memory of the child and all of its descendants (the JVM,
the broker is excluded: it is a separate detached process) every 0.2 s and records the peak.

Usage:  .venv/bin/python benchmarks/bench_run.py [--scales 1,10,50] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._procs import stop_owned
from benchmarks._report import write_section

SYMBOLS = 500
FIRST_DAY = date(2024, 1, 2)

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


def trading_days(n: int) -> tuple[date, date]:
    from stockpipe.sources.calendar import trading_days as days

    all_days = days(FIRST_DAY, date(FIRST_DAY.year + 1, 12, 31))
    return all_days[0], all_days[n - 1]


def peak_rss(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    peak = 0
    while not stop.is_set():
        try:
            procs = [proc, *proc.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    if "tansu" in p.name():
                        continue
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            peak = max(peak, total)
        except psutil.Error:
            break
        stop.wait(0.2)
    out.append(peak)


def run_scale(scale: int, symbols: list[str], companies: Path, tmp: Path) -> dict[str, object]:
    first, last = trading_days(scale)
    data_dir = tmp / f"scale-{scale}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(STOCKPIPE_DATA_DIR=str(data_dir), STOCKPIPE_COMPANIES_FILE=str(companies))
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
    stop_owned(env)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
    if child.returncode != 0 or not line:
        raise SystemExit(f"scale {scale} failed:\n{out[-3000:]}\n{err[-3000:]}")
    result = json.loads(line[-1][len("RESULT") :])
    bars = result["steps"][0][2]["bars_sent"]
    return {"scale": scale, "bars": bars, "wall": wall, "peak": peaks[0], **result}


def report(results: list[dict[str, object]]) -> str:
    base = results[0]
    lines = [
        "## `stockpipe run` end to end (issue 5)",
        "",
        f"{SYMBOLS} symbols x N trading days of 1-minute bars, embedded default (tansu broker, "
        "Spark `local[*]`, DuckDB, dbt), each scale in a fresh data folder and a fresh process. "
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
    lines += [
        "",
        "Share of each step:",
        "",
        "| step | " + " | ".join(f"{r['scale']}x" for r in results) + " |",
    ]
    lines.append("|---|" + "---:|" * len(results))
    for i, (step, _, _) in enumerate(base["steps"]):  # type: ignore[arg-type]
        cells = []
        for r in results:
            seconds = r["steps"][i][1]  # type: ignore[index]
            cells.append(f"{seconds:.1f} s ({100 * seconds / r['total']:.0f}%)")  # type: ignore[operator]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1,10,50")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        symbols, companies = universe(Path(tmp))
        results = []
        for scale in scales:
            r = run_scale(scale, symbols, companies, Path(tmp))
            print(f"{scale}x: {r['bars']:,} bars in {r['total']:.1f}s, peak {r['peak'] / 2**30:.2f} GiB")  # type: ignore[operator]
            results.append(r)
    text = report(results)
    print(text)
    if not args.no_write:
        write_section("run", text)


if __name__ == "__main__":
    main()
