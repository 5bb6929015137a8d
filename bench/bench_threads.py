"""Thread scaling and MAC rate per ISA: edgert alone, the same .onnx file at 1 and 2 threads.

For each ISA this CPU runs (each in its own process, EDGERT_ISA set), one session per thread
count; runs alternate between them. A 2-thread run is timed twice: right after another 2-thread
run ("back to back": its worker was woken microseconds ago) and after the CPUs idled for
--idle-ms ("after idle": the worker has gone to sleep, as it does between the frames of a paced
application; waking it costs what bench/wake_latency.cpp prints). The 1-thread MAC rate is the
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
    s1, s2 = edgert.load(path, threads=1), edgert.load(path, threads=2)
    feed = {s1.get_inputs()[0].name: M.sample_input(name, 0)}
    for s in (s1, s2):
        for _ in range(10):
            s.run(None, feed)
    t1, t2, t2i = [], [], []

    def timed(s, out):
        t = time.perf_counter()
        s.run(None, feed)
        out.append(time.perf_counter() - t)

    for _ in range(runs):
        timed(s1, t1)
        s2.run(None, feed)
        timed(s2, t2)  # back to back
        time.sleep(idle_ms / 1e3)
        timed(s2, t2i)  # after idle
    med = lambda ts: float(np.median(ts)) * 1e3  # noqa: E731
    print(json.dumps({"isa": edgert.isa(), "macs": plan_facts(s1)["macs"], "peak": measured_peak(),
                      "t1": med(t1), "t2": med(t2), "t2_idle": med(t2i)}))


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
    print("| ISA | 1 thread ms | G MAC/s (% of ISA peak) | 2 threads back to back ms (speed-up) "
          "| 2 threads after idle ms (speed-up) |")
    print("|---|---|---|---|---|")
    for isa in isas:
        env = dict(os.environ, EDGERT_ISA=isa)
        out = subprocess.run([sys.executable, "-m", "bench.bench_threads", args.model, "--variant",
                              args.variant, "--runs", str(args.runs), "--idle-ms",
                              str(args.idle_ms), "--child"], env=env, check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rate = r["macs"] / (r["t1"] / 1e3) / 1e9
        frac = f" ({100 * rate / r['peak']:.0f} %)" if r["peak"] else ""
        print(f"| {r['isa']} | {r['t1']:.3f} | {rate:.1f}{frac} | {r['t2']:.3f} "
              f"({r['t1'] / r['t2']:.2f}x) | {r['t2_idle']:.3f} ({r['t1'] / r['t2_idle']:.2f}x) |")
    lat = wake_latency()
    if lat:
        print("\nWaking a sleeping thread (bench/wake_latency.cpp):\n" + lat.rstrip())


if __name__ == "__main__":
    main()
