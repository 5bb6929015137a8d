"""fp32 binary, unary, channel_affine and softmax against onnxruntime and numpy."""
import numpy as np
import pytest

from edgert import _core
from f32_ort import ort_node, rand, run_both
from oplib import run_op

BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
          "pow": "Pow"}
SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),      # same shape
    ((2, 3, 4, 5), ()),                # scalar B
    ((), (3, 7)),                      # scalar A
    ((2, 3, 4, 5), (5,)),              # per-channel, last axis
    ((5,), (2, 3, 4, 5)),              # per-channel on A
    ((2, 1, 4, 1), (1, 3, 1, 5)),      # both broadcast
    ((2, 3, 1, 5, 1, 3), (3, 2, 1, 1, 3)),  # rank 6
    ((7, 1), (1, 9)),
    ((4, 3, 1), (3, 6)),
]


def binary_inputs(kind, sa, sb):
    if kind == "pow":
        return rand(*sa, lo=0.1, hi=2.0), rand(*sb, lo=-2.0, hi=2.0)
    if kind == "div":
        b = rand(*sb, lo=0.5, hi=2.0) * np.where(rand(*sb) < 0, -1, 1).astype(np.float32)
        return rand(*sa), np.asarray(b, dtype=np.float32)
    return rand(*sa), rand(*sb)


@pytest.mark.parametrize("kind", list(BINARY))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_vs_onnxruntime(kind, sa, sb):
    a, b = binary_inputs(kind, sa, sb)
    ref = ort_node(BINARY[kind], {"a": a, "b": b})[0]
    y = run_both("binary", [a, b], ref.shape, {"kind": kind})
    np.testing.assert_allclose(y, ref, rtol=1e-6 if kind == "pow" else 0, atol=1e-7)


def test_binary_matches_numpy_exactly_and_clamps():
    a, b = rand(3, 1, 6), rand(4, 1)
    y = run_both("binary", [a, b], (3, 4, 6), {"kind": "mul", "act_min": -0.1, "act_max": 0.2})
    assert np.array_equal(y, np.clip(a * b, np.float32(-0.1), np.float32(0.2)))
    y = run_both("binary", [a, b], (3, 4, 6), {"kind": "sub"})
    assert np.array_equal(y, a - b)


def test_binary_large_same_shape_threads():
    a, b = rand(3, 70001), rand(3, 70001)  # several parallel chunks
    assert np.array_equal(run_both("binary", [a, b], a.shape, {"kind": "add"}), a + b)


UNARY = [  # (kind, attrs, onnx op, onnx attrs, extra onnx inputs, input range, opset)
    ("relu", {}, "Relu", {}, {}, (-2, 2), 17),
    ("clip", {"min": -0.5, "max": 0.25}, "Clip", {},
     {"lo": np.array(-0.5, np.float32), "hi": np.array(0.25, np.float32)}, (-2, 2), 17),
    ("leaky_relu", {"alpha": 0.3}, "LeakyRelu", {"alpha": 0.3}, {}, (-2, 2), 17),
    ("sigmoid", {}, "Sigmoid", {}, {}, (-12, 12), 17),
    ("tanh", {}, "Tanh", {}, {}, (-5, 5), 17),
    ("hard_sigmoid", {"alpha": 0.3, "beta": 0.4}, "HardSigmoid", {"alpha": 0.3, "beta": 0.4},
     {}, (-5, 5), 17),
    ("hard_swish", {}, "HardSwish", {}, {}, (-5, 5), 17),
    ("exp", {}, "Exp", {}, {}, (-10, 10), 17),
    ("log", {}, "Log", {}, {}, (1e-3, 50), 17),
    ("sqrt", {}, "Sqrt", {}, {}, (0, 50), 17),
    ("neg", {}, "Neg", {}, {}, (-2, 2), 17),
    ("abs", {}, "Abs", {}, {}, (-2, 2), 17),
    ("erf", {}, "Erf", {}, {}, (-3, 3), 17),
    ("gelu", {}, "Gelu", {}, {}, (-5, 5), 20),
    ("gelu", {"approximate": "tanh"}, "Gelu", {"approximate": "tanh"}, {}, (-5, 5), 20),
]


@pytest.mark.parametrize("case", UNARY, ids=lambda c: c[0] + str(c[1].get("approximate", "")))
def test_unary_vs_onnxruntime(case):
    kind, attrs, op, oattrs, extra, (lo, hi), opset = case
    x = rand(3, 5, 1031, lo=lo, hi=hi)
    ref = ort_node(op, {"x": x}, oattrs, extra, opset=opset)[0]
    y = run_both("unary", [x], x.shape, dict(kind=kind, **attrs))
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-6)


