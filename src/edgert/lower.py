"""Lowers a Graph to the executor's internal ops (csrc/ops/README.md) for concrete input shapes.

One forward pass in topological order does shape inference, constant folding and layout: 4-D
tensors that conv-like ops touch live in NHWC, ops that do not care about layout (elementwise,
concat, quantize...) follow their inputs, and ops that do (reshape, gemm, graph outputs) get
NCHW back, so layout changes happen only at the edges of conv regions.
"""
from dataclasses import dataclass

import numpy as np

from .errors import EdgertError, ModelError, UnsupportedOpError
from .graph import check_elements

TO_NHWC = (0, 2, 3, 1)   # physical NHWC from logical NCHW
TO_NCHW = (0, 3, 1, 2)
DTYPE_CODE = {np.dtype(np.uint8): "u8", np.dtype(np.int8): "i8", np.dtype(np.int32): "i32",
              np.dtype(np.int64): "i64", np.dtype(np.float32): "f32"}


@dataclass
class T:
    """A tensor during lowering: logical (ONNX) shape, physical layout, value if constant."""
    name: str
    dtype: np.dtype
    shape: tuple
    layout: str = "nchw"          # "nhwc": a logical 4-D NCHW tensor stored as NHWC
    const: np.ndarray = None
    qparams: tuple = None         # (scale, zero_point) when known, for metadata

    @property
    def phys(self):
        return tuple(self.shape[i] for i in TO_NHWC) if self.layout == "nhwc" else self.shape


@dataclass
class IOp:
    """An internal op: `type` is a catalog op, or "view" (same bytes, new shape) for the planner."""
    type: str
    name: str
    inputs: list
    outputs: list
    attrs: dict


