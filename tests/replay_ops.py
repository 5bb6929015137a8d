"""Replays the op cases tests/op_capture.py recorded and checks that this build of edgert gives
the same bytes: `python tests/replay_ops.py CASES.pkl`. Exit status 1 on any difference (each
named), 0 otherwise. Run by csrc/tests/aarch64_ops.sh under qemu-aarch64, where onnxruntime
cannot run (its import crashes under qemu-user): x86's recorded outputs, checked there against
onnxruntime and numpy, are the oracle."""
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oplib import run_op  # noqa: E402

from edgert import _core  # noqa: E402


def main(path):
    with open(path, "rb") as f:
        cases = pickle.load(f)
    bad = 0
    for i, (op, ins, outs, attrs, threads, want) in enumerate(cases):
        try:
            got = run_op(op, ins, outs, attrs, threads)
        except Exception as e:  # noqa: BLE001 - reported, counted
            bad += 1
            print(f"case {i} {op}: raised {type(e).__name__}: {e}"[:300])
            continue
        for k, (g, w) in enumerate(zip(got, want)):
            if g.dtype != w.dtype or g.shape != w.shape or not np.array_equal(g, w, equal_nan=True):
                bad += 1
                shapes = [a.shape for a in ins]
                print(f"case {i} {op} output {k}: differs (inputs {shapes}, "
                      f"{int(np.sum(g != w)) if g.shape == w.shape else 'shape'} values)")
                break
    print(f"{_core.isa()} ({_core.x8_kernel(64, 64, 64) or 'no byte kernel'}): {len(cases)} op "
          f"cases, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
