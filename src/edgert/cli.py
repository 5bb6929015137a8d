"""The edgert command line (also `python -m edgert`): compile, info, run, bench, profile, demo."""
import argparse
import os
import sys
from importlib import resources

import numpy as np

DEFAULT = "digits_int8"  # the embedded default model, shipped as .onnx and compiled .edgert


def data_path(name):
    return str(resources.files("edgert").joinpath("data", name))


def _load(path, threads=None):
    import edgert
    if not os.path.exists(path):
        raise _Fail(f"no such model file: {path}")
    return edgert.load(path, threads=threads)


class _Fail(Exception):
    """An error for the user: one line, exit code 1."""


def plan_facts(sess):
    """Ops by type, MACs, weight bytes and arena bytes of the session's default plan."""
    from .plan import plan_facts as facts
    return facts(next(iter(sess._plans.values())).plan)


def cmd_compile(args):
    import edgert
    out = args.output or os.path.splitext(args.model)[0] + ".edgert"
    if not os.path.exists(args.model):
        raise _Fail(f"no such model file: {args.model}")
    sess = edgert.compile(args.model, out, native=args.native)
    f = plan_facts(sess)
    print(f"wrote {out}: {os.path.getsize(out) / 1e6:.2f} MB, arena {f['arena_bytes'] / 1e6:.2f} MB, "
          f"{sum(f['ops'].values())} ops: " + ", ".join(f"{k} {v}" for k, v in sorted(f["ops"].items())))
    return 0


def _arg_rows(args):
    rows = []
    for a in args:
        q = f"  scale {a.scale:.6g}  zero point {a.zero_point}" if a.scale is not None else ""
        rows.append(f"  {a.name}: {a.dtype} {a.shape}{q}")
    return rows


def _isa_text():
    """The ISA and the int8 GEMM kernel it runs large layers on (for reports and bug reports:
    EDGERT_VNNI_TILE and the CPU pick among avx512vnni's tables)."""
    import edgert
    from . import _core
    gemm = _core.x8_kernel(1024, 1024, 1024)
    return f"{edgert.isa()} (int8 GEMM {gemm or 'int16 form'})"


def cmd_info(args):
    sess = _load(args.model)
    f = plan_facts(sess)
    print("\n".join([f"model: {args.model} ({os.path.getsize(args.model) / 1e6:.2f} MB)", "inputs:"]
                    + _arg_rows(sess.get_inputs()) + ["outputs:"] + _arg_rows(sess.get_outputs())))
    print("ops: " + ", ".join(f"{k} {v}" for k, v in sorted(f["ops"].items())))
    print(f"MACs: {f['macs'] / 1e6:.2f} M   weights: {f['weight_bytes'] / 1e6:.2f} MB   "
          f"arena: {f['arena_bytes'] / 1e6:.3f} MB   ISA: {_isa_text()}")
    return 0


def cmd_run(args):
    sess = _load(args.model, args.threads)
    feed = {}
    for item in args.input:
        name, sep, path = item.partition("=")
        if not sep:
            raise _Fail(f"--input takes NAME=file.npy, got '{item}'")
        try:
            feed[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise _Fail(f"cannot read input '{name}' from {path}: {e}") from None
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, feed)
    if args.output:
        np.savez(args.output, **dict(zip(names, outs)))
        print(f"wrote {len(outs)} output(s) to {args.output}")
    else:
        for n, o in zip(names, outs):
            flat = o.reshape(o.shape[0], -1) if o.ndim > 1 else o.reshape(1, -1)
            print(f"{n}: {o.dtype} {list(o.shape)}  argmax {flat.argmax(1).tolist()}  "
                  f"min {o.min():.6g}  max {o.max():.6g}")
    return 0


