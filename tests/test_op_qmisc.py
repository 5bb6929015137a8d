"""qconcat, qlut, qsoftmax, quantize, dequantize against onnxruntime (QLinearConcat,
QLinearSigmoid / QLinearLeakyRelu, QLinearSoftmax, QuantizeLinear, DequantizeLinear) and numpy."""
import numpy as np
import pytest

from edgert import _core
from oplib import run_op
from edgert.tables import mlas_logistic
from qmisc_ort import F32, fmaf, ort_node, qrange, rand_q

DTYPES = [np.uint8, np.int8]


def mlas_quantize(v, scale, zp, dt):
    """onnxruntime's MlasQuantizeLinear: divide, clamp (NaN -> low bound), round half even."""
    lo, hi = qrange(dt)
    q = np.asarray(v, F32) / F32(scale)
    q = np.where(q > F32(lo - zp), q, F32(lo - zp))
    q = np.where(q < F32(hi - zp), q, F32(hi - zp))
    return (np.rint(q.astype(np.float64)) + zp).astype(dt)


def dequantize_codes(xs, xz, dt):
    codes = np.arange(256, dtype=np.uint8).view(dt)
    return codes, F32(xs) * (codes.astype(np.int32) - xz).astype(F32)


def rand_scale(rng, lo=-6, hi=0):
    return float(F32(np.exp(rng.uniform(lo, hi))))


# ---------------------------------------------------------------- qconcat

def ort_qconcat(xs, params, y_scale, y_zp, axis):
    dt = xs[0].dtype
    inputs = [(f"X{i}", x) for i, x in enumerate(xs)]
    consts = [("ys", y_scale, F32), ("yz", y_zp, dt)]
    order = ["ys", "yz"]
    for i, (s, z) in enumerate(params):
        consts += [(f"s{i}", s, F32), (f"z{i}", z, dt)]
        order += [f"X{i}", f"s{i}", f"z{i}"]
    return ort_node("QLinearConcat", inputs, consts, domain="com.microsoft",
                    attrs={"axis": axis, "_order": order})


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_qconcat_matches_onnxruntime(dt, axis):
    rng = np.random.default_rng(41 + axis + 10 * DTYPES.index(dt))
    lo, hi = qrange(dt)
    for trial in range(4):
        base = [2, 5, 3]
        xs = []
        for k in (3, 1, 4):
            shape = list(base)
            shape[axis] = k
            xs.append(rand_q(rng, shape, dt))
        ys, yz = rand_scale(rng), int(rng.integers(lo, hi + 1))
        params = [(rand_scale(rng), int(rng.integers(lo, hi + 1))) for _ in xs]
        params[1] = (ys, yz)  # one input already in Y's quantization: copied
        if trial == 1:
            params[0] = (params[0][0], lo)
            params[2] = (params[2][0], hi)
        want = ort_qconcat(xs, params, ys, yz, axis)
        got = run_op("qconcat", xs, [(want.shape, dt)],
                     {"axis": axis, "y_scale": ys, "y_zp": yz,
                      "in_scales": [s for s, _ in params], "in_zps": [z for _, z in params]})[0]
        np.testing.assert_array_equal(got, want)
        parts = []
        for x, (s, z) in zip(xs, params):
            parts.append(mlas_quantize(F32(s) * (x.astype(np.int32) - z).astype(F32), ys, yz, dt))
        np.testing.assert_array_equal(got, np.concatenate(parts, axis=axis))


def test_qconcat_every_code_many_scales():
    """Every input code through the requantization table, for many scale pairs."""
    rng = np.random.default_rng(43)
    for dt in DTYPES:
        lo, hi = qrange(dt)
        codes = np.arange(lo, hi + 1).astype(dt).reshape(1, 256)
        for _ in range(60):
            ys, yz = rand_scale(rng), int(rng.integers(lo, hi + 1))
            params = [(rand_scale(rng), int(rng.integers(lo, hi + 1))) for _ in range(2)]
            xs = [codes, codes[:, ::-1].copy()]
            want = ort_qconcat(xs, params, ys, yz, 1)
            got = run_op("qconcat", xs, [((1, 512), dt)],
                         {"axis": 1, "y_scale": ys, "y_zp": yz,
                          "in_scales": [s for s, _ in params],
                          "in_zps": [z for _, z in params]})[0]
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- qlut

def lut_table(fn, xs, xz, ys, yz, dt):
    """onnxruntime's lookup-table construction: dequantize each of the 256 codes in fp32, apply
    the function, quantize with MlasQuantizeLinear. Indexed by the code's byte."""
    _, v = dequantize_codes(xs, xz, dt)
    return mlas_quantize(fn(v), ys, yz, dt)


