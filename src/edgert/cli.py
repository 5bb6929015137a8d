"""The edgert command line: `edgert demo` runs the embedded default model."""
import argparse
import sys
import time
from importlib import resources

import numpy as np


def data_path(name):
    return resources.files("edgert").joinpath("data", name)


def _median_ms(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def demo(args):
    """Accuracy and latency of the embedded digits CNN: float, edgert int8, onnxruntime int8."""
    import edgert
    test = np.load(str(data_path("digits_test.npz")))
    x, y = test["x"], test["y"]
    int8_path = str(data_path("digits_int8.onnx"))
    sess = edgert.load(int8_path, threads=args.threads)
    name = sess.get_inputs()[0].name
    rows = [("edgert int8", sess)]
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads or 0
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        rows.insert(0, ("onnxruntime float", ort.InferenceSession(
            str(data_path("digits_float.onnx")), so, providers=["CPUExecutionProvider"])))
        rows.append(("onnxruntime int8", ort.InferenceSession(
            int8_path, so, providers=["CPUExecutionProvider"])))
    except ImportError:
        print("(onnxruntime is not installed: pip install 'edgert[compare]' to compare with it)")
    print(f"embedded model: digits CNN ({len(y)} held-out 8x8 images of scikit-learn's digits), "
          f"ISA {edgert.isa()}, threads {sess.threads}")
    print(f"{'runtime':<20}{'accuracy':>10}{'batch ms':>11}{'1-image ms':>12}")
    preds = {}
    for label, s in rows:
        out = s.run(None, {name: x})[0]
        preds[label] = out.argmax(1)
        batch_ms = _median_ms(lambda: s.run(None, {name: x}), args.runs)
        one_ms = _median_ms(lambda: s.run(None, {name: x[:1]}), args.runs * 5)
        print(f"{label:<20}{(preds[label] == y).mean():>10.2%}{batch_ms:>11.3f}{one_ms:>12.4f}")
    if "onnxruntime int8" in preds:
        agree = (preds["edgert int8"] == preds["onnxruntime int8"]).mean()
        print(f"edgert and onnxruntime int8 agree on {agree:.2%} of the predictions")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgert", description="edgert: int8 inference on the edge")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run the embedded default model and compare with onnxruntime")
    d.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    d.add_argument("--runs", type=int, default=20, help="timed runs per measurement")
    d.set_defaults(fn=demo)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except Exception as e:  # one line for the user, not a traceback
        from .errors import EdgertError
        if isinstance(e, (EdgertError, OSError)):
            print(f"edgert: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
