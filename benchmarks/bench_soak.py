"""Soak: `stockpipe stream` at 500 bars/s for 30 minutes; memory of each process and consumer lag.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 30] [--sample-seconds 60] [--no-write]

The simulator source at ``--symbols`` x ``--speed`` / 60 bars per second (50 x 600 / 60 = 500:
each symbol gets one 1-minute bar per simulated minute, and the simulated clock runs ``speed``
times faster than the wall clock, skipping closed-market time), micro-batch cycles every
``--cycle`` seconds, on the embedded default (tansu broker, DuckDB) in a fresh data folder.
Every ``--sample-seconds`` it records the resident memory (RSS) of

* the stream process (``python -m stockpipe stream``),
* its JVM: the Spark Connect server's ``java`` (the pid in ``<data>/state/spark-connect.json`` and
  its process tree) in ``connect`` mode, the in-process JVM (a ``java`` child of the stream
  process) in ``classic`` mode,
* the embedded broker (the pid in ``<data>/state/broker.json``),

and the consumer lag (bars produced but not yet consumed) of the newest stream cycle
(``<data>/state/stream_cycles.jsonl``). Where the JDK's ``jcmd`` is on the PATH it also records,
inside that JVM, the JIT's compiled code (``Compiler.codecache``: the code heaps' high-water mark) and the
class metadata (``GC.heap_info``: metaspace committed), so the verdict can tell the JIT still compiling
(growth that ends once the hot code is compiled) from anything else that grows: it reports the
slope of the JVM's RSS less those two as well. The verdict fits a line through the samples after the
warm-up (``--warmup-minutes``, at most half the run) per component and calls it flat when it grows
less than ``--flat-mib-per-10min``. The embedded tansu broker keeps every message in memory
(docs/architecture.md, 1a): its slope is reported, with the bytes per bar it implies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._procs import tree_rss
from benchmarks._report import write_section
from stockpipe.daemon import free_port

MIB = 2**20


@dataclass
class Sample:
    seconds: float
    stream: int | None
    jvm: int | None
    jit: int | None
    metaspace: int | None
    broker: int | None
    lag: int | None
    produced: int | None
    cycles: int


def _state_pid(data_dir: Path, name: str) -> int | None:
    try:
        return int(json.loads((data_dir / "state" / name).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _jvm_root(data_dir: Path, stream: psutil.Process, mode: str) -> psutil.Process | None:
    """The process whose tree holds the JVM: the Connect server's supervisor, or the stream."""
    if mode != "connect":
        return stream
    pid = _state_pid(data_dir, "spark-connect.json")
    try:
        return None if pid is None else psutil.Process(pid)
    except psutil.Error:
        return None


def _java_pid(root: psutil.Process) -> int | None:
    """The largest ``java`` process in ``root``'s tree (not the JVM's short-lived forks)."""
    best: tuple[int, int] | None = None
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    for p in procs:
        try:
            if "java" in p.name() and (best is None or p.memory_info().rss > best[0]):
                best = (p.memory_info().rss, p.pid)
        except psutil.Error:
            continue
    return None if best is None else best[1]


CODE_HEAP_MAX_USED = re.compile(r"^CodeHeap '[^']+':.*\bmax_used=(\d+)Kb", re.MULTILINE)
METASPACE_COMMITTED = re.compile(r"^\s*Metaspace\s+used \d+K, committed (\d+)K", re.MULTILINE)


