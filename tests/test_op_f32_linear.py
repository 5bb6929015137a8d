"""fp32 conv, gemm and matmul against onnxruntime (Conv, Gemm, MatMul) and numpy."""
import numpy as np
import pytest

from edgert import _core
from f32_ort import nchw_to_nhwc, nhwc_to_nchw, ort_node, rand, run_both
from oplib import run_op

# (N, C, H, W, M, kernel, strides, pads [t,l,b,r], dilations, group)
CONV_CASES = [
    (1, 3, 9, 11, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 5, 7, 6, 17, (3, 2), (2, 1), (0, 1, 2, 0), (1, 1), 1),
    (1, 4, 8, 8, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),       # 1x1 reads X in place
    (1, 6, 8, 8, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),       # grouped 1x1 in place
    (1, 7, 9, 9, 5, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),       # strided 1x1 via im2col
    (1, 6, 10, 9, 9, (3, 3), (1, 2), (1, 0, 1, 2), (2, 1), 3),      # grouped, dilated
    (2, 8, 9, 7, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),       # depthwise
    (1, 13, 11, 10, 13, (5, 3), (2, 2), (2, 1, 1, 2), (1, 2), 13),  # depthwise, odd
    (1, 4, 6, 7, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),       # depth multiplier 2
    (1, 32, 7, 7, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),     # K = 288, several panels
    (1, 40, 20, 21, 36, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),   # K = 360, many chunks
    (2, 16, 30, 30, 24, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),   # in-place 1x1, many chunks
]


def conv_ort(x, w, b, strides, pads, dil, group):
    attrs = dict(strides=list(strides), pads=[pads[0], pads[1], pads[2], pads[3]],
                 dilations=list(dil), group=group, kernel_shape=list(w.shape[2:]))
    return ort_node("Conv", {"x": x}, attrs, {"w": w, "b": b})[0]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_vs_onnxruntime(case):
    n, c, h, w_, m, k, s, p, d, g = case
    x = rand(n, c, h, w_)
    w = rand(m, c // g, *k)
    b = rand(m)
    ref = conv_ort(x, w, b, s, p, d, g)
    attrs = {"weight": np.ascontiguousarray(w.transpose(0, 2, 3, 1)), "bias": b,
             "kernel": list(k), "strides": list(s), "pads": list(p), "dilations": list(d),
             "group": g}
    y = run_both("conv", [nchw_to_nhwc(x)], nchw_to_nhwc(ref).shape, attrs)
    np.testing.assert_allclose(nhwc_to_nchw(y), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("group", [1, 8])
def test_conv_fused_clamp_and_no_bias(group):
    x = rand(1, 8, 7, 9)
    w = rand(8, 8 // group, 3, 3)
    ref = conv_ort(x, w, np.zeros(8, np.float32), (1, 1), (1, 1, 1, 1), (1, 1), group)
    attrs = {"weight": np.ascontiguousarray(w.transpose(0, 2, 3, 1)), "kernel": [3, 3],
             "pads": [1, 1, 1, 1], "group": group, "act_min": 0.0, "act_max": 0.5}
    y = run_both("conv", [nchw_to_nhwc(x)], (1, 7, 9, 8), attrs)
    want = np.clip(ref, 0.0, 0.5)
    np.testing.assert_allclose(nhwc_to_nchw(y), want, rtol=1e-4, atol=1e-5)
    assert (y == 0).any() and (y == 0.5).any()  # the clamp was exercised


def test_conv_direct_numpy_formula():
    """Independent of onnxruntime: a strided, padded conv written as explicit sums."""
    x = rand(1, 5, 6, 3)  # NHWC
    w = rand(4, 3, 2, 3)  # [M, KH, KW, C]
    b = rand(4)
    y = run_both("conv", [x], (1, 3, 3, 4),
                 {"weight": w, "bias": b, "kernel": [3, 2], "strides": [2, 2],
                  "pads": [1, 0, 1, 1]})
    xp = np.pad(x, ((0, 0), (1, 1), (0, 1), (0, 0)))
    want = np.zeros((1, 3, 3, 4), np.float64)
    for oy in range(3):
        for ox in range(3):
            win = xp[0, oy * 2:oy * 2 + 3, ox * 2:ox * 2 + 2, :]
            want[0, oy, ox] = np.einsum("hwc,mhwc->m", win, w) + b
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 13, 5), (37, 51, 45), (64, 300, 33),
                                   (130, 17, 129)])