def leaky(alpha):
    return lambda v: np.where(v >= 0, v, F32(alpha) * v).astype(F32)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["sigmoid", "leaky_relu"])
def test_qlut_matches_onnxruntime(dt, kind):
    rng = np.random.default_rng(47 + DTYPES.index(dt) + 2 * (kind == "sigmoid"))
    lo, hi = qrange(dt)
    x = np.arange(lo, hi + 1).astype(dt).reshape(2, 4, 32)  # every code
    for trial in range(40):
        xs, ys = rand_scale(rng, -5, 0), rand_scale(rng, -9, -3)
        xz, yz = (lo, hi) if trial == 0 else (int(rng.integers(lo, hi + 1)),
                                              int(rng.integers(lo, hi + 1)))
        consts = [("xs", xs, F32), ("xz", xz, dt), ("ys", ys, F32), ("yz", yz, dt)]
        if kind == "sigmoid":
            fn, attrs, op = mlas_logistic, {}, "QLinearSigmoid"
        else:
            alpha = float(rng.uniform(0.01, 0.3))
            fn, attrs, op = leaky(alpha), {"alpha": alpha}, "QLinearLeakyRelu"
        table = lut_table(fn, xs, xz, ys, yz, dt)
        want = ort_node(op, [("X", x)], consts, domain="com.microsoft", attrs=attrs)
        got = run_op("qlut", [x], [(x.shape, dt)], {"table": table})[0]
        np.testing.assert_array_equal(got, want)
        # Second oracle: the table read directly.
        np.testing.assert_array_equal(got, table[x.view(np.uint8)])


def test_qlut_threads_and_table_signedness():
    rng = np.random.default_rng(53)
    x = rand_q(rng, (3, 301, 257), np.int8)
    table = rand_q(rng, (256,), np.uint8)
    one = run_op("qlut", [x], [(x.shape, np.int8)], {"table": table})[0]
    two = run_op("qlut", [x], [(x.shape, np.int8)], {"table": table.view(np.int8)}, threads=2)[0]
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one.view(np.uint8), table[x.view(np.uint8)])


# ---------------------------------------------------------------- qsoftmax

def ort_qsoftmax(x, p, axis):
    dt = x.dtype
    consts = [("xs", p["x_scale"], F32), ("xz", p["x_zp"], dt), ("ys", p["y_scale"], F32),
              ("yz", p["y_zp"], dt)]
    return ort_node("QLinearSoftmax", [("X", x)], consts, domain="com.microsoft",
                    attrs={"axis": axis, "opset": 13})


def numpy_qsoftmax(x, p, axis):
    """onnxruntime's formula (fp32 exp table, fp32 row sums in order); returns the value before
    saturation (inf where E * y_mult overflows)."""
    d = x.shape[axis]
    limit = np.float32(np.finfo(F32).max) / F32(d)
    log_limit = float(F32(np.log(np.float64(limit))))  # logf (correctly rounded), as onnxruntime
    shift = max(0.0, log_limit - 5.0) / float(F32(p["x_scale"]))
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift)
                   * float(F32(p["x_scale"]))).astype(F32)
    xm = np.moveaxis(x.astype(np.int32), axis, -1)
    e = table[255 - (xm.max(axis=-1, keepdims=True) - xm)]
    s = np.zeros(e.shape[:-1], F32)
    for k in range(d):
        s = s + e[..., k]
    ymult = np.floor(F32(1) / F32(p["y_scale"]))
    with np.errstate(over="ignore"):  # the overflow is the point (see the docstring)
        v = (e * ymult) / s[..., None]
    raw = np.rint(v.astype(np.float64)) + p["y_zp"]
    return np.moveaxis(raw, -1, axis)


SOFTMAX_CASES = [  # shape, axis
    ((4, 10), -1), ((3, 7, 13), -1), ((2, 5, 9), 1), ((2, 3, 4, 6), 0), ((1, 1000), 1),
    ((5, 1), -1),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=[str(c) for c in SOFTMAX_CASES])
def test_qsoftmax_matches_onnxruntime(dt, case):
    shape, axis = case
    d = shape[axis]
    rng = np.random.default_rng(abs(hash((str(dt), case))) % 2**32)
    lo, hi = qrange(dt)
    for trial in range(6):
        x = rand_q(rng, shape, dt)
        p = {"x_scale": rand_scale(rng, -4, 0), "x_zp": int(rng.integers(lo, hi + 1)),
             "y_scale": 1 / 256, "y_zp": lo}  # the usual output quantization of a softmax
        if trial % 2 == 0:
            # Keep floor(1/y_scale) * E[255] finite: E[255] is about FLT_MAX / (d * e^5), and
            # onnxruntime turns an overflowing product into y_zp (see test below).
            p.update(y_scale=float(F32(np.exp(rng.uniform(-np.log(140 * d), -1)))),
                     y_zp=int(rng.integers(lo, hi + 1)))
        got = run_op("qsoftmax", [x], [(shape, dt)], dict(p, axis=axis))[0]
        raw = numpy_qsoftmax(x, p, axis)
        np.testing.assert_array_equal(got, np.clip(raw, lo, hi).astype(dt))
        if d == 1 and p["y_scale"] == 1 / 256:
            continue  # the overflow case, tested below
        np.testing.assert_array_equal(got, ort_qsoftmax(x, p, axis))


