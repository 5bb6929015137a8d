"""fp32 avgpool (AveragePool / GlobalAveragePool) and lrn (LRN) against onnxruntime and numpy."""
import math

import numpy as np
import pytest

from edgert import _core
from f32_ort import nchw_to_nhwc, nhwc_to_nchw, ort_node, rand, run_both
from oplib import run_op


def pool_out(size, k, s, pb, pe, ceil):
    """ONNX output size, with the rule that the last window must start inside input + pad."""
    num = size + pb + pe - k
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + pb:
        out -= 1
    return out


# (N, C, H, W, kernel, strides, pads [t,l,b,r], count_include_pad, ceil_mode)
AVG_CASES = [
    (1, 3, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), 0, 0),
    (1, 3, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), 1, 0),
    (2, 5, 6, 6, (3, 3), (2, 2), (1, 1, 1, 1), 1, 1),   # ceil mode: windows past the pads
    (2, 5, 6, 6, (3, 3), (2, 2), (1, 1, 1, 1), 0, 1),
    (1, 4, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), 1, 1),   # ceil mode, no pads
    (1, 7, 9, 8, (3, 2), (1, 3), (0, 1, 2, 0), 1, 0),   # asymmetric pads
    (1, 7, 9, 8, (3, 2), (1, 3), (2, 0, 1, 1), 0, 1),
    (1, 16, 14, 14, (5, 5), (3, 3), (0, 0, 0, 0), 0, 0),
]


@pytest.mark.parametrize("case", AVG_CASES)
def test_avgpool_vs_onnxruntime(case):
    n, c, h, w, k, s, p, cip, ceil = case
    x = rand(n, c, h, w)
    oh = pool_out(h, k[0], s[0], p[0], p[2], ceil)
    ow = pool_out(w, k[1], s[1], p[1], p[3], ceil)
    ref = ort_node("AveragePool", {"x": x}, dict(kernel_shape=list(k), strides=list(s),
                   pads=list(p), count_include_pad=cip, ceil_mode=ceil), opset=19)[0]
    assert ref.shape == (n, c, oh, ow)
    y = run_both("avgpool", [nchw_to_nhwc(x)], (n, oh, ow, c),
                 {"kernel": list(k), "strides": list(s), "pads": list(p),
                  "count_include_pad": cip})
    np.testing.assert_allclose(nhwc_to_nchw(y), ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(1, 7, 7, 32), (2, 5, 3, 9), (1, 1, 1, 4)])
def test_global_avgpool_vs_onnxruntime(shape):
    x = rand(*shape)
    ref = ort_node("GlobalAveragePool", {"x": nhwc_to_nchw(x)})[0]
    n, h, w, c = shape
    y = run_both("avgpool", [x], (n, 1, 1, c), {"kernel": [h, w]})
    np.testing.assert_allclose(nhwc_to_nchw(y), ref, rtol=1e-5, atol=1e-7)


def test_avgpool_divisor_numpy():
    """count_include_pad divides by the window clipped to input + pads, not by kh*kw."""
    x = np.ones((1, 5, 5, 2), np.float32)  # NHWC
    y = run_both("avgpool", [x], (1, 3, 3, 2), {"kernel": [2, 2], "strides": [2, 2],
                                                 "count_include_pad": 1})
    assert np.array_equal(y, np.ones_like(y))  # ceil-mode edge windows hold 2 or 1 taps
    y = run_both("avgpool", [x], (1, 3, 3, 2), {"kernel": [3, 3], "strides": [2, 2],
                                                 "pads": [1, 1, 1, 1], "count_include_pad": 1})
    want = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], np.float32) / 9
    np.testing.assert_allclose(y[0, :, :, 0], want, rtol=1e-7)


@pytest.mark.parametrize("size", [1, 3, 5])  # onnxruntime rejects even sizes
def test_lrn_vs_onnxruntime_nhwc(size):
    x = rand(2, 11, 5, 6, lo=-3, hi=3)  # NCHW
    attrs = dict(size=size, alpha=2e-3, beta=0.8, bias=1.5)
    ref = ort_node("LRN", {"x": x}, attrs)[0]
    y = run_both("lrn", [nchw_to_nhwc(x)], (2, 5, 6, 11), dict(axis=3, **attrs))
    np.testing.assert_allclose(nhwc_to_nchw(y), ref, rtol=1e-5, atol=1e-6)
    y = run_both("lrn", [x], x.shape, dict(axis=1, **attrs))  # channel axis not last
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_lrn_numpy_formula():
    x = rand(3, 8, lo=-2, hi=2)
    size, alpha, beta, bias = 4, 0.5, 0.75, 2.0
    y = run_both("lrn", [x], x.shape, dict(axis=1, size=size, alpha=alpha, beta=beta, bias=bias))
    x64 = x.astype(np.float64)
    want = np.empty_like(x64)
    for i in range(8):
        lo, hi = max(0, i - (size - 1) // 2), min(8, i + math.ceil((size - 1) / 2) + 1)
        sq = (x64[:, lo:hi] ** 2).sum(axis=1)
        want[:, i] = x64[:, i] / (bias + alpha / size * sq) ** beta
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)


def test_pool_bad_specs_raise_model_error():
    def bad(op, inputs, out_shape, attrs):
        with pytest.raises(_core.ModelError):
            run_op(op, inputs, [(out_shape, np.float32)], attrs)
    x = rand(1, 6, 6, 3)
    bad("avgpool", [x], (1, 5, 5, 3), {"kernel": [3, 3]})               # wrong Y
    bad("avgpool", [x], (1, 2, 2, 3), {"kernel": [3, 3], "strides": [0, 2]})
    bad("avgpool", [x], (1, 2, 2, 3), {"kernel": [7, 7]})
    bad("avgpool", [x], (1, 4, 4, 3), {"kernel": [3, 3], "count_include_pad": 2})
    bad("avgpool", [x], (1, 4, 4, 4), {"kernel": [3, 3]})
    bad("lrn", [x], x.shape, {"axis": 3, "size": 0})
    bad("lrn", [x], x.shape, {"axis": 4, "size": 3})
