"""qavgpool against onnxruntime's QLinearAveragePool / QLinearGlobalAveragePool, maxpool against
MaxPool (u8, i8, f32), all bit-exact, plus numpy oracles. edgert pools NHWC; onnxruntime NCHW."""
import numpy as np
import pytest

from edgert import _core
from oplib import run_op
from qmisc_ort import F32, nchw_to_nhwc, nhwc_to_nchw, ort_node, qrange, rand_q


def ort_qavgpool(x_nchw, p, kernel=None, strides=(1, 1), pads=(0, 0, 0, 0), cip=0, ceil=0,
                 global_op=False, optimize=True):
    dt = x_nchw.dtype
    consts = [("xs", p["x_scale"], F32), ("xz", p["x_zp"], dt), ("ys", p["y_scale"], F32),
              ("yz", p["y_zp"], dt)]
    if global_op:
        return ort_node("QLinearGlobalAveragePool", [("X", x_nchw)], consts,
                        domain="com.microsoft", attrs={"channels_last": 0}, optimize=optimize)
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads),
             "count_include_pad": cip}
    if ceil:
        attrs["ceil_mode"] = 1
    return ort_node("QLinearAveragePool", [("X", x_nchw)], consts, domain="com.microsoft",
                    attrs=attrs, optimize=optimize)


def numpy_avgpool(x, p, kernel, strides, pads, cip, oh, ow):
    """The windowed formula: fp32 dequantize, fp32 sums in window order, fp32 divide, quantize."""
    N, H, W, C = x.shape
    dq = F32(p["x_scale"]) * (x.astype(np.int32) - p["x_zp"]).astype(F32)
    y = np.zeros((N, oh, ow, C), x.dtype)
    for i in range(oh):
        h0 = i * strides[0] - pads[0]
        hs = range(max(h0, 0), min(h0 + kernel[0], H))
        for j in range(ow):
            w0 = j * strides[1] - pads[1]
            ws = range(max(w0, 0), min(w0 + kernel[1], W))
            acc = np.zeros((N, C), F32)
            for h in hs:
                for w in ws:
                    acc = acc + dq[:, h, w, :]
            div = F32(kernel[0] * kernel[1] if cip else len(hs) * len(ws))
            v = acc / div / F32(p["y_scale"]) + F32(p["y_zp"])
            y[:, i, j, :] = np.clip(np.rint(v.astype(np.float64)), *qrange(x.dtype))
    return y


def numpy_global(x, p):
    N, H, W, C = x.shape
    acc = x.astype(np.int64).sum(axis=(1, 2)) - p["x_zp"] * H * W
    scale = F32(p["x_scale"]) / (F32(p["y_scale"]) * F32(H * W))
    lo, hi = qrange(x.dtype)
    v = np.clip(acc.astype(F32) * scale, F32(lo - p["y_zp"]), F32(hi - p["y_zp"]))
    return (np.rint(v.astype(np.float64)) + p["y_zp"]).astype(x.dtype).reshape(N, 1, 1, C)