def test_unary_numpy_formulas():
    x = rand(4097, lo=-6, hi=6)
    y = run_both("unary", [x], x.shape, {"kind": "hard_swish"})
    np.testing.assert_allclose(y, x * np.clip(x / 6 + 0.5, 0, 1), rtol=1e-6, atol=1e-7)
    y = run_both("unary", [x], x.shape, {"kind": "sigmoid"})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6, atol=0)
    y = run_both("unary", [x], x.shape, {"kind": "clip", "min": 0.0})
    assert np.array_equal(y, np.maximum(x, 0))


@pytest.mark.parametrize("shape,axis", [((2, 5, 7, 9), 3), ((2, 5, 7, 9), 1), ((3, 6), 1),
                                        ((2, 3, 600), 1)])
def test_channel_affine_vs_batchnorm(shape, axis):
    c = shape[axis]
    x = rand(*shape, lo=-3, hi=3)
    gamma, beta, mean = rand(c), rand(c), rand(c)
    var = rand(c, lo=0.1, hi=2.0)
    eps = 1e-5
    # BatchNormalization's channel axis is 1: move `axis` there for the reference.
    x_ref = np.moveaxis(x, axis, 1)
    ref = ort_node("BatchNormalization", {"x": np.ascontiguousarray(x_ref)}, {"epsilon": eps},
                   {"s": gamma, "b": beta, "m": mean, "v": var})[0]
    ref = np.moveaxis(ref, 1, axis)
    scale = (gamma / np.sqrt(var + np.float32(eps))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    y = run_both("channel_affine", [x], x.shape, {"axis": axis, "scale": scale, "shift": shift})
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    bshape = [1] * len(shape)
    bshape[axis] = c
    assert np.array_equal(y, x * scale.reshape(bshape) + shift.reshape(bshape))


@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((3, 5, 7), 0), ((3, 5, 7), 1),
                                        ((3, 5, 7), 2), ((2, 3, 300, 2), 2), ((1, 1000), 1),
                                        ((2, 3, 17, 300), 1)])
@pytest.mark.parametrize("log", [0, 1])
def test_softmax_vs_onnxruntime(shape, axis, log):
    x = rand(*shape, lo=-20, hi=20)
    ref = ort_node("LogSoftmax" if log else "Softmax", {"x": x}, {"axis": axis}, opset=13)[0]
    y = run_both("softmax", [x], x.shape, {"axis": axis, "log": log})
    n = shape[axis]
    np.testing.assert_allclose(y, ref, rtol=1e-4 if n > 100 else 1e-5, atol=1e-6)


def test_softmax_numpy_and_stability():
    x = rand(5, 9, lo=-1, hi=1) + np.float32(1e4)  # exp(x) alone would overflow
    y = run_both("softmax", [x], x.shape, {"axis": 1})
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert np.isfinite(y).all()


def test_elementwise_bad_specs_raise_model_error():
    def bad(op, inputs, out_shape, attrs):
        with pytest.raises(_core.ModelError):
            run_op(op, inputs, [(out_shape, np.float32)], attrs)
    bad("binary", [rand(2, 3), rand(4, 3)], (4, 3), {"kind": "add"})
    bad("binary", [rand(2, 3), rand(3)], (2, 3), {"kind": "mod"})
    bad("binary", [rand(2, 3), rand(3)], (2, 4), {"kind": "add"})
    bad("binary", [rand(2, 3), rand(3)], (2, 3), {"kind": "add", "act_min": 1.0, "act_max": -1.0})
    bad("binary", [rand(1, 1, 1, 1, 1, 1, 2), rand(2)], (1, 1, 1, 1, 1, 1, 2), {"kind": "add"})
    bad("unary", [rand(4)], (4,), {"kind": "softsign"})
    bad("unary", [rand(4)], (5,), {"kind": "relu"})
    bad("unary", [rand(4)], (4,), {"kind": "clip", "min": 1.0, "max": 0.0})
    bad("softmax", [rand(2, 3)], (2, 3), {"axis": 2})
    bad("channel_affine", [rand(2, 3)], (2, 3), {"axis": 1, "scale": rand(2), "shift": rand(3)})
    bad("channel_affine", [rand(2, 3)], (2, 3), {"axis": 1, "scale": rand(3),
                                                 "shift": np.zeros(3, np.int32)})
