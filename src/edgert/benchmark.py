"""edgert against onnxruntime on one model, as `edgert bench` and bench/ run it.

Latency is measured interleaved in one process (one edgert run, one onnxruntime run, and so on),
with the same thread count and onnxruntime at ORT_ENABLE_ALL without spinning, so both see the
same machine noise. Memory is measured in a fresh subprocess per runtime: the growth of resident
memory (peak, VmHWM) from before loading to after the runs.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np


_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
          "tensor(int32)": np.int32, "tensor(int64)": np.int64}


def make_inputs(session, count, seed=0):
    """Random inputs for a session's declared inputs (dynamic dims become 1)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            dtype = np.dtype(_TYPES.get(i.type, np.float32))
            if dtype.kind == "f":
                feed[i.name] = rng.standard_normal(shape).astype(dtype)
            else:
                info = np.iinfo(dtype)
                feed[i.name] = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        feeds.append(feed)
    return feeds


def ort_session(model, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _stats(times_ms):
    t = np.asarray(times_ms)
    return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "throughput_per_s": float(1e3 / np.median(t))}


_LOAD_ROUNDS = 5  # loads per runtime and thread count; the median is reported


def run_bench(model, onnx_model, threads, runs, warmup, feeds, against_ort, progress=None):
    """One thread count: load times, latency stats, agreement. model: path for edgert;
    onnx_model: path or bytes for onnxruntime (None: edgert alone)."""
    import edgert
    # Load time: the median of a few loads, interleaved: a process's first load also pays for
    # first-use imports and cold caches, which is not what a deployed model's load costs.
    with_ort = against_ort and onnx_model is not None
    loads = {"edgert": [], "onnxruntime": []}
    ours = theirs = None
    for _ in range(_LOAD_ROUNDS):
        t = time.perf_counter()
        ours = edgert.load(model, threads=threads)
        loads["edgert"].append((time.perf_counter() - t) * 1e3)
        if with_ort:
            t = time.perf_counter()
            theirs = ort_session(onnx_model, threads)
            loads["onnxruntime"].append((time.perf_counter() - t) * 1e3)
    result = {"threads": threads, "edgert": {"load_ms": float(np.median(loads["edgert"]))}}
    if with_ort:
        result["onnxruntime"] = {"load_ms": float(np.median(loads["onnxruntime"]))}
    for k in range(warmup):
        ours.run(None, feeds[k % len(feeds)])
        if theirs is not None:
            theirs.run(None, feeds[k % len(feeds)])
    mine, other = [], []
    agree, worst, compared = 0, 0.0, 0
    for k in range(runs):
        feed = feeds[k % len(feeds)]
        t = time.perf_counter()
        a = ours.run(None, feed)[0]
        mine.append((time.perf_counter() - t) * 1e3)
        if theirs is not None:
            t = time.perf_counter()
            b = theirs.run(None, feed)[0]
            other.append((time.perf_counter() - t) * 1e3)
            if k < len(feeds):
                compared += 1
                agree += int(np.array_equal(a.reshape(a.shape[0], -1).argmax(1),
                                            b.reshape(b.shape[0], -1).argmax(1)))
                worst = max(worst, float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
        if progress:
            progress(k + 1, runs)
    result["edgert"].update(_stats(mine))
    if theirs is not None:
        result["onnxruntime"].update(_stats(other))
        result["ratio"] = result["edgert"]["median_ms"] / result["onnxruntime"]["median_ms"]
        result["agreement"] = {"top1": agree / max(compared, 1), "max_abs_diff": worst,
                               "inputs": compared}
    return result


def memory(runtime, model, threads, runs):
    """Resident-memory growth (bytes) of loading `model` and running it, in a fresh process.
    The inputs are made here and read by the child before its baseline, so the figure is the
    runtime's own: the session, its arena and weights, what runs allocate."""
    import tempfile
    code = ("import sys, numpy as np\n"
            "def rss(key):\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith(key): return int(line.split()[1]) * 1024\n"
            "rt, path, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n"
            "import edgert\n"
            "from edgert.benchmark import ort_session\n"
            "if rt == 'onnxruntime': import onnxruntime\n"
            "with np.load(sys.argv[5]) as z:\n"
            "    feeds = [{k[2:]: z[k] for k in z.files if k[0] == str(i)} for i in range(2)]\n"
            "try:\n"
            "    open('/proc/self/clear_refs', 'w').write('5')  # the peak restarts from here\n"
            "except OSError:\n"
            "    pass\n"
            "base = rss('VmRSS:')\n"
            "s = edgert.load(path, threads=threads) if rt == 'edgert' else ort_session(path, threads)\n"
            "for k in range(runs): s.run(None, feeds[k % 2])\n"
            "print(max(rss('VmHWM:'), base) - base)\n")
    try:
        try:
            import edgert
            meta = edgert.load(model, threads=1) if runtime == "edgert" else ort_session(model, 1)
        except Exception:
            meta = ort_session(model, 1)
        feeds = make_inputs(meta, 2)
        with tempfile.TemporaryDirectory() as td:
            npz = os.path.join(td, "inputs.npz")
            np.savez(npz, **{f"{i}_{k}": v for i, f in enumerate(feeds) for k, v in f.items()})
            out = subprocess.run([sys.executable, "-c", code, runtime, model, str(threads),
                                  str(runs), npz], capture_output=True, text=True, timeout=600,
                                 check=True)
        return int(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def table(report):
    """The human-readable summary of a report."""
    rows = [f"model: {report['model']}   ISA: {report.get('isa_detail', report['isa'])}"]
    head = f"{'threads':>7} {'runtime':<12}{'load ms':>9}{'median':>9}{'p90':>9}{'p99':>9}{'runs/s':>9}{'peak MB':>9}"
    rows.append(head)
    for r in report["results"]:
        for rt in ("edgert", "onnxruntime"):
            if rt not in r:
                continue
            m = r[rt]
            mem = report.get("memory", {}).get(rt)
            rows.append(f"{r['threads']:>7} {rt:<12}{m['load_ms']:>9.2f}{m['median_ms']:>9.3f}"
                        f"{m['p90_ms']:>9.3f}{m['p99_ms']:>9.3f}{m['throughput_per_s']:>9.0f}"
                        f"{(mem / 2**20 if mem else float('nan')):>9.2f}")
        if "ratio" in r:
            a = r["agreement"]
            rows.append(f"{'':>7} edgert/onnxruntime = {r['ratio']:.2f}x latency, "
                        f"{r['edgert']['load_ms'] / r['onnxruntime']['load_ms']:.2f}x load time; "
                        f"top-1 agreement {a['top1']:.0%}, max |diff| {a['max_abs_diff']:.4g}")
    return "\n".join(rows)


def plot(report, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .errors import MissingDependencyError
        raise MissingDependencyError("--plot needs matplotlib: pip install 'edgert[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in report["results"]]
    x = np.arange(len(labels))
    for k, rt in enumerate(("edgert", "onnxruntime")):
        vals = [r[rt]["median_ms"] if rt in r else 0 for r in report["results"]]
        errs = [r[rt]["p90_ms"] - r[rt]["median_ms"] if rt in r else 0 for r in report["results"]]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, yerr=errs, label=rt, capsize=3)
    ax.set_xticks(x, labels)
    ax.set_ylabel("latency, ms (median, bar to p90)")
    ax.set_title(os.path.basename(report["model"]))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_json(report, path):
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
