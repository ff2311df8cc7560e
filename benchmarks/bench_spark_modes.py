"""Warm Spark Connect vs cold classic Spark: the quick start's second `stockpipe run`, side by side.

For each mode, in a fresh data folder: `stockpipe run` twice on the quick-start input (20
symbols x 1 day, 7,800 bars), each run a new child process as from a shell. The second run is
the one measured: with `connect` the local Spark Connect server started by the first run is
warm; with `classic` each run starts its own JVM (today's behaviour before issue 15); with
`connect, after spark start` the server was started and warmed up by `stockpipe spark start`
before run 1 (its time is a row of its own). Wall time of the whole child process (imports
included), the `Spark_Cleaning_Job` step time and the CPU steal during the run.

One run's time varies by a second or more on a shared 2-core VM, so `connect, after spark start`
(the case issue 15's goal names: a second run with a warm server) is repeated `--trials` times,
each in a fresh data folder with a server of its own; the table shows trial 1, and a line gives the
median, lowest and highest second run over all trials.

Usage:  .venv/bin/python benchmarks/bench_spark_modes.py [--runs 2] [--trials 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._procs import child_env, stop_owned
from benchmarks._report import StealMeter, write_section

_CHILD = r"""
import json, time
from stockpipe.orchestration.pipeline import RunOptions, run_pipeline
from stockpipe.settings import Settings
t0 = time.perf_counter()
results = run_pipeline(Settings(), RunOptions())
print("RESULT" + json.dumps({"total": time.perf_counter() - t0,
      "steps": {r.step: r.seconds for r in results}}))
"""


def run_once(env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    data = json.loads(line[len("RESULT") :])
    return {"wall": wall, "clean": float(data["steps"]["Spark_Cleaning_Job"])}


STARTED = "connect, after spark start"
"""The local server started (and warmed up) by ``stockpipe spark start`` before run 1."""


def bench_mode(mode: str, runs: int, tmp: Path, trial: int = 1) -> list[dict[str, float]]:
    spark_mode = "connect" if mode == STARTED else mode
    folder = mode.replace(" ", "_").replace(",", "") + f"_{trial}"
    env = child_env(tmp / folder, spark_mode, STOCKPIPE_CONFIG=str(tmp / "none.toml"))
    out: list[dict[str, float]] = []
    try:
        if mode == STARTED:
            meter, t0 = StealMeter(), time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "stockpipe", "spark", "start"],
                env=env,
                check=True,
                capture_output=True,
            )
            out.append({"wall": time.perf_counter() - t0, "clean": float("nan"), "steal": _steal(meter)})
        for _ in range(runs):
            meter = StealMeter()
            result = run_once(env)
            result["steal"] = _steal(meter)
            out.append(result)
    finally:
        stop_owned(env)
    return out


def _steal(meter: StealMeter) -> float:
    value = meter.percent()
    return float("nan") if value is None else value


def report(results: dict[str, list[dict[str, float]]], second_runs: list[dict[str, float]]) -> str:
    lines = [
        "## Warm Spark Connect vs cold classic (quick start, 7,800 bars)",
        "",
        "`benchmarks/bench_spark_modes.py`: `stockpipe run` repeated in a fresh data folder per mode;",
        "run 1 of `connect` includes starting the local Spark Connect server, later runs reuse it;",
        f"`{STARTED}` first runs `stockpipe spark start` (server start + its default warm-up cleans).",
        "",
        "| mode | run | end to end (s) | Spark_Cleaning_Job (s) | CPU steal |",
        "|---|---|---|---|---|",
    ]
    for mode, runs in results.items():
        first = 0 if mode == STARTED else 1
        for i, r in enumerate(runs, start=first):
            run = "`spark start`" if i == 0 else str(i)
            clean = "—" if i == 0 else f"{r['clean']:.1f}"
            lines.append(f"| {mode} | {run} | {r['wall']:.1f} | {clean} | {r['steal']:.0f}% |")
    load = os.getloadavg()[0]
    if second_runs:
        walls = [r["wall"] for r in second_runs]
        cleans = [r["clean"] for r in second_runs]
        each = ", ".join(f"({w:.1f}, {c:.1f})" for w, c in zip(walls, cleans, strict=True))
        lines += [
            "",
            f"**Second run after `spark start`, {len(second_runs)} trials** (each a fresh data folder"
            f" and server): end to end median {statistics.median(walls):.1f} s"
            f" ({min(walls):.1f}-{max(walls):.1f}), Spark_Cleaning_Job median"
            f" {statistics.median(cleans):.1f} s ({min(cleans):.1f}-{max(cleans):.1f});"
            f" each trial's (end to end, clean): {each}.",
        ]
    lines += [
        "",
        f"Load average at the end: {load:.1f} on {os.cpu_count()} CPUs (about 2 is this benchmark alone).",
        "Goals (issue 15): second run warm <= 10 s end to end, Spark_Cleaning_Job <= 2 s.",
        "The 500-symbol warm run (`bench_run.py --mode connect --warm-days 3`), the stream cycle",
        "(`bench_stream.py`) and the 10M-row clean over Connect (`bench_clean.py --modes classic,connect`)",
        "are separate runs.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=3, help="repetitions of `connect, after spark start`")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-spark-modes-") as tmp:
        results = {mode: bench_mode(mode, args.runs, Path(tmp)) for mode in ("classic", "connect", STARTED)}
        more = [bench_mode(STARTED, 2, Path(tmp), t) for t in range(2, args.trials + 1)]
    trials = [results[STARTED], *more]
    second = [rows[2] for rows in trials if len(rows) > 2]  # rows: `spark start`, run 1, run 2
    text = report(results, second)
    print(text)
    if not args.no_write:
        write_section("spark_modes", text)


if __name__ == "__main__":
    main()
