"""Constant folding at load: nodes whose inputs are all known are computed with numpy.

This is what removes shape subgraphs (Shape -> Gather -> Concat -> Reshape) and dequantizes
weights that no integer op took. Ops listed in FOLDABLE but absent from the lowering rules run
only this way.
"""
import numpy as np

from .errors import ModelError
from .graph import MAX_ELEMENTS, check_elements


def _axes(node, L, idx=1):
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    name = node.input(idx)
    return [int(a) for a in L.const(name).reshape(-1)] if name else None


def _sized(shape):
    """A target shape from a constant, refused before anything is allocated if absurd."""
    shape = [int(v) for v in np.asarray(shape).reshape(-1)]
    check_elements(shape, "folded tensor")
    return shape


def _reshape(x, shape, allowzero=0):
    shape = [int(s) for s in shape]
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _slice(node, L, x):
    starts = L.const(node.input(1)).reshape(-1)
    ends = L.const(node.input(2)).reshape(-1)
    axes = L.const(node.input(3)).reshape(-1) if node.input(3) else range(len(starts))
    steps = L.const(node.input(4)).reshape(-1) if node.input(4) else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)), int(st))
    return x[tuple(index)]


def _quantize(x, scale, zp, axis):
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    info = np.iinfo(zp.dtype)
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32)) + zp.astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def _dequantize(x, scale, zp, axis):
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((x.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)


def _range(a, b, d):
    n = int(max(np.ceil((b - a) / d), 0)) if d != 0 else 0
    if n > MAX_ELEMENTS:
        raise ModelError(f"Range of {n} elements is too large")
    return np.arange(a, b, d)


def _zp(node, L, i, like):
    return L.const(node.input(i)) if node.input(i) else np.zeros((), np.uint8)


EVAL = {
    "Identity": lambda n, L, x: x,
    "Dropout": lambda n, L, x, *r: x,
    "Shape": lambda n, L, x: np.array(x.shape, np.int64)[n.attrs.get("start", 0):n.attrs.get("end")],
    "Size": lambda n, L, x: np.array(x.size, np.int64),
    "Gather": lambda n, L, x, i: np.take(x, i.astype(np.int64), axis=n.attrs.get("axis", 0)),
    "Unsqueeze": lambda n, L, x, *r: np.expand_dims(x, tuple(a % (x.ndim + len(_axes(n, L))) for a in _axes(n, L))),
    "Squeeze": lambda n, L, x, *r: np.squeeze(x, tuple(_axes(n, L))) if _axes(n, L) else np.squeeze(x),
    "Concat": lambda n, L, *xs: np.concatenate(xs, axis=n.attrs["axis"]),
    "Reshape": lambda n, L, x, s: _reshape(x, s, n.attrs.get("allowzero", 0)),
    "Flatten": lambda n, L, x: x.reshape(int(np.prod(x.shape[:n.attrs.get("axis", 1) % max(x.ndim, 1)])), -1)
               if n.attrs.get("axis", 1) != 0 else x.reshape(1, -1),
    "Transpose": lambda n, L, x: np.transpose(x, n.attrs.get("perm")),
    "Cast": lambda n, L, x: x.astype(_onnx_dtype(n.attrs["to"])),
    "Add": lambda n, L, a, b: a + b, "Sub": lambda n, L, a, b: a - b,
    "Mul": lambda n, L, a, b: a * b,
    "Div": lambda n, L, a, b: (a // b) if a.dtype.kind in "iu" else a / b,
    "Neg": lambda n, L, x: -x, "Sqrt": lambda n, L, x: np.sqrt(x),
    "Min": lambda n, L, *xs: np.minimum.reduce(xs), "Max": lambda n, L, *xs: np.maximum.reduce(xs),
    "Equal": lambda n, L, a, b: a == b,
    "Where": lambda n, L, c, a, b: np.where(c, a, b),
    "Slice": lambda n, L, x, *r: _slice(n, L, x),
    "Range": lambda n, L, a, b, d: _range(a, b, d),
    "Expand": lambda n, L, x, s: x * np.ones(_sized(np.broadcast_shapes(x.shape, tuple(_sized(s)))), x.dtype),
    "ConstantOfShape": lambda n, L, s: np.full(_sized(s), n.attrs["value"].reshape(-1)[0]
                                               if "value" in n.attrs else np.float32(0),
                                               n.attrs["value"].dtype if "value" in n.attrs else np.float32),
    "ReduceProd": lambda n, L, x, *r: np.prod(x, axis=tuple(_axes(n, L)) if _axes(n, L) else None,
                                              keepdims=bool(n.attrs.get("keepdims", 1))),
    "DequantizeLinear": lambda n, L, x, s, *z: _dequantize(x, s, _zp(n, L, 2, x), n.attrs.get("axis", 1)),
    "QuantizeLinear": lambda n, L, x, s, *z: _quantize(x, s, _zp(n, L, 2, x), n.attrs.get("axis", 1)),
}
# Ops edgert runs only by folding: they must have constant inputs.
FOLDABLE = {"Shape", "Size", "Gather", "Cast", "Equal", "Where", "Slice", "Range", "Expand",
            "ConstantOfShape", "ReduceProd", "Constant", "Min", "Max", "Neg", "Sqrt"}
_SHAPE_ONLY = {"Shape", "Size"}


def _onnx_dtype(code):
    from .onnx_import import _DTYPES
    if code not in _DTYPES:
        raise ModelError(f"Cast to unsupported element type {code}")
    return _DTYPES[code]


def _constant(node):
    a = node.attrs
    if "value" in a:
        return a["value"]
    for k, dt in (("value_float", np.float32), ("value_int", np.int64)):
        if k in a:
            return np.array(a[k], dt)
    for k, dt in (("value_floats", np.float32), ("value_ints", np.int64)):
        if k in a:
            return np.array(a[k], dt)
    raise ModelError(f"{node.where()}: Constant without a supported value attribute")


def try_fold(L, node):
    """Computes `node` at load when its inputs are known; returns whether it did."""
    if node.domain != "":
        return False
    if node.op_type == "Constant":
        v = _constant(node)
        L.add(node.outputs[0], v.dtype, v.shape, const=v)
        return True
    fn = EVAL.get(node.op_type)
    if fn is None:
        return False
    names = [i for i in node.inputs if i]
    if node.op_type in _SHAPE_ONLY:
        args = [_ShapeOnly(L.t[names[0]].shape)]
    elif all(L.maybe_const(i) is not None for i in names):
        args = [L.t[i].const for i in names]
    elif node.op_type in FOLDABLE:
        L.unsupported("runs only when computable at load; its inputs are not constants")
    else:
        return False
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(fn(node, L, *args))
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"{node.where()}: cannot compute it from its constant inputs: {e}") from None
    if value.dtype == np.float64:
        value = value.astype(np.float32)
    L.add(node.outputs[0], value.dtype, value.shape, const=value)
    return True


class _ShapeOnly:
    """Stands in for a tensor whose shape, not value, is known (for Shape and Size)."""
    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(shape)
        self.size = int(np.prod(shape, dtype=np.int64))
