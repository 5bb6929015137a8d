"""Model benchmarks: edgert against onnxruntime on the same quantized .onnx files.

For every bench model and quantization variant, both runtimes run interleaved in this process
at each thread count (onnxruntime at ORT_ENABLE_ALL, spinning off); the table gives median and
p90 latency and the ratio edgert / onnxruntime (below 1: edgert is faster), then each runtime's
speed-up from more threads (its 1-thread median over its n-thread one). Peak memory (growth
of resident memory over load and runs) comes from one fresh process per runtime.

    python -m bench.bench_models                      # every model, main variants
    python -m bench.bench_models mobilenet_v2 --variants all --threads 1,2 --runs 50
"""
import argparse
import json
import sys

from edgert import benchmark as B

from . import models as M

DEFAULT_MODELS = ["mobilenet_v2", "mobilenet_v2_035_96", "mobilenet_v3_small", "resnet18",
                  "ds_cnn", "mlp", "shufflenet_g3"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    p.add_argument("--variants", default="main", help="main, all, or comma-separated names")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--memory", action="store_true", help="also measure peak memory (slower)")
    p.add_argument("--json", help="write all results here")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    rows, results = [], []
    head = "| model | variant | threads | edgert ms (p90) | onnxruntime ms (p90) | ratio |"
    if args.memory:
        head += " peak MB edgert / ort |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in args.models:
        if args.variants == "main":
            variants = M.MAIN_VARIANTS
        elif args.variants == "all":
            variants = M.variants_for(name)
        else:
            variants = args.variants.split(",")
        for v in variants:
            path = M.build_quantized(name, v)
            feeds = [{"input": M.sample_input(name, s)} for s in range(4)]
            mem = {}
            if args.memory:
                mem = {rt: B.memory(rt, path, threads[0], 10) for rt in ("edgert", "onnxruntime")}
            for t in threads:
                r = B.run_bench(path, path, t, args.runs, 3, feeds, True)
                r.update(model=name, variant=v, memory=mem)
                results.append(r)
                e, o = r["edgert"], r["onnxruntime"]
                line = (f"| {name} | {v} | {t} | {e['median_ms']:.3f} ({e['p90_ms']:.3f}) | "
                        f"{o['median_ms']:.3f} ({o['p90_ms']:.3f}) | {r['ratio']:.2f} |")
                if args.memory:
                    line += f" {mem['edgert'] / 2**20:.1f} / {mem['onnxruntime'] / 2**20:.1f} |"
                print(line, flush=True)
                rows.append(line)
    print_speedups(results, threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def print_speedups(results, threads):
    """Each runtime's speed-up from more threads (its 1-thread median over its n-thread one),
    from the rows above."""
    if 1 not in threads or len(threads) < 2:
        return
    more = [t for t in threads if t > 1]
    med = {(r["model"], r["variant"], r["threads"]): r for r in results}
    cols = [f"{rt} speed-up at {t}T" for t in more for rt in ("edgert", "onnxruntime")]
    head = "| model | variant | " + " | ".join(cols) + " |"
    print()
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for (name, v, t), one in med.items():
        if t != 1:
            continue
        cells = []
        for n in more:
            r = med.get((name, v, n))
            if r is None:
                cells += ["", ""]
                continue
            cells += [f"{one[rt]['median_ms'] / r[rt]['median_ms']:.2f}x"
                      for rt in ("edgert", "onnxruntime")]
        print(f"| {name} | {v} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