def _jcmd(pid: int, *command: str) -> str | None:
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        return None
    try:
        out = subprocess.run(
            [jcmd, str(pid), *command], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def jit_code_bytes(text: str) -> int | None:
    """Compiled code's high-water mark (``max_used``), summed over the code heaps of
    ``jcmd PID Compiler.codecache``: the code cache pages ever touched, what its RSS follows."""
    used = CODE_HEAP_MAX_USED.findall(text)
    return sum(int(u) for u in used) * 1024 if used else None


def metaspace_bytes(text: str) -> int | None:
    """Metaspace committed, from ``jcmd PID GC.heap_info``."""
    m = METASPACE_COMMITTED.search(text)
    return int(m.group(1)) * 1024 if m else None


def _broker_rss(data_dir: Path) -> int | None:
    pid = _state_pid(data_dir, "broker.json")
    if pid is None:
        return None
    try:
        return tree_rss(psutil.Process(pid))
    except psutil.Error:
        return None


def _last_cycle(data_dir: Path) -> tuple[dict[str, object], int]:
    path = data_dir / "state" / "stream_cycles.jsonl"
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return {}, 0
    for line in reversed(lines):
        try:
            return json.loads(line), len(lines)
        except ValueError:
            continue  # being appended
    return {}, len(lines)


def sample(data_dir: Path, stream: psutil.Process, mode: str, started: float) -> Sample:
    cycle, cycles = _last_cycle(data_dir)
    lag, produced = cycle.get("lag"), cycle.get("produced")
    root = _jvm_root(data_dir, stream, mode)
    jvm = None if root is None else tree_rss(root, only="java")
    pid = None if root is None else _java_pid(root)
    codecache = None if pid is None else _jcmd(pid, "Compiler.codecache")
    heap_info = None if pid is None else _jcmd(pid, "GC.heap_info")
    return Sample(
        seconds=time.monotonic() - started,
        stream=_own_rss(stream),
        jvm=jvm,
        jit=None if codecache is None else jit_code_bytes(codecache),
        metaspace=None if heap_info is None else metaspace_bytes(heap_info),
        broker=_broker_rss(data_dir),
        lag=lag if isinstance(lag, int) else None,
        produced=produced if isinstance(produced, int) else None,
        cycles=cycles,
    )


def _own_rss(proc: psutil.Process) -> int | None:
    """The stream process alone (the broker, the Connect supervisor and the JVM it may have started
    are counted apart)."""
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return None


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope (units per minute) of (seconds, value) points."""
    if len(points) < 2:
        return None
    xs = [x / 60 for x, _ in points]
    ys = [y for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def jvm_rest(s: Sample) -> int | None:
    """The JVM's RSS less its compiled code and metaspace (None unless all three are known)."""
    if s.jvm is None or s.jit is None or s.metaspace is None:
        return None
    return s.jvm - s.jit - s.metaspace


def _fmt1(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:,.1f}"


def _fmt(value: int | None, scale: int = MIB) -> str:
    return "—" if value is None else f"{value / scale:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sample-seconds", type=float, default=60.0)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--speed", type=float, default=600.0, help="simulated seconds per wall second")
    ap.add_argument("--cycle", type=float, default=5.0, help="seconds between micro-batches")
    ap.add_argument("--spark-mode", choices=["connect", "classic"], default="connect")
    ap.add_argument("--warmup-minutes", type=float, default=5.0)
    ap.add_argument("--flat-mib-per-10min", type=float, default=10.0)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    from stockpipe.sources.companies import default_symbols

    symbols = ",".join(default_symbols(args.symbols))
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
        env.update(STOCKPIPE_DATA_DIR=str(data_dir), STOCKPIPE_SPARK_MODE=args.spark_mode, COLUMNS="160")
        env.setdefault("STOCKPIPE_SPARK_CONNECT_PORT", str(free_port()))  # its own Connect server
        cmd = [
            sys.executable, "-m", "stockpipe", "stream", "--symbols", symbols, "--start", "2024-03-04",
            "--speed", f"{args.speed:g}", "--cycle", f"{args.cycle:g}",
            "--duration", f"{args.minutes * 60:g}",
        ]  # fmt: skip
        log = Path(tmp) / "stream.log"
        started = time.monotonic()
        with log.open("wb") as out:
            child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        deadline = started + args.minutes * 60 + 600
        try:
            next_at = started + args.sample_seconds
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(max(0.0, min(1.0, next_at - time.monotonic())))
                if time.monotonic() >= next_at and child.poll() is None:
                    s = sample(data_dir, proc, args.spark_mode, started)
                    samples.append(s)
                    print(
                        f"{s.seconds / 60:5.1f} min: stream {_fmt(s.stream)} MiB, JVM {_fmt(s.jvm)} MiB "
                        f"(JIT code {_fmt1(s.jit)} MiB, metaspace {_fmt1(s.metaspace)} MiB), "
                        f"broker {_fmt(s.broker)} MiB, lag {s.lag}, produced {s.produced}, cycles {s.cycles}",
                        flush=True,
                    )
                    next_at += args.sample_seconds
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            child.wait(timeout=600)
        finally:
            if child.poll() is None:
                child.kill()
            for stop in (["broker", "stop"], ["spark", "stop"]):
                subprocess.run(
                    [sys.executable, "-m", "stockpipe", *stop], env=env, check=False, capture_output=True
                )
        tail = log.read_text(errors="replace")[-3000:]
        if child.returncode != 0:
            raise SystemExit(f"stream failed ({child.returncode}):\n{tail}")
        final, ncycles = _last_cycle(data_dir)
    if not samples:
        raise SystemExit("no sample taken: run longer than --sample-seconds")
    markdown = report(samples, args, final, ncycles)
    print(markdown)
    if not args.no_write:
        write_section("soak", markdown)