def cmd_profile(args):
    from .benchmark import make_inputs
    sess = _load(args.model, args.threads)
    rows = sess.profile(make_inputs(sess, 1)[0], runs=args.runs)
    total = sum(r["median_us"] for r in rows)
    print(f"{args.model}: {len(rows)} ops, {total:.1f} us summed medians, {sess.threads} thread(s)")
    by_type = {}
    for r in rows:
        by_type[r["op"]] = by_type.get(r["op"], 0.0) + r["median_us"]
    print("by op type:")
    for t, us in sorted(by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {t:<24} {us:10.1f} us  {100 * us / total:5.1f} %")
    shown = rows if args.top <= 0 else sorted(rows, key=lambda r: -r["median_us"])[:args.top]
    print("ops" + ("" if args.top <= 0 else f" (the {len(shown)} slowest)") + ":")
    for r in shown:
        print(f"  {r['median_us']:9.1f} us  p90 {r['p90_us']:9.1f}  {100 * r['share']:5.1f} %  "
              f"{r['op']} '{r['node']}'")
    return 0


def _progress(label):
    if not sys.stderr.isatty():
        return None

    def show(done, total):
        bar = "#" * (30 * done // total)
        sys.stderr.write(f"\r{label} [{bar:<30}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def cmd_bench(args):
    import edgert
    from . import benchmark as B
    model, onnx_model, feeds = args.model, args.onnx, None
    if model is None:
        model, onnx_model = data_path(DEFAULT + ".edgert"), data_path(DEFAULT + ".onnx")
        x = np.load(data_path("digits_test.npz"))["x"]
        feeds = [{"input": x[i:i + 1]} for i in range(min(len(x), 64))]
    elif not os.path.exists(model):
        raise _Fail(f"no such model file: {model}")
    elif onnx_model is None and not _is_edgert(model):
        onnx_model = model
    against = args.against == "onnxruntime"
    if against:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime is not installed: benchmarking edgert alone "
                  "(pip install 'edgert[compare]' adds the comparison)", file=sys.stderr)
            against = False
        if against and onnx_model is None:
            print("onnxruntime cannot read .edgert files: pass --onnx MODEL.onnx to compare",
                  file=sys.stderr)
            against = False
    try:
        threads = [int(t) for t in args.threads.split(",")]
        assert all(t > 0 for t in threads)
    except (ValueError, AssertionError):
        raise _Fail(f"--threads takes positive integers like 1,2, got '{args.threads}'") from None
    if feeds is None:
        feeds = B.make_inputs(_load(model), 8)
    report = {"model": model, "isa": edgert.isa(), "isa_detail": _isa_text(), "runs": args.runs,
              "results": []}
    for t in threads:
        report["results"].append(B.run_bench(model, onnx_model, t, args.runs, args.warmup, feeds,
                                             against, _progress(f"{t} thread(s)")))
    if not args.no_memory:
        report["memory"] = {"edgert": B.memory("edgert", model, threads[0], 10)}
        if against:
            report["memory"]["onnxruntime"] = B.memory("onnxruntime", onnx_model, threads[0], 10)
    print(B.table(report))
    if args.json:
        B.save_json(report, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        B.plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _is_edgert(path):
    from .format import is_edgert
    with open(path, "rb") as f:
        return is_edgert(f.read(8))


def cmd_demo(args):
    """Accuracy of the embedded digits CNN: float, edgert int8, onnxruntime int8."""
    import edgert
    test = np.load(data_path("digits_test.npz"))
    x, y = test["x"], test["y"]
    sess = edgert.load(data_path(DEFAULT + ".edgert"), threads=args.threads)
    rows = [("edgert int8", sess)]
    try:
        from .benchmark import ort_session
        t = args.threads or sess.threads
        rows = [("onnxruntime float", ort_session(data_path("digits_float.onnx"), t)), rows[0],
                ("onnxruntime int8", ort_session(data_path(DEFAULT + ".onnx"), t))]
    except ImportError:
        print("(onnxruntime is not installed: pip install 'edgert[compare]' to compare with it)")
    print(f"embedded model: digits CNN, {len(y)} held-out 8x8 images of scikit-learn's digits")
    preds = {}
    for label, s in rows:
        preds[label] = s.run(None, {"input": x})[0].argmax(1)
        print(f"  {label:<20} accuracy {(preds[label] == y).mean():.2%}")
    if "onnxruntime int8" in preds:
        agree = (preds["edgert int8"] == preds["onnxruntime int8"]).mean()
        print(f"  edgert and onnxruntime int8 agree on {agree:.2%} of the predictions")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgert", description="edgert: int8 inference on the edge")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile an .onnx model to a deployable .edgert file")
    c.add_argument("model", help="the .onnx model")
    c.add_argument("-o", "--output", help="the .edgert file (default: next to the model)")
    c.add_argument("--native", action="store_true",
                   help="plan for this machine's ISA (faster here; the file still runs anywhere)")
    c.set_defaults(fn=cmd_compile)
    i = sub.add_parser("info", help="inputs, outputs, ops, MACs, weights, arena of a model")
    i.add_argument("model")
    i.set_defaults(fn=cmd_info)
    r = sub.add_parser("run", help="run a model on inputs saved as .npy files")
    r.add_argument("model")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    r.add_argument("--output", metavar="OUT.npz", help="save the outputs (default: summarize)")
    r.add_argument("--threads", type=int, default=None)
    r.set_defaults(fn=cmd_run)
    b = sub.add_parser("bench", help="edgert against onnxruntime on one model (default: the "
                       "embedded one)")
    b.add_argument("model", nargs="?", help=".onnx or .edgert (default: the embedded model)")
    b.add_argument("--onnx", help="the .onnx for onnxruntime when MODEL is .edgert")
    b.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    b.add_argument("--runs", type=int, default=200, help="timed runs per runtime (default 200)")
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--against", choices=["onnxruntime", "none"], default="onnxruntime")
    b.add_argument("--json", metavar="OUT.json")
    b.add_argument("--plot", metavar="OUT.png", help="a bar chart (needs matplotlib)")
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    b.set_defaults(fn=cmd_bench)
    f = sub.add_parser("profile", help="per-op times of a model on random inputs")
    f.add_argument("model", help=".onnx or .edgert")
    f.add_argument("--runs", type=int, default=50)
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--top", type=int, default=15, help="the N slowest ops (0: all, in plan order)")
    f.set_defaults(fn=cmd_profile)
    d = sub.add_parser("demo", help="accuracy of the embedded model: float, edgert, onnxruntime")
    d.add_argument("--threads", type=int, default=None)
    d.set_defaults(fn=cmd_demo)
    args = p.parse_args(argv)
    from .errors import EdgertError
    try:
        return args.fn(args)
    except (_Fail, EdgertError, OSError) as e:
        msg = str(e).splitlines()
        print(f"edgert: error: {msg[0]}" + (f" (+{len(msg) - 1} lines)" if len(msg) > 1 else ""),
              file=sys.stderr)
        for line in msg[1:6]:
            print(f"  {line.strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
