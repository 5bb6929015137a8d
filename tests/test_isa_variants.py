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
        # Lengths around the 16- and 64-byte blocks (tails) and odd broadcast patterns, 2 threads.
        for n in (1, 5, 15, 16, 17, 31, 33, 47, 64, 65, 100, 130):
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


def quantize_cases():
    """Float inputs on and next to half-integer quotients, NaN, ±inf and huge values; per-tensor
    runs of odd lengths (the 32-float blocks' tails) and per-axis runs; u8 and i8."""
    rng = np.random.default_rng(3)
    cases = []
    for dt in (np.uint8, np.int8):
        info = np.iinfo(dt)
        for shape, axis in [((1, 3, 224, 224), None), ((1, 3, 17, 23), None), ((2, 3, 7, 9), 1),
                            ((5, 37), 0), ((1, 1, 1, 1), None)]:
            n = 1 if axis is None else shape[axis]
            for scale_kind in ("pow2", "rand"):
                s = np.array([np.float32(0.25) if scale_kind == "pow2" else
                              np.float32(np.exp(rng.uniform(-8, 1))) for _ in range(n)],
                             np.float32)
                zp = rng.integers(info.min, info.max + 1, n).astype(np.int32)
                zp[0] = info.min if scale_kind == "pow2" else info.max
                bshape = [1] * len(shape)
                if axis is not None:
                    bshape[axis] = n
                sb = s.reshape(bshape)
                q = rng.integers(-300, 300, shape).astype(np.float32)
                x = (q + np.float32(0.5)) * sb  # ties (exact for power-of-two scales)
                x = np.where(rng.random(shape) < 0.3, np.nextafter(x, np.float32(np.inf)), x)
                x = np.where(rng.random(shape) < 0.3, rng.standard_normal(shape).astype(
                    np.float32) * np.float32(100) * sb, x).astype(np.float32)
                flat = x.reshape(-1)
                flat[::97] = np.nan
                flat[1::101] = np.inf
                flat[2::103] = -np.inf
                flat[3::107] = np.float32(3e38)
                attrs = {"scale": s, "zp": zp, "axis": axis or 0}
                cases.append(("quantize", [x], [(shape, dt)], attrs, 1 if x.size < 4096 else 2))
    return cases


def transpose_cases():
    """NCHW -> NHWC of 1-5 byte channels (2-4 take the interleaving kernel) with pixel counts
    around its 32-pixel steps and its 4096-pixel ranges, batches of two, 1 and 2 threads; and
    NHWC <-> NCHW of more channels (the 16x16 tile kernel)."""
    rng = np.random.default_rng(4)
    cases = []
    for dt in (np.uint8, np.int8):
        for c in (1, 2, 3, 4, 5):
            for n, h, w in [(1, 1, 1), (1, 3, 7), (2, 5, 31), (1, 4, 8), (2, 9, 33), (1, 224, 224),
                            (1, 37, 123)]:
                x = rng.integers(0, 256, (n, c, h, w)).astype(np.uint8).view(dt)
                for threads in (1, 2):
                    cases.append(("transpose", [x], [((n, h, w, c), dt)], {"perm": [0, 2, 3, 1]},
                                  threads))
        # Other byte transposes (16x16 tiles): NHWC <-> NCHW of 16-70 channels.
        for n, h, w, c in [(1, 20, 18, 40), (2, 9, 9, 70), (1, 20, 20, 64), (1, 5, 7, 16)]:
            x = rng.integers(0, 256, (n, h, w, c)).astype(np.uint8).view(dt)
            cases.append(("transpose", [x], [((n, c, h, w), dt)], {"perm": [0, 3, 1, 2]}, 2))
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            cases.append(("transpose", [x], [((n, h, w, c), dt)], {"perm": [0, 2, 3, 1]}, 1))
    return cases


def maxpool_cases():
    """u8, i8 and f32 (with NaN, ±inf, ±0) NHWC max pooling with padding, strides, dilations and
    ceil-mode output sizes, on channel counts around the vector widths."""
    rng = np.random.default_rng(5)
    cases = []
    windows = [((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0), ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
               ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1), ((3, 2), (1, 2), (1, 0, 1, 1), (2, 1), 0),
               ((2, 2), (1, 1), (1, 1, 1, 1), (2, 3), 1), ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 0)]
    for dt in (np.uint8, np.int8, np.float32):
        for c in (1, 3, 8, 15, 16, 17, 31, 32, 33, 64, 65):
            for kernel, strides, pads, dil, ceil in windows:
                h, w = 9, 12
                if dt == np.float32:
                    x = rng.integers(-3, 4, (2, h, w, c)).astype(np.float32) * np.float32(0.5)
                    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
                    mask = rng.random(x.shape) < 0.15
                    x[mask] = rng.choice(special, int(mask.sum()))
                else:
                    x = rng.integers(0, 256, (2, h, w, c)).astype(np.uint8).view(dt)
                rnd = (lambda v: -(-v // 1)) if ceil else (lambda v: v // 1)
                ek = [(kernel[i] - 1) * dil[i] + 1 for i in range(2)]
                oh = int(rnd((h + pads[0] + pads[2] - ek[0]) / strides[0])) + 1
                ow = int(rnd((w + pads[1] + pads[3] - ek[1]) / strides[1])) + 1
                attrs = {"kernel": list(kernel), "strides": list(strides), "pads": list(pads),
                         "dilations": list(dil)}
                cases.append(("maxpool", [x], [((2, oh, ow, c), dt)], attrs, 1 + (c % 2)))
    return cases


@pytest.mark.parametrize("isa", OTHER_ISAS)
@pytest.mark.parametrize("kind", ["quantize", "transpose", "maxpool"])
def test_convert_move_pool_bit_identical_to_scalar(isa, kind):
    cases = {"quantize": quantize_cases, "transpose": transpose_cases,
             "maxpool": maxpool_cases}[kind]()
    want = run_under("scalar", cases)
    got = run_under(isa, cases)
    for c, w, g in zip(cases, want, got):
        assert w[0].tobytes() == g[0].tobytes(), f"{c[0]} {c[1][0].shape} {c[3]}"