def report(samples: list[Sample], args: argparse.Namespace, final: dict[str, object], ncycles: int) -> str:
    """The ``soak`` section: the table of samples and the verdict per component."""
    rate = args.symbols * args.speed / 60
    warm_s = min(args.warmup_minutes * 60, samples[-1].seconds / 2)
    steady = [s for s in samples if s.seconds >= warm_s]
    slopes: dict[str, float | None] = {}
    for name in ("stream", "jvm", "jit", "metaspace", "broker", "lag"):
        pts = [(s.seconds, float(v)) for s in steady if (v := getattr(s, name)) is not None]
        slope = slope_per_min(pts)
        slopes[name] = None if slope is None else (slope / MIB if name != "lag" else slope)
    rest = [(s.seconds, float(r)) for s in steady if (r := jvm_rest(s)) is not None]
    rest_slope = slope_per_min(rest)
    slopes["rest"] = None if rest_slope is None else rest_slope / MIB
    produced = final.get("produced")
    produced = produced if isinstance(produced, int) else 0

    def verdict(name: str, label: str) -> str:
        s = slopes[name]
        if s is None:
            return f"{label}: no data"
        if name == "lag":
            flat = s * 10 <= max(rate * args.cycle, 1.0)  # grows by less than one cycle's bars in 10 min
            return f"{label} {s:+,.0f} records/min ({'not growing' if flat else 'GROWING'})"
        flat = s * 10 < args.flat_mib_per_10min
        return f"{label} {s:+.2f} MiB/min ({'flat' if flat else 'GROWING'})"

    # broker growth per bar, between the first and the last steady sample that know both
    known = [s for s in steady if s.broker is not None and s.produced is not None]
    broker_note = ""
    if len(known) >= 2 and known[-1].produced != known[0].produced:
        grown = (known[-1].broker or 0) - (known[0].broker or 0)
        per_bar = grown / ((known[-1].produced or 0) - (known[0].produced or 0))
        broker_note = (
            f"; the broker grew about {per_bar:,.0f} bytes per produced bar (tansu's memory engine "
            "keeps every message until it stops: retention is not enforced, docs/architecture.md 1a)"
        )
    rows = "\n".join(
        f"| {s.seconds / 60:.1f} | {_fmt(s.stream)} | {_fmt(s.jvm)} | {_fmt1(s.jit)} | "
        f"{_fmt1(s.metaspace)} | {_fmt(jvm_rest(s))} | {_fmt(s.broker)} | "
        f"{'—' if s.lag is None else f'{s.lag:,}'} | {'—' if s.produced is None else f'{s.produced:,}'} |"
        for s in samples
    )
    verdicts = ", ".join(
        verdict(n, lbl)
        for n, lbl in (("stream", "stream"), ("jvm", "JVM"), ("broker", "broker"), ("lag", "lag"))
    )
    jit_note = ""
    if slopes["jit"] is not None and slopes["rest"] is not None:
        jit_note = (
            f". Inside the JVM: compiled code {slopes['jit']:+.2f} MiB/min, metaspace "
            f"{slopes['metaspace'] or 0.0:+.2f} MiB/min; {verdict('rest', 'the JVM less those two')}"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = f"benchmarks/bench_soak.py --minutes {args.minutes:g} --sample-seconds {args.sample_seconds:g}"
    if args.spark_mode != "connect":
        command += f" --spark-mode {args.spark_mode}"
    target = rate * args.minutes * 60
    return f"""## Soak: stream at {rate:,.0f} bars/s (issue 14)

`{command}`: `stockpipe stream --duration {args.minutes * 60:g}` from the simulator, {args.symbols} symbols
at speed {args.speed:g} ({rate:,.0f} bars/s), cycle {args.cycle:g} s, Spark {args.spark_mode} mode, embedded
broker, DuckDB; {ncycles} cycles, {produced:,} bars produced ({target:,.0f} in the duration itself;
the stream stops when the cycle running at the end of the duration is done). Minutes count from
the start of the stream process (Spark start-up included; the duration starts once Spark is up, and
the last samples are the final cycle). RSS in MiB, sampled every {args.sample_seconds:g} s; lag = bars
produced but not yet consumed when the newest cycle ended ("produced" is as of that cycle).
1-minute load average {load:.1f} at the end.

JIT code = the JVM's compiled code (code heaps' high-water mark), metaspace = committed
class metadata, in MiB, both read with `jcmd` inside the JVM; "JVM less both" = JVM RSS minus them.

| minute | stream RSS | JVM RSS | JIT code | metaspace | JVM less both | broker RSS | lag | produced |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

**Verdict** (slope after {warm_s / 60:.1f} min of warm-up; flat = under {args.flat_mib_per_10min:g} MiB per
10 min): {verdicts}{broker_note}{jit_note}."""


if __name__ == "__main__":
    main()