class Lowering:
    def __init__(self, graph):
        self.graph = graph
        self.t = {}
        self.ops = []
        self._converted = {}
        self._n = 0
        self.node = None
        self.users = graph.consumers()
        self.graph_outputs = {v.name for v in graph.outputs}

    # --- tensors -------------------------------------------------------------------------
    def fresh(self, base):
        self._n += 1
        return f"{base}#{self._n}"

    def add(self, name, dtype, shape, layout="nchw", const=None, qparams=None):
        shape = tuple(int(d) for d in shape)
        check_elements(shape, f"tensor '{name}'")
        dtype = np.dtype(dtype)
        if const is not None:  # constants are kept in their physical layout
            phys = tuple(shape[i] for i in TO_NHWC) if layout == "nhwc" else shape
            if not (type(const) is np.ndarray and const.dtype == dtype and const.shape == phys
                    and const.flags.c_contiguous):  # (most are already)
                const = np.ascontiguousarray(const, dtype=dtype).reshape(phys)
        self.t[name] = T(name, dtype, shape, layout, const, qparams)
        return self.t[name]

    def const(self, name, what="input"):
        """The constant value of an input, or an error naming the node."""
        if name is None or name not in self.t or self.t[name].const is None:
            self.unsupported(f"its {what} must be a constant")
        return self.t[name].const

    def maybe_const(self, name):
        return self.t[name].const if name and name in self.t else None

    def emit(self, type_, inputs, outputs, attrs=None):
        self.ops.append(IOp(type_, self.node.name if self.node else "edge", list(inputs),
                            list(outputs), attrs or {}))

    def fail(self, msg):
        raise ModelError(f"{self.node.where()}: {msg}")

    def unsupported(self, reason):
        n = self.node
        raise UnsupportedOpError([(n.name, n.op_type, n.domain, reason)])

    # --- layout --------------------------------------------------------------------------
    def nhwc(self, name):
        """A name holding `name` in NHWC (a logical 4-D tensor), converting at most once."""
        x = self.t[name]
        if len(x.shape) != 4:
            self.fail(f"expected a 4-D tensor, '{name}' has shape {x.shape}")
        if x.layout == "nhwc":
            return name
        key = (name, "nhwc")
        if key not in self._converted:
            out = self.fresh(name + "@nhwc")
            if x.const is not None:
                self.add(out, x.dtype, x.shape, "nhwc", np.transpose(x.const, TO_NHWC), x.qparams)
            else:
                self.add(out, x.dtype, x.shape, "nhwc", qparams=x.qparams)
                self._relayout(name, out, TO_NHWC)
            self._converted[key] = out
        return self._converted[key]

    def nchw(self, name):
        """A name holding `name` in its logical (ONNX) layout."""
        x = self.t[name]
        if x.layout == "nchw":
            return name
        key = (name, "nchw")
        if key not in self._converted:
            out = self.fresh(name + "@nchw")
            self.add(out, x.dtype, x.shape, "nchw", qparams=x.qparams)
            self._relayout(name, out, TO_NCHW)
            self._converted[key] = out
        return self._converted[key]

    def _relayout(self, src, dst, perm):
        n, c, h, w = self.t[dst].shape
        if c == 1 or h * w == 1:  # the bytes are the same in both layouts
            self.emit("view", [src], [dst])
        else:
            self.emit("transpose", [src], [dst], {"perm": list(perm)})

    def like(self, names):
        """The layout a layout-agnostic op should use for these inputs."""
        for n in names:
            x = self.t.get(n)
            if x is not None and x.layout == "nhwc" and x.const is None:
                return "nhwc"
        return "nchw"

    def in_layout(self, name, layout, rank):
        """`name` brought to `layout`; lower-rank operands are broadcast up to `rank` first."""
        x = self.t[name]
        if layout == "nchw":
            return self.nchw(name)
        if len(x.shape) < rank:
            shape = (1,) * (rank - len(x.shape)) + x.shape
            if x.const is not None:
                name = self.fresh(name + "@4d")
                self.add(name, x.dtype, shape, const=x.const.reshape(shape), qparams=x.qparams)
            else:
                src, name = name, self.fresh(name + "@4d")
                self.add(name, x.dtype, shape, qparams=x.qparams)
                self.emit("view", [src], [name])
        return self.nhwc(name)

    def axis(self, x, axis):
        """A logical axis of tensor x, normalized, mapped to its physical position."""
        rank = len(x.shape)
        if not -rank <= axis < rank:
            self.fail(f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        return TO_NHWC.index(axis) if x.layout == "nhwc" else axis

    def out(self, name, dtype, shape, layout="nchw", qparams=None):
        return self.add(name, dtype, shape, layout, qparams=qparams)


def lower(graph, input_shapes, portable=False):
    """Lowers `graph` for {input name: shape}; returns the Lowering with ops and tensors.
    `portable`: for a plan written to an .edgert file, which may run under any ISA: channel
    orders for AVX2's byte pairs are chosen even where this ISA has no use for them,
    and int8 activations stay int8 (a plan for this x86 machine runs them as uint8)."""
    from . import lower_float, lower_quant  # noqa: F401  (they fill RULES)
    from .fold import try_fold

    L = Lowering(graph)
    for name, value in graph.constants.items():
        L.add(name, value.dtype, value.shape, const=value)
    for v in graph.inputs:
        L.add(v.name, v.dtype, input_shapes[v.name])

    check_supported(graph)
    for node in graph.nodes:
        L.node = node
        try:
            if not try_fold(L, node):
                RULES[(node.domain, node.op_type)](L, node)
        except EdgertError:
            raise
        except Exception as e:  # a malformed attribute or input the rule did not foresee
            raise ModelError(f"{node.where()}: invalid node: {type(e).__name__}: {e}") from None
    L.node = None
    finish(L)
    lower_quant.fuse_self_luts(L)
    from . import _core
    if portable or _core.pair_orders_help():
        lower_quant.fold_pair_orders(L)
    if not portable and _core.isa() in _U8_ISAS:
        lower_quant.shift_int8_activations(L)
    lower_quant.fuse_output_luts(L)
    lower_quant.fuse_input_muls(L)
    return L


# ISAs whose byte kernels multiply u8 activations by s8 weights (vpmaddubsw, vpdpbusd, tdpbusd's
# panels): int8 activations run there as uint8 (lower_quant.shift_int8_activations). NEON's
# sdot is s8 × s8 and takes int8 as it is; a plan for an .edgert file keeps the model's types.
_U8_ISAS = ("amx", "avx512vnni", "avx2")


RULES = {}


def rule(*names, domain=""):
    def register(fn):
        for n in names:
            RULES[(domain, n)] = fn
        return fn
    return register


def check_supported(graph):
    from . import lower_float, lower_quant  # noqa: F401
    from .fold import FOLDABLE
    bad = [(n.name, n.op_type, n.domain, "") for n in graph.nodes
           if (n.domain, n.op_type) not in RULES and not (n.domain == "" and n.op_type in FOLDABLE)]
    if bad:
        raise UnsupportedOpError(bad)


def finish(L):
    """Fuses activations into their producers and drops ops nothing reads."""
    users = {}
    for op in L.ops:
        for i in op.inputs:
            users.setdefault(i, []).append(op)
    outputs = {v.name for v in L.graph.outputs}
    producer = {o: op for op in L.ops for o in op.outputs}
    for op in list(L.ops):
        if op.type != "unary" or op.attrs["kind"] not in ("relu", "clip"):
            continue
        src = producer.get(op.inputs[0])
        if src is None or src.type not in ("conv", "gemm", "binary") or op.inputs[0] in outputs:
            continue
        if len(users.get(op.inputs[0], [])) != 1:
            continue
        lo = 0.0 if op.attrs["kind"] == "relu" else op.attrs["min"]
        hi = np.inf if op.attrs["kind"] == "relu" else op.attrs["max"]
        src.attrs["act_min"] = max(src.attrs.get("act_min", -np.inf), lo)
        src.attrs["act_max"] = min(src.attrs.get("act_max", np.inf), hi)
        src.outputs = list(op.outputs)
        L.t[op.outputs[0]].layout = L.t[op.inputs[0]].layout
        L.ops.remove(op)
    # Graph outputs in their logical layout.
    L.output_names = {}
    for v in L.graph.outputs:
        L.output_names[v.name] = L.nchw(v.name) if v.name in L.t else v.name
    live = set(L.output_names.values())
    kept = []
    for op in reversed(L.ops):
        if any(o in live for o in op.outputs):
            kept.append(op)
            live.update(op.inputs)
    L.ops = kept[::-1]
