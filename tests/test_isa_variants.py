"""Every ISA this machine runs gives the same bytes as scalar for the perf-owned ops (qadd, qmul,
quantize/dequantize, pooling, transposes...): the same op cases run in one subprocess per ISA
(EDGERT_ISA is fixed per process) and the op test files re-run under each ISA."""
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgert import _core

HERE = Path(__file__).parent
OTHER_ISAS = [i for i in _core.available_isas() if i != "scalar"]

_SCRIPT = r"""
import pickle, sys
sys.path.insert(0, sys.argv[3])
from oplib import run_op
from edgert import _core
cases = pickle.load(open(sys.argv[1], "rb"))
outs = [run_op(*c) for c in cases]
pickle.dump((_core.isa(), outs), open(sys.argv[2], "wb"))
"""


def run_under(isa, cases):
    with tempfile.TemporaryDirectory() as td:
        src, dst = Path(td) / "in.pkl", Path(td) / "out.pkl"
        src.write_bytes(pickle.dumps(cases))
        env = dict(os.environ, EDGERT_ISA=isa)
        subprocess.run([sys.executable, "-c", _SCRIPT, str(src), str(dst), str(HERE)], env=env,
                       check=True)
        got_isa, outs = pickle.loads(dst.read_bytes())
    assert got_isa == isa
    return outs


def qbinary_cases():
    rng = np.random.default_rng(0)
    cases = []
    g = np.arange(256)
    for op in ("qadd", "qmul"):
        for at, bt, yt in [(np.uint8,) * 3, (np.int8,) * 3, (np.uint8, np.int8, np.int8),
                           (np.int8, np.uint8, np.uint8)]:
            ga, gb = g.astype(np.uint8).view(at), g.astype(np.uint8).view(bt)
            for a, b in [(np.repeat(ga, 256), np.tile(gb, 256)),      # both advance
                         (ga.reshape(1, 256), gb.reshape(256, 1)),    # B the run's scalar
                         (ga.reshape(256, 1), gb.reshape(1, 256))]:   # A the run's scalar
                for zs in ("rand", "lo", "hi"):
                    lo, hi = np.iinfo(yt).min, np.iinfo(yt).max
                    z = {"rand": [int(rng.integers(np.iinfo(t).min, np.iinfo(t).max + 1))
                                  for t in (at, bt, yt)],
                         "lo": [np.iinfo(at).min, np.iinfo(bt).min, lo],
                         "hi": [np.iinfo(at).max, np.iinfo(bt).max, hi]}[zs]
                    s = [float(np.float32(np.exp(rng.uniform(-6, 1)))) for _ in range(3)]
                    attrs = {"a_scale": s[0], "a_zp": z[0], "b_scale": s[1], "b_zp": z[1],
                             "y_scale": s[2], "y_zp": z[2]}
                    if zs == "hi":
                        attrs.update(qmin=int(lo) + 3, qmax=int(hi) - 7)
                    shape = np.broadcast_shapes(a.shape, b.shape)
                    cases.append((op, [a, b], [(shape, yt)], attrs, 1))
        # Lengths around the 16-byte blocks (tails) and odd broadcast patterns, 2 threads.
        for n in (1, 5, 15, 16, 17, 31, 33, 100):
            a = rng.integers(0, 256, (3, n)).astype(np.uint8)
            b = rng.integers(0, 256, (1, n)).astype(np.uint8)
            c = rng.integers(0, 256, (3, 1)).astype(np.uint8)
            attrs = {"a_scale": 0.02, "a_zp": 120, "b_scale": 0.05, "b_zp": 3, "y_scale": 0.07,
                     "y_zp": 128}
            cases.append((op, [a, b], [((3, n), np.uint8)], attrs, 2))
            cases.append((op, [a, c], [((3, n), np.uint8)], attrs, 1))
            cases.append((op, [c, a], [((3, n), np.uint8)], attrs, 1))
    return cases


@pytest.mark.parametrize("isa", OTHER_ISAS)
def test_qbinary_bit_identical_to_scalar(isa):
    cases = qbinary_cases()
    want = run_under("scalar", cases)
    got = run_under(isa, cases)
    for c, w, g in zip(cases, want, got):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"{c[0]} {c[3]}")


def avgpool_cases():
    rng = np.random.default_rng(1)
    cases = []
    for dt in (np.uint8, np.int8):
        info = np.iinfo(dt)
        for c in (1, 7, 8, 9, 16, 21, 40):
            for kernel, strides, pads, cip in [((3, 3), (1, 1), (1, 1, 1, 1), 0),
                                               ((3, 3), (2, 2), (1, 1, 1, 1), 1),
                                               ((2, 3), (2, 1), (0, 1, 0, 1), 0),
                                               ((5, 5), (1, 1), (0, 0, 0, 0), 0)]:
                h, w = 9, 8
                oh = (h + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
                ow = (w + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
                x = rng.integers(info.min, info.max + 1, (2, h, w, c)).astype(dt)
                extreme = c in (9, 40)
                zx, zy = ((int(info.min), int(info.max)) if extreme else
                          (int(rng.integers(info.min, info.max + 1)),
                           int(rng.integers(info.min, info.max + 1))))
                attrs = {"x_scale": float(np.float32(np.exp(rng.uniform(-5, 0)))), "x_zp": zx,
                         "y_scale": float(np.float32(np.exp(rng.uniform(-5, 0)))), "y_zp": zy,
                         "kernel": list(kernel), "strides": list(strides), "pads": list(pads),
                         "count_include_pad": cip}
                cases.append(("qavgpool", [x], [((2, oh, ow, c), dt)], attrs, 1))
    return cases


@pytest.mark.parametrize("isa", OTHER_ISAS)
def test_avgpool_bit_identical_to_scalar(isa):
    cases = avgpool_cases()
    want = run_under("scalar", cases)
    got = run_under(isa, cases)
    for c, w, g in zip(cases, want, got):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"{c[0]} {c[3]}")


OP_FILES = ["test_op_qbinary.py", "test_op_qpool.py", "test_op_qmisc.py", "test_op_movement.py",
            "test_op_f32_elementwise.py", "test_op_f32_pool.py"]


@pytest.mark.parametrize("isa", ["scalar"] + OTHER_ISAS)
def test_op_files_under_isa(isa):
    # The op tests compare against onnxruntime / numpy oracles; each ISA must pass them all.
    files = [str(HERE / f) for f in OP_FILES if (HERE / f).exists()]
    env = dict(os.environ, EDGERT_ISA=isa)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        *files], env=env, cwd=HERE.parent, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
