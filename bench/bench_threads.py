"""Thread scaling and MAC rate per ISA: edgert alone, the same .onnx file at 1 and 2 threads.

For each ISA this CPU runs (each in its own process, EDGERT_ISA set), two sessions per thread
count, runs alternating between them: one always runs right after another of its runs ("back
to back": a 2-thread session's worker was woken microseconds ago), the other after the CPUs
idled for --idle-ms ("after idle", as between the frames of a paced application: the worker has
gone to sleep, and waking it costs what bench/wake_latency.cpp prints; the calling thread's core
idled too). Each speed-up is printed twice: the ratio of the medians, and the median of
each round's ratio (its 1- and 2-thread runs a few ms apart). The 1-thread MAC rate is the
plan's multiply-accumulates over the median time, against the ISA's measured per-core u8*s8
ceiling (bench_kernels.measured_peak: tdpbusd, vpdpbusd or vpmaddubsw + vpmaddwd).

    python -m bench.bench_threads                          # MobileNetV2 1.0 qop_au8_ws8_pt
    python -m bench.bench_threads resnet18 --isa avx2 --runs 300
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import models as M

WAKE_SRC = Path(__file__).resolve().parent / "wake_latency.cpp"


def _child(path, name, runs, idle_ms):
    """In the ISA's process: the medians, as JSON on stdout."""
    import edgert
    from edgert.cli import plan_facts
    from .bench_kernels import measured_peak
    # A session per thread count and pattern: a 2-thread session learns whether its runs are
    # faster split or on the calling thread alone (Executor::choose_split), as an
    # application's would.
    s1, s1i, s2, s2i = (edgert.load(path, threads=t) for t in (1, 1, 2, 2))
    feed = {s1.get_inputs()[0].name: M.sample_input(name, 0)}
    t1, t1i, t2, t2i = [], [], [], []

    def timed(s, out):
        t = time.perf_counter()
        s.run(None, feed)
        out.append(time.perf_counter() - t)

    for i in range(runs + 20):  # the first 20 rounds are warm-up
        if i == 20:
            t1, t1i, t2, t2i = [], [], [], []
        for s, t in ((s1, t1), (s2, t2)):  # back to back
            s.run(None, feed)
            timed(s, t)
        for s, t in ((s1i, t1i), (s2i, t2i)):  # after idle
            time.sleep(idle_ms / 1e3)
            timed(s, t)
    med = lambda ts: float(np.median(ts)) * 1e3  # noqa: E731
    # The speed-up of each round's 1- and 2-thread runs (measured a few ms apart), median over
    # the rounds: a shared host's slow spells, seconds long, then cancel out of each ratio.
    pair = lambda a, b: float(np.median(np.asarray(a) / np.asarray(b)))  # noqa: E731
    print(json.dumps({"isa": edgert.isa(), "macs": plan_facts(s1)["macs"], "peak": measured_peak(),
                      "t1": med(t1), "t2": med(t2), "t1_idle": med(t1i), "t2_idle": med(t2i),
                      "pair": pair(t1, t2), "pair_idle": pair(t1i, t2i)}))


def wake_latency():
    """bench/wake_latency.cpp's lines, or None without g++."""
    if not shutil.which("g++"):
        return None
    with tempfile.TemporaryDirectory() as td:
        exe = Path(td) / "wake"
        subprocess.run(["g++", "-O2", "-pthread", str(WAKE_SRC), "-o", str(exe)], check=True)
        return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="mobilenet_v2")
    p.add_argument("--variant", default="qop_au8_ws8_pt")
    p.add_argument("--isa", help="comma-separated ISAs (default: every one this CPU runs)")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--idle-ms", type=float, default=2.0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    path = M.build_quantized(args.model, args.variant)
    if args.child:
        return _child(path, args.model, args.runs, args.idle_ms)
    from edgert import _core
    isas = args.isa.split(",") if args.isa else [i for i in _core.available_isas() if i != "scalar"]
    print(f"{args.model} {args.variant}: edgert alone, {args.runs} runs each, medians; "
          f"'after idle': {args.idle_ms:g} ms of idle CPUs before the run")
    print("| ISA | G MAC/s, 1 thread (% of ISA peak) | back to back: 1 thread ms | 2 threads ms "
          "(speed-up; per round) | after idle: 1 thread ms | 2 threads ms (speed-up; per round) |")
    print("|---|---|---|---|---|---|")
    for isa in isas:
        env = dict(os.environ, EDGERT_ISA=isa)
        out = subprocess.run([sys.executable, "-m", "bench.bench_threads", args.model, "--variant",
                              args.variant, "--runs", str(args.runs), "--idle-ms",
                              str(args.idle_ms), "--child"], env=env, check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rate = r["macs"] / (r["t1"] / 1e3) / 1e9
        frac = f" ({100 * rate / r['peak']:.0f} %)" if r["peak"] else ""
        print(f"| {r['isa']} | {rate:.1f}{frac} | {r['t1']:.3f} | {r['t2']:.3f} "
              f"({r['t1'] / r['t2']:.2f}x; {r['pair']:.2f}x) | {r['t1_idle']:.3f} | "
              f"{r['t2_idle']:.3f} ({r['t1_idle'] / r['t2_idle']:.2f}x; {r['pair_idle']:.2f}x) |")
    lat = wake_latency()
    if lat:
        print("\nWaking a sleeping thread (bench/wake_latency.cpp):\n" + lat.rstrip())


if __name__ == "__main__":
    main()