@pytest.mark.parametrize("trans_a,trans_b,alpha,beta", [(0, 0, 1.0, 1.0), (1, 1, 0.5, 2.0),
                                                        (0, 1, 1.0, 0.0)])
def test_gemm_vs_onnxruntime(m, k, n, trans_a, trans_b, alpha, beta):
    a = rand(k, m) if trans_a else rand(m, k)
    bmat = rand(n, k) if trans_b else rand(k, n)
    c = rand(n)
    ref = ort_node("Gemm", {"a": a}, dict(transA=trans_a, transB=trans_b, alpha=alpha, beta=beta),
                   {"b": bmat, "c": c})[0]
    # What the Python side folds: weight [N,K] = alpha * B^T (after transB), bias = beta * C.
    w = (bmat if trans_b else bmat.T) * np.float32(alpha)
    a_in = np.ascontiguousarray(a.T) if trans_a else a
    attrs = {"weight": np.ascontiguousarray(w, np.float32), "bias": (c * np.float32(beta))}
    y = run_both("gemm", [a_in], (m, n), attrs)
    np.testing.assert_allclose(y, ref, rtol=1e-4 if k > 100 else 1e-5, atol=1e-5)


def test_gemm_rank3_flattens_and_clamps():
    a = rand(2, 3, 9)
    w = rand(20, 9)
    y = run_both("gemm", [a], (2, 3, 20), {"weight": w, "act_min": -0.25, "act_max": 0.75})
    want = np.clip(np.einsum("bmk,nk->bmn", a.astype(np.float64), w), -0.25, 0.75)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sa,sb", [
    ((5, 7), (7, 4)), ((2, 3, 5, 7), (7, 4)), ((5, 7), (3, 7, 6)), ((3, 1, 5, 7), (1, 4, 7, 6)),
    ((2, 5, 7), (2, 7, 6)), ((7,), (7, 5)), ((4, 7), (7,)), ((3, 7), (2, 1, 7, 20)),
    ((1, 33, 257), (257, 19)), ((6,), (6,))])
def test_matmul_vs_onnxruntime(sa, sb):
    a, b = rand(*sa), rand(*sb)
    ref = ort_node("MatMul", {"a": a, "b": b})[0]
    y = run_both("matmul", [a, b], ref.shape, {})
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def _expect_model_error(op, inputs, out_shape, attrs):
    with pytest.raises(_core.ModelError):
        run_op(op, inputs, [(out_shape, np.float32)], attrs)


def test_linear_bad_specs_raise_model_error():
    x = rand(1, 5, 5, 4)
    w = rand(6, 3, 3, 4)
    _expect_model_error("conv", [x], (1, 3, 3, 6), {"weight": rand(6, 3, 3, 3), "kernel": [3, 3]})
    _expect_model_error("conv", [x], (1, 3, 3, 6), {"weight": w, "kernel": [3, 3], "group": 3})
    _expect_model_error("conv", [x], (1, 4, 3, 6), {"weight": w, "kernel": [3, 3]})
    _expect_model_error("conv", [x], (1, 3, 3, 6), {"weight": w, "kernel": [3, 3],
                                                    "strides": [0, 1]})
    _expect_model_error("conv", [x], (1, 3, 3, 6), {"weight": w, "kernel": [3, 3],
                                                    "act_min": 1.0, "act_max": 0.0})
    _expect_model_error("conv", [x], (1, 3, 3, 6), {"weight": w, "kernel": [3, 3],
                                                    "bias": rand(5)})
    _expect_model_error("gemm", [rand(3, 4)], (3, 5), {"weight": rand(5, 3)})
    _expect_model_error("gemm", [rand(3, 4)], (3, 6), {"weight": rand(5, 4)})
    with pytest.raises(_core.ModelError):
        run_op("matmul", [rand(2, 3, 4), rand(3, 4, 5)], [((3, 3, 5), np.float32)], {})
    with pytest.raises(_core.ModelError):
        run_op("matmul", [rand(3, 4), rand(5, 6)], [((3, 6), np.float32)], {})