def qparams(rng, dt, extreme=False):
    lo, hi = qrange(dt)
    zx, zy = (lo, hi) if extreme else (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
    return {"x_scale": float(F32(np.exp(rng.uniform(-5, 0)))), "x_zp": zx,
            "y_scale": float(F32(np.exp(rng.uniform(-5, 0)))), "y_zp": zy}


def edgert_avgpool(x_nhwc, p, kernel, strides, pads, cip, oh, ow, threads=1, **extra):
    attrs = dict(p, kernel=list(kernel), strides=list(strides), pads=list(pads),
                 count_include_pad=cip, **extra)
    N, _, _, C = x_nhwc.shape
    return run_op("qavgpool", [x_nhwc], [((N, oh, ow, C), x_nhwc.dtype)], attrs,
                  threads=threads)[0]


WINDOWS = [  # kernel, strides, pads [t, l, b, r], count_include_pad, ceil_mode
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, 0),
    ((3, 3), (1, 1), (1, 1, 1, 1), 1, 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, 0),
    ((3, 2), (2, 1), (1, 0, 1, 1), 0, 0),
    ((5, 5), (3, 3), (2, 2, 2, 2), 1, 0),
    ((3, 3), (2, 2), (0, 0, 0, 0), 0, 1),   # ceil_mode: last windows clipped at the edge
    ((2, 3), (2, 2), (1, 1, 1, 1), 1, 1),
]


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("win", WINDOWS, ids=[str(w) for w in WINDOWS])
def test_avgpool_matches_onnxruntime(dt, win):
    kernel, strides, pads, cip, ceil = win
    rng = np.random.default_rng(abs(hash((str(dt), win))) % 2**32)
    for trial in range(3):
        shape = (int(rng.integers(1, 3)), int(rng.choice([1, 3, 7, 19])),
                 int(rng.integers(6, 14)), int(rng.integers(5, 13)))
        x = rand_q(rng, shape, dt)
        p = qparams(rng, dt, extreme=trial == 0)
        want = nchw_to_nhwc(ort_qavgpool(x, p, kernel, strides, pads, cip, ceil))
        _, oh, ow, _ = want.shape
        got = edgert_avgpool(nchw_to_nhwc(x), p, kernel, strides, pads, cip, oh, ow)
        np.testing.assert_array_equal(got, want)
        if not ceil:  # the oracle's windows follow onnxruntime's (no clipping past the end)
            np.testing.assert_array_equal(
                got, numpy_avgpool(nchw_to_nhwc(x), p, kernel, strides, pads, cip, oh, ow))


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("optimize", [True, False])
def test_global_avgpool_matches_onnxruntime(dt, optimize):
    rng = np.random.default_rng(17 + int(optimize))
    for trial, shape in enumerate([(1, 13, 7, 7), (2, 1, 5, 3), (1, 67, 14, 14), (3, 5, 1, 1)]):
        x = rand_q(rng, shape, dt)
        p = qparams(rng, dt, extreme=trial == 1)
        want = nchw_to_nhwc(ort_qavgpool(x, p, global_op=True, optimize=optimize))
        got = edgert_avgpool(nchw_to_nhwc(x), p, shape[2:], (1, 1), (0, 0, 0, 0), 0, 1, 1)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, numpy_global(nchw_to_nhwc(x), p))
        # An AveragePool whose window is the whole unpadded image is a global pool too.
        want2 = nchw_to_nhwc(ort_qavgpool(x, p, kernel=shape[2:], optimize=optimize))
        np.testing.assert_array_equal(got, want2)


def test_avgpool_qmin_qmax_and_threads():
    rng = np.random.default_rng(23)
    x = rand_q(rng, (2, 9, 17, 19), np.uint8)
    p = qparams(rng, np.uint8)
    full = nchw_to_nhwc(ort_qavgpool(x, p, (3, 3), (1, 1), (1, 1, 1, 1), 0))
    xh = nchw_to_nhwc(x)
    got = edgert_avgpool(xh, p, (3, 3), (1, 1), (1, 1, 1, 1), 0, 17, 19, threads=2,
                         qmin=40, qmax=180)
    np.testing.assert_array_equal(got, np.clip(full, 40, 180))
    g1 = edgert_avgpool(xh, p, (17, 19), (1, 1), (0, 0, 0, 0), 0, 1, 1, threads=1)
    g2 = edgert_avgpool(xh, p, (17, 19), (1, 1), (0, 0, 0, 0), 0, 1, 1, threads=2)
    np.testing.assert_array_equal(g1, g2)


def ort_maxpool(x_nchw, kernel, strides, pads, dilations, ceil):
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads),
             "dilations": list(dilations), "ceil_mode": ceil}
    return ort_node("MaxPool", [("X", x_nchw)], [], attrs=attrs, opset=13)


def numpy_maxpool(x, kernel, strides, pads, dil, oh, ow):
    N, H, W, C = x.shape
    y = np.empty((N, oh, ow, C), x.dtype)
    for i in range(oh):
        for j in range(ow):
            hs = [i * strides[0] - pads[0] + k * dil[0] for k in range(kernel[0])]
            ws = [j * strides[1] - pads[1] + k * dil[1] for k in range(kernel[1])]
            hs = [h for h in hs if 0 <= h < H]
            ws = [w for w in ws if 0 <= w < W]
            y[:, i, j, :] = x[:, hs][:, :, ws].max(axis=(1, 2))
    return y


