"""qadd / qmul against onnxruntime's QLinearAdd / QLinearMul (bit-exact) and numpy."""
import numpy as np
import pytest

from edgert import _core
from oplib import run_op
from qmisc_ort import F32, fmaf, ort_node, qrange, rand_q

DTYPES = [np.uint8, np.int8]


def ort_binary(op, a, b, p):
    dt = a.dtype
    consts = [("as", p["a_scale"], F32), ("az", p["a_zp"], dt), ("bs", p["b_scale"], F32),
              ("bz", p["b_zp"], dt), ("ys", p["y_scale"], F32), ("yz", p["y_zp"], dt)]
    return ort_node(op, [("A", a), ("B", b)], consts, domain="com.microsoft",
                    attrs={"_order": ["A", "as", "az", "B", "bs", "bz", "ys", "yz"]})


def numpy_add(a, b, p, ydt, a_is_scalar_of_run=False):
    """onnxruntime's AVX2 formula; x is the run's varying first operand (B when A is the
    broadcast scalar of the innermost run)."""
    xa, xb = np.broadcast_arrays(a.astype(F32), b.astype(F32))
    (x, sx, zx, s, ss, zs) = ((xb, p["b_scale"], p["b_zp"], xa, p["a_scale"], p["a_zp"])
                              if a_is_scalar_of_run else
                              (xa, p["a_scale"], p["a_zp"], xb, p["b_scale"], p["b_zp"]))
    rx, rs = F32(sx) / F32(p["y_scale"]), F32(ss) / F32(p["y_scale"])
    fixed = F32(p["y_zp"]) - fmaf(rx, F32(zx), rs * F32(zs))
    v = fmaf(x, rx, fmaf(s, rs, fixed))
    lo, hi = p.get("qmin", qrange(ydt)[0]), p.get("qmax", qrange(ydt)[1])
    return np.clip(np.rint(v.astype(np.float64)), lo, hi).astype(ydt)


def numpy_mul(a, b, p, ydt):
    prod = (a.astype(np.int32) - p["a_zp"]) * (b.astype(np.int32) - p["b_zp"])
    r = F32(p["a_scale"]) * F32(p["b_scale"]) / F32(p["y_scale"])
    v = prod.astype(F32) * r + F32(p["y_zp"])
    lo, hi = p.get("qmin", qrange(ydt)[0]), p.get("qmax", qrange(ydt)[1])
    return np.clip(np.rint(v.astype(np.float64)), lo, hi).astype(ydt)


def float_ref(op, a, b, p, ydt):
    """Plain dequantize / compute / quantize in float64: within 1 of the exact formulas."""
    fa = (a.astype(np.float64) - p["a_zp"]) * p["a_scale"]
    fb = (b.astype(np.float64) - p["b_zp"]) * p["b_scale"]
    v = (fa + fb if op == "qadd" else fa * fb) / p["y_scale"] + p["y_zp"]
    return np.clip(np.rint(v), *qrange(ydt))


def params(rng, dt, zps=None):
    lo, hi = qrange(dt)
    z = zps or [int(rng.integers(lo, hi + 1)) for _ in range(3)]
    s = [float(F32(np.exp(rng.uniform(-6, 1)))) for _ in range(3)]
    return {"a_scale": s[0], "a_zp": z[0], "b_scale": s[1], "b_zp": z[1],
            "y_scale": s[2], "y_zp": z[2]}


def edgert(op, a, b, p, ydt, threads=1):
    shape = np.broadcast_shapes(a.shape, b.shape)
    return run_op(op, [a, b], [(shape, ydt)], p, threads=threads)[0]


SHAPES = [
    ((1, 7, 5, 3), (1, 7, 5, 3)),        # same shape
    ((2, 9, 5), (1,)),                   # scalar B
    ((1,), (3, 4, 7)),                   # scalar A (onnxruntime swaps the operands)
    ((2, 5, 6, 7), (7,)),                # per-last-axis B
    ((3, 1, 7), (3, 5, 1)),              # both broadcast, B scalar along the run
    ((3, 5, 1), (3, 1, 7)),              # both broadcast, A scalar along the run
    ((2, 4, 1, 3), (2, 1, 5, 3)),        # middle broadcast, both vary along the run
    ((2, 1, 3, 1, 2, 5), (1, 4, 3, 2, 1, 5)),  # rank 6
    ((1, 1), (1,)),                      # one element
    ((4, 33), ()),                       # rank-0 B
    # B one run of channels repeated over every pixel (squeeze-and-excitation): one buffer of
    # repeated runs and many runs a kernel call, periods from 13 to 1000 bytes; 1100 is past
    # the buffer's periods (runs one at a time)
    ((1, 56, 56, 16), (1, 1, 1, 16)),
    ((2, 9, 11, 13), (1, 1, 13)),
    ((1, 3, 5, 1000), (1000,)),
    ((1, 2, 3, 1100), (1, 1, 1, 1100)),
]


