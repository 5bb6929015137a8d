"""Lookup tables for quantized unary ops, built the way onnxruntime builds them.

A quantized unary op has 256 possible inputs, so it runs as a table: dequantize each code in
fp32, apply the function, quantize with MlasQuantizeLinear (divide by the scale, clamp with NaN
to the low bound, round half to even, add the zero point). Sigmoid uses MLAS's rational
polynomial evaluated with fused multiply-adds, as onnxruntime's FMA3 kernel does, so the tables
equal onnxruntime's bit for bit.
"""
import math

import numpy as np

F32 = np.float32
# MLAS's logistic: p(x)/q(x) + 0.5 with x clamped to ±18 (Eigen's rational approximation).
_LOGISTIC_P = (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
               8.51377133304701e-03, 2.48287947061529e-01)
_LOGISTIC_Q = (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
               1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01)


def fmaf(a, b, c):
    """fp32 fused multiply-add: a*b + c rounded once. The product is exact in fp64; the fp64 sum
    is made round-to-odd (its rounding error folded into the last bit), so that rounding it to
    fp32 gives the correctly rounded result."""
    a, b, c = (np.asarray(v, F32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    bits = np.atleast_1d(s).view(np.int64).reshape(np.shape(s))
    fix = (err != 0) & ((bits & 1) == 0)
    s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(F32)


def mlas_logistic(x):
    x = np.clip(np.asarray(x, F32), F32(-18), F32(18))
    x2 = x * x
    p = fmaf(x2, F32(_LOGISTIC_P[0]), F32(_LOGISTIC_P[1]))
    for c in _LOGISTIC_P[2:]:
        p = fmaf(p, x2, F32(c))
    p = p * x
    q = fmaf(x2, F32(_LOGISTIC_Q[0]), F32(_LOGISTIC_Q[1]))
    for c in _LOGISTIC_Q[2:]:
        q = fmaf(q, x2, F32(c))
    return np.clip(p / q + F32(0.5), F32(0), F32(1))


def _fn(kind, a):
    """The fp32 function of a unary kind on numpy arrays."""
    f = F32
    table = {
        "relu": lambda x: np.maximum(x, f(0)),
        "clip": lambda x: np.minimum(np.maximum(x, f(a.get("min", -np.inf))), f(a.get("max", np.inf))),
        "leaky_relu": lambda x: np.where(x >= 0, x, f(a.get("alpha", 0.01)) * x),
        "sigmoid": mlas_logistic,
        "tanh": np.tanh,
        "hard_sigmoid": lambda x: np.clip(x * f(a.get("alpha", 0.2)) + f(a.get("beta", 0.5)), f(0), f(1)),
        "hard_swish": lambda x: x * np.clip(x / f(6) + f(0.5), f(0), f(1)),
        "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "neg": np.negative, "abs": np.abs,
        "erf": lambda x: np.array([math.erf(v) for v in x], F32),
        "gelu": lambda x: np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x], F32),
    }
    return table[kind]


def mlas_quantize(v, scale, zp, lo, hi):
    """MlasQuantizeLinear on fp32 values into [lo, hi] (qmin/qmax), as int64."""
    q = np.asarray(v, F32) / F32(scale)
    q = np.where(q > F32(lo - zp), q, F32(lo - zp))  # NaN takes the low bound
    q = np.where(q < F32(hi - zp), q, F32(hi - zp))
    return np.rint(q.astype(np.float64)).astype(np.int64) + zp


def build_lut(kind, attrs, xs, xzp, xdt, ys, yzp, ydt, qmin, qmax):
    """256-entry table indexed by the input code's byte."""
    codes = np.arange(256, dtype=np.uint8).view(xdt)
    x = F32(xs) * (codes.astype(np.int32) - xzp).astype(F32)
    with np.errstate(all="ignore"):
        y = _fn(kind, attrs)(x).astype(F32)
    return mlas_quantize(y, ys, yzp, qmin, qmax).astype(ydt)