def test_qsoftmax_overflow_diverges_from_onnxruntime():
    """With d = 1 (or floor(1/y_scale) > ~148 * d) onnxruntime's E * y_mult overflows to inf
    and its float -> integer conversion of inf yields y_zp: the row's largest element gets
    probability 0. edgert saturates to qmax instead; every other element agrees."""
    x = np.array([[3], [200], [0]], np.uint8)
    p = {"x_scale": 0.1, "x_zp": 0, "y_scale": 1 / 256, "y_zp": 0}
    got = run_op("qsoftmax", [x], [(x.shape, np.uint8)], dict(p, axis=-1))[0]
    np.testing.assert_array_equal(got, [[255], [255], [255]])
    np.testing.assert_array_equal(ort_qsoftmax(x, p, -1), [[0], [0], [0]])


@pytest.mark.parametrize("d", [3, 8])
def test_qsoftmax_many_scales(d):
    """Short rows and large y_mult make quotients up to ~255; with millions of them some lie
    within an ulp of a rounding boundary, so any change in the fp32 operation order or in the
    exp table (onnxruntime takes a double log / exp) shows up."""
    rng = np.random.default_rng(59 + d)
    for dt in DTYPES:
        lo, hi = qrange(dt)
        x = rand_q(rng, (8192, d), dt)
        for _ in range(15):
            p = {"x_scale": rand_scale(rng, -5, 0), "x_zp": 0,
                 "y_scale": float(F32(np.exp(rng.uniform(-np.log(140 * d), -np.log(64))))),
                 "y_zp": lo}
            got = run_op("qsoftmax", [x], [(x.shape, dt)], dict(p, axis=-1))[0]
            np.testing.assert_array_equal(got, ort_qsoftmax(x, p, -1))


# ---------------------------------------------------------------- quantize / dequantize

def quant_inputs(rng, shape, scale):
    x = rng.standard_normal(shape).astype(F32) * F32(100 * np.max(scale))
    flat = x.reshape(-1)
    flat[::7] = (np.round(flat[::7] / F32(np.max(scale))) + F32(0.5)) * F32(np.max(scale))  # ties
    flat[1:8] = [0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, 3.0]
    return x


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [None, 1, -1])
def test_quantize_matches_onnxruntime(dt, axis):
    rng = np.random.default_rng(61 + DTYPES.index(dt) + 2 * (axis or 0))
    lo, hi = qrange(dt)
    shape = (2, 5, 3, 7)
    for trial in range(5):
        n = 1 if axis is None else shape[axis]
        scale = np.array([rand_scale(rng, -8, 2) for _ in range(n)], F32)
        if trial == 0:
            scale[:] = F32(0.25)  # exact ties everywhere
        zp = rng.integers(lo, hi + 1, size=n).astype(dt)
        zp[0] = lo if trial % 2 else hi
        x = quant_inputs(rng, shape, scale)
        sh = () if axis is None else (n,)
        attrs = {} if axis is None else {"axis": axis}
        want = ort_node("QuantizeLinear", [("X", x)],
                        [("s", scale.reshape(sh), F32), ("z", zp.reshape(sh), dt)], attrs=attrs)
        got = run_op("quantize", [x], [(shape, dt)],
                     {"scale": scale, "zp": zp.astype(np.int32), "axis": axis or 0})[0]
        np.testing.assert_array_equal(got, want)
        bshape = [1] * 4
        if axis is not None:
            bshape[axis] = n
        q = x / scale.reshape(bshape)
        zb = zp.astype(np.int32).reshape(bshape)
        q = np.clip(q, (lo - zb).astype(F32), (hi - zb).astype(F32))
        np.testing.assert_array_equal(got, (np.rint(q.astype(np.float64)) + zb).astype(dt))


def test_quantize_nan_gives_low_bound():
    x = np.array([np.nan, 1.0, -np.nan], F32)
    got = run_op("quantize", [x], [((3,), np.uint8)], {"scale": np.array([0.5], F32),
                                                      "zp": np.array([7], np.int32), "axis": 0})[0]
    want = ort_node("QuantizeLinear", [("X", x)], [("s", 0.5, F32), ("z", 7, np.uint8)])
    np.testing.assert_array_equal(got, want)
    assert got[0] == 0 and got[1] == 9