MAXWINDOWS = [  # kernel, strides, pads, dilations, ceil_mode
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    ((3, 2), (1, 2), (1, 0, 1, 1), (2, 1), 0),
    ((2, 2), (1, 1), (1, 1, 1, 1), (2, 3), 1),
]


@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("win", MAXWINDOWS, ids=[str(w) for w in MAXWINDOWS])
@pytest.mark.parametrize("channels", [7, 40])  # 40: SIMD vectors plus an overlapping last one
def test_maxpool_matches_onnxruntime(dt, win, channels):
    kernel, strides, pads, dil, ceil = win
    rng = np.random.default_rng(abs(hash((str(dt), win, channels))) % 2**32)
    shape = (2, channels, 11, 10)
    x = (rng.standard_normal(shape).astype(F32) if dt == np.float32 else rand_q(rng, shape, dt))
    want = nchw_to_nhwc(ort_maxpool(x, kernel, strides, pads, dil, ceil))
    N, oh, ow, C = want.shape
    attrs = {"kernel": list(kernel), "strides": list(strides), "pads": list(pads),
             "dilations": list(dil)}
    xh = nchw_to_nhwc(x)
    for threads in (1, 2):
        got = run_op("maxpool", [xh], [((N, oh, ow, C), dt)], attrs, threads=threads)[0]
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, numpy_maxpool(xh, kernel, strides, pads, dil, oh, ow))


@pytest.mark.parametrize("op,bad", [
    ("qavgpool", {"kernel": [3]}),
    ("qavgpool", {"strides": [0, 1]}),
    ("qavgpool", {"pads": [-1, 0, 0, 0]}),
    ("qavgpool", {"x_zp": 256}),
    ("qavgpool", {"y_shape": (1, 4, 4, 5)}),   # channels changed
    ("qavgpool", {"x_shape": (4, 4, 3)}),       # not rank 4
    ("maxpool", {"dilations": [0, 1]}),
    ("maxpool", {"y_dtype": np.int8}),          # dtype changed
])
def test_bad_pool_specs_raise_model_error(op, bad):
    bad = dict(bad)
    x = np.zeros(bad.pop("x_shape", (1, 4, 4, 3)), np.uint8)
    yshape = bad.pop("y_shape", (1, 4, 4, 3))
    ydt = bad.pop("y_dtype", np.uint8)
    attrs = {"kernel": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}
    if op == "qavgpool":
        attrs.update(x_scale=0.1, x_zp=0, y_scale=0.1, y_zp=0)
    attrs.update(bad)
    with pytest.raises(_core.ModelError):
        run_op(op, [x], [(yshape, ydt)], attrs)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_avgpool_many_scales_hit_rounding_boundaries(dt):
    """A window sum takes few distinct values per scale set, so values within an ulp of a
    rounding boundary need many scale sets: any change in the fp32 operation order shows up."""
    rng = np.random.default_rng(29 + (dt == np.int8))
    x = rand_q(rng, (1, 64, 9, 9), dt)
    # Global: channel means spread over the whole range and y_scale near x_scale, so that
    # float(acc) * scale covers [-255, 255] densely.
    lo, hi = qrange(dt)
    base = rng.integers(lo + 3, hi - 2, size=(64, 256, 1, 1))
    g = (base + rng.integers(-3, 4, size=(64, 256, 2, 3))).astype(dt)
    xh, gh = nchw_to_nhwc(x), nchw_to_nhwc(g)
    for _ in range(150):
        p = qparams(rng, dt)
        want = nchw_to_nhwc(ort_qavgpool(x, p, (3, 3), (1, 1), (1, 1, 1, 1), 0))
        got = edgert_avgpool(xh, p, (3, 3), (1, 1), (1, 1, 1, 1), 0, 9, 9)
        np.testing.assert_array_equal(got, want)
        p["y_scale"] = float(F32(p["x_scale"] * rng.uniform(0.5, 2)))
        want = nchw_to_nhwc(ort_qavgpool(g, p, global_op=True))
        got = edgert_avgpool(gh, p, (2, 3), (1, 1), (0, 0, 0, 0), 0, 1, 1)
        np.testing.assert_array_equal(got, want)