@pytest.mark.parametrize("op", ["qadd", "qmul"])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shapes", SHAPES, ids=[f"{a}x{b}" for a, b in SHAPES])
def test_broadcast_matches_onnxruntime(op, dt, shapes):
    rng = np.random.default_rng(abs(hash((op, str(dt), shapes))) % 2**32)
    for _ in range(3):
        a, b = rand_q(rng, shapes[0], dt), rand_q(rng, shapes[1], dt)
        p = params(rng, dt)
        got = edgert(op, a, b, p, dt)
        want = ort_binary("QLinearAdd" if op == "qadd" else "QLinearMul", a, b, p)
        np.testing.assert_array_equal(got, want)
        if op == "qadd":
            a_scalar = shapes[0] in [(1,), (3, 5, 1)]
            np.testing.assert_array_equal(got, numpy_add(a, b, p, dt, a_scalar))
        else:
            np.testing.assert_array_equal(got, numpy_mul(a, b, p, dt))
        assert np.abs(got.astype(int) - float_ref(op, a, b, p, dt)).max() <= 1


def grid(dt):
    lo, hi = qrange(dt)
    return np.arange(lo, hi + 1).astype(dt)


# All 65536 operand pairs, in each of the three broadcast patterns onnxruntime distinguishes.
PATTERNS = {"both": lambda g: (np.repeat(g, 256), np.tile(g, 256)),
            "b_scalar": lambda g: (g.reshape(1, 256), g.reshape(256, 1)),
            "a_scalar": lambda g: (g.reshape(256, 1), g.reshape(1, 256))}


@pytest.mark.parametrize("op", ["qadd", "qmul"])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_all_operand_pairs(op, dt, pattern):
    rng = np.random.default_rng(7 + DTYPES.index(dt) + 3 * list(PATTERNS).index(pattern))
    lo, hi = qrange(dt)
    a, b = PATTERNS[pattern](grid(dt))
    zsets = [None, [lo, hi, lo], [hi, lo, hi], [0, 0, 0]]
    for zs in zsets * 3:
        p = params(rng, dt, zs)
        got = edgert(op, a, b, p, dt)
        want = ort_binary("QLinearAdd" if op == "qadd" else "QLinearMul", a, b, p)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["qadd", "qmul"])
def test_qmin_qmax_clamp(op):
    rng = np.random.default_rng(3)
    dt = np.uint8
    a, b = PATTERNS["both"](grid(dt))
    p = params(rng, dt)
    full = ort_binary("QLinearAdd" if op == "qadd" else "QLinearMul", a, b, p)
    p.update(qmin=max(p["y_zp"], 10), qmax=200)  # a folded Relu plus an upper clip
    got = edgert(op, a, b, p, dt)
    np.testing.assert_array_equal(got, np.clip(full, p["qmin"], p["qmax"]))


@pytest.mark.parametrize("op", ["qadd", "qmul"])
def test_mixed_signedness(op):
    rng = np.random.default_rng(11)
    a = rand_q(rng, (3, 50), np.uint8)
    b = rand_q(rng, (3, 50), np.int8)
    p = {"a_scale": 0.05, "a_zp": 128, "b_scale": 0.03, "b_zp": -5, "y_scale": 0.07, "y_zp": 3}
    got = edgert(op, a, b, p, np.int8)
    want = numpy_add(a, b, p, np.int8) if op == "qadd" else numpy_mul(a, b, p, np.int8)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["qadd", "qmul"])
def test_repeated_channel_run_at_two_threads(op):
    rng = np.random.default_rng(6)
    a, b = rand_q(rng, (1, 57, 55, 24), np.int8), rand_q(rng, (1, 1, 1, 24), np.int8)
    p = params(rng, np.int8)
    want = numpy_add(a, b, p, np.int8) if op == "qadd" else numpy_mul(a, b, p, np.int8)
    for threads in (1, 2):
        np.testing.assert_array_equal(edgert(op, a, b, p, np.int8, threads=threads), want)


@pytest.mark.parametrize("op", ["qadd", "qmul"])
def test_threads_do_not_change_results(op):
    rng = np.random.default_rng(5)
    a, b = rand_q(rng, (2, 37, 41, 65), np.uint8), rand_q(rng, (2, 1, 41, 65), np.uint8)
    p = params(rng, np.uint8)
    one = edgert(op, a, b, p, np.uint8, threads=1)
    np.testing.assert_array_equal(edgert(op, a, b, p, np.uint8, threads=2), one)
    np.testing.assert_array_equal(one, ort_binary("QLinearAdd" if op == "qadd" else "QLinearMul",
                                                  a, b, p))


@pytest.mark.parametrize("bad", [
    {"y_shape": (3, 4)},                 # wrong output shape
    {"b_shape": (3,)},                   # does not broadcast with (2, 4)
    {"a_zp": 300},                       # zero point outside u8
    {"y_scale": 0.0},                    # scale must be positive
    {"y_scale": float("nan")},
    {"qmin": 10, "qmax": 5},             # empty clamp
    {"a_shape": (1, 1, 1, 1, 1, 1, 2, 4)},  # rank > 6
])
def test_bad_specs_raise_model_error(bad):
    bad = dict(bad)
    a = np.zeros(bad.pop("a_shape", (2, 4)), np.uint8)
    b = np.zeros(bad.pop("b_shape", (4,)), np.uint8)
    yshape = bad.pop("y_shape", np.broadcast_shapes(a.shape, (4,)))
    p = {"a_scale": 0.1, "a_zp": 0, "b_scale": 0.1, "b_zp": 0, "y_scale": 0.1, "y_zp": 0}
    p.update(bad)
    with pytest.raises(_core.ModelError):
        run_op("qadd", [a, b], [(yshape, np.uint8)], p)