@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.int32])
@pytest.mark.parametrize("axis", [None, 0, 2])
def test_dequantize_matches_onnxruntime(dt, axis):
    rng = np.random.default_rng(67 + axis if axis is not None else 66)
    shape = (3, 4, 5)
    lo, hi = (-2**31, 2**31 - 1) if dt == np.int32 else qrange(dt)
    n = 1 if axis is None else shape[axis]
    x = rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
    if dt == np.int32:
        x.reshape(-1)[:4] = [lo, hi, 0, -1]
    for trial in range(4):
        scale = np.array([rand_scale(rng, -9, 1) for _ in range(n)], F32)
        zlo, zhi = (-1000, 1000) if dt == np.int32 else (lo, hi)
        zp = rng.integers(zlo, zhi + 1, size=n).astype(dt)
        if dt == np.int32:
            zp[:] = 0  # onnxruntime requires a zero zero-point for int32
        sh = () if axis is None else (n,)
        attrs = {} if axis is None else {"axis": axis}
        want = ort_node("DequantizeLinear", [("X", x)],
                        [("s", scale.reshape(sh), F32), ("z", zp.reshape(sh), dt)], attrs=attrs)
        got = run_op("dequantize", [x], [(shape, np.float32)],
                     {"scale": scale, "zp": zp.astype(np.int32), "axis": axis or 0})[0]
        np.testing.assert_array_equal(got, want)
        bshape = [1] * 3
        if axis is not None:
            bshape[axis] = n
        ref = (x.astype(np.int64) - zp.astype(np.int64).reshape(bshape)).astype(F32) \
            * scale.reshape(bshape)
        np.testing.assert_array_equal(got, ref)


def test_dequantize_int32_nonzero_zero_point():
    x = np.array([2**31 - 1, -2**31, 5], np.int32)
    got = run_op("dequantize", [x], [((3,), np.float32)],
                 {"scale": np.array([0.5], F32), "zp": np.array([-7], np.int32), "axis": 0})[0]
    np.testing.assert_array_equal(got, ((x.astype(np.int64) + 7).astype(F32) * F32(0.5)))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("op,ins,outs,attrs", [
    ("qconcat", [np.zeros((2, 3), np.uint8)] * 2, [((2, 5), np.uint8)],
     {"axis": 1, "y_scale": 0.1, "y_zp": 0, "in_scales": [0.1, 0.1], "in_zps": [0, 0]}),
    ("qconcat", [np.zeros((2, 3), np.uint8)] * 2, [((2, 6), np.uint8)],
     {"axis": 1, "y_scale": 0.1, "y_zp": 0, "in_scales": [0.1], "in_zps": [0, 0]}),
    ("qconcat", [np.zeros((2, 3), np.uint8)] * 2, [((2, 6), np.uint8)],
     {"axis": 2, "y_scale": 0.1, "y_zp": 0, "in_scales": [0.1, 0.1], "in_zps": [0, 0]}),
    ("qlut", [np.zeros((4,), np.uint8)], [((4,), np.uint8)], {"table": np.zeros(255, np.uint8)}),
    ("qlut", [np.zeros((4,), np.uint8)], [((4,), np.uint8)], {"table": np.zeros(256, np.int32)}),
    ("qlut", [np.zeros((4,), np.uint8)], [((5,), np.uint8)], {"table": np.zeros(256, np.uint8)}),
    ("qsoftmax", [np.zeros((2, 4), np.int8)], [((2, 4), np.int8)],
     {"axis": 2, "x_scale": 0.1, "x_zp": 0, "y_scale": 1 / 256, "y_zp": -128}),
    ("qsoftmax", [np.zeros((2, 4), np.int8)], [((2, 4), np.int8)],
     {"axis": 1, "x_scale": 0.1, "x_zp": 0, "y_scale": 1 / 256, "y_zp": 128}),
    ("quantize", [np.zeros((2, 4), F32)], [((2, 4), np.uint8)],
     {"scale": np.ones(3, F32), "zp": np.zeros(3, np.int32), "axis": 1}),
    ("quantize", [np.zeros((2, 4), F32)], [((2, 4), np.uint8)],
     {"scale": np.array([-1.0], F32), "zp": np.zeros(1, np.int32), "axis": 0}),
    ("dequantize", [np.zeros((2, 4), np.int8)], [((2, 4), np.float32)],
     {"scale": np.ones(1, F32), "zp": np.array([200], np.int32), "axis": 0}),
])
def test_bad_specs_raise_model_error(op, ins, outs, attrs):
    with pytest.raises(_core.ModelError):
        run_op(op, ins, outs, attrs)
