"""Load benchmark: edgert.load of a compiled .edgert file (and of the .onnx) against
onnxruntime's session creation on the same model, interleaved in one process; then resident
memory growth after loading, after the first run and at its peak (VmHWM), each in a fresh
process (the runtime's package imported before the baseline), against the file size plus the
arena.

    python -m bench.bench_load                                   # MobileNetV2 1.0, qop_au8_ws8_pt
    python -m bench.bench_load mobilenet_v2 --variant qdq_as8_ws8_pc --rounds 40 --threads 1

Each round creates one session per runtime; sessions are kept until the round ends, so no
timing includes tearing the previous one down.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import edgert
from edgert.benchmark import ort_session

from . import models as M

_RSS_SCRIPT = r"""
import sys, numpy as np
def rss(key="VmRSS:"):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
rt, path, threads, x = sys.argv[1], sys.argv[2], int(sys.argv[3]), np.load(sys.argv[4])
if rt == "edgert":
    import edgert
else:
    import onnxruntime
    from edgert.benchmark import ort_session
try:
    open("/proc/self/clear_refs", "w").write("5")  # the peak restarts from here
except OSError:
    pass
before = rss()
s = edgert.load(path, threads=threads) if rt == "edgert" else ort_session(path, threads)
loaded = rss()
s.run(None, {"input": x})
print(loaded - before, rss() - before, max(rss("VmHWM:"), before) - before)
"""


def _median_ms(ts):
    return statistics.median(ts) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="mobilenet_v2")
    p.add_argument("--variant", default="qop_au8_ws8_pt")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    onnx_path = M.build_quantized(args.model, args.variant)
    with tempfile.TemporaryDirectory() as td:
        compiled = os.path.join(td, "model.edgert")
        edgert.compile(onnx_path, compiled)
        arena = edgert.load(compiled).arena_bytes
        times = {"edgert .edgert": [], "edgert .onnx": [], "onnxruntime": []}
        loaders = {"edgert .edgert": lambda: edgert.load(compiled, threads=args.threads),
                   "edgert .onnx": lambda: edgert.load(onnx_path, threads=args.threads),
                   "onnxruntime": lambda: ort_session(onnx_path, args.threads)}
        for _ in range(args.rounds):
            keep = []
            for name, load in loaders.items():
                t = time.perf_counter()
                keep.append(load())
                times[name].append(time.perf_counter() - t)
            del keep
        ort_ms = _median_ms(times["onnxruntime"])
        print(f"{args.model} {args.variant}, {args.threads} thread(s), {args.rounds} rounds "
              f"interleaved: median load time")
        print("| runtime | load ms | / onnxruntime |\n|---|---|---|")
        for name, ts in times.items():
            print(f"| {name} | {_median_ms(ts):.2f} | {_median_ms(ts) / ort_ms:.3f} |")

        x_path = os.path.join(td, "x.npy")
        import numpy as np
        np.save(x_path, M.sample_input(args.model, 0))
        size = os.path.getsize(compiled)
        print(f"\nresident memory growth (fresh process): .edgert file {size / 2**20:.2f} MiB, "
              f"arena {arena / 2**20:.2f} MiB")
        print("| runtime | after load MiB | after first run MiB | peak MiB | peak / onnxruntime |\n"
              "|---|---|---|---|---|")
        rows = {}
        for name, rt, path in (("edgert .edgert", "edgert", compiled),
                               ("edgert .onnx", "edgert", onnx_path),
                               ("onnxruntime", "onnxruntime", onnx_path)):
            out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, rt, path,
                                  str(args.threads), x_path], check=True, capture_output=True,
                                 text=True).stdout.split()
            rows[name] = [int(v) / 2**20 for v in out]
        for name, (loaded, ran, peak) in rows.items():
            print(f"| {name} | {loaded:.2f} | {ran:.2f} | {peak:.2f} | "
                  f"{peak / rows['onnxruntime'][2]:.2f} |")


if __name__ == "__main__":
    main()
