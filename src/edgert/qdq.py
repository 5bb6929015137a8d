"""QDQ fusion: DequantizeLinear -> float op -> QuantizeLinear groups become integer ops.

The rewrite targets the QOperator ops (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...), so
both quantization formats meet in one lowering. Activations between the op and its
QuantizeLinear (Relu, Clip) are recorded as `_act` = (low, high) and become the requantization
clamp. A group that does not match exactly is left alone and runs as dequantize / float op /
quantize, which is slower but still correct.
"""
import numpy as np

from .graph import Node, remove_dead, sort_and_check

MS = "com.microsoft"
# Ops that only move or select values: on integers they are exact when the scale and zero
# point on both sides are equal.
_MOVERS = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity",
           "Dropout", "Pad", "Slice", "Gather", "Resize", "SpaceToDepth", "DepthToSpace"}
_LUT_OPS = {"Sigmoid", "LeakyRelu", "Tanh", "HardSigmoid", "HardSwish", "Relu", "Clip", "Elu",
            "Selu", "Softplus", "Exp", "Neg", "Abs", "Sqrt", "Erf", "Gelu", "Softsign"}


class _Ctx:
    def __init__(self, graph):
        self.g = graph
        self.producer = graph.producers()
        self.users = graph.consumers()
        self.outputs = {v.name for v in graph.outputs}
        self.counter = 0

    def const(self, name):
        return self.g.constants.get(name) if name else None

    def dq(self, name, need_const=False):
        """The DequantizeLinear producing `name` as (int input, scale, zp names), or None."""
        n = self.producer.get(name)
        if n is None or n.op_type != "DequantizeLinear" or n.domain not in ("", MS):
            return None
        if self.const(n.input(1)) is None:
            return None
        if need_const and self.const(n.input(0)) is None:
            return None
        zp = n.input(2) or self._zero_like(n.input(0))
        if zp is None or self.const(zp) is None:
            return None
        return n.inputs[0], n.inputs[1], zp, n.attrs.get("axis", 1)

    def _zero_like(self, name):
        src = self.const(name)
        dtype = src.dtype if src is not None else None
        if dtype is None:
            p = self.producer.get(name)
            if p is not None and p.op_type == "QuantizeLinear" and p.input(2):
                dtype = self.const(p.input(2)).dtype
            else:
                dtype = next((v.dtype for v in self.g.inputs if v.name == name), np.dtype(np.uint8))
        return self.new_const(np.zeros((), dtype))

    def new_const(self, value):
        self.counter += 1
        name = f"_qdq_const_{self.counter}"
        self.g.constants[name] = value
        return name

    def q_after(self, name):
        """The QuantizeLinear that alone consumes `name`, through optional Relu/Clip.

        Returns (q node, (low, high)) or None."""
        low, high = -np.inf, np.inf
        while True:
            users = self.users.get(name, [])
            if len(users) != 1 or name in self.outputs:
                return None
            u = users[0]
            if u.op_type == "QuantizeLinear" and u.domain in ("", MS):
                if self.const(u.input(1)) is None or (u.input(2) and self.const(u.input(2)) is None):
                    return None
                if self.const(u.input(1)).size != 1:
                    return None
                return u, (low, high)
            if u.op_type == "Relu":
                low = max(low, 0.0)
            elif u.op_type == "Clip":
                lo, hi = _clip_bounds(u, self)
                if lo is None:
                    return None
                low, high = max(low, lo), min(high, hi)
            else:
                return None
            name = u.outputs[0]

    def q_params(self, q):
        zp = q.input(2) or self.new_const(np.zeros((), np.uint8))
        return q.inputs[1], zp


def _clip_bounds(node, ctx):
    if len(node.inputs) > 1 or "min" not in node.attrs and "max" not in node.attrs:
        vals = []
        for i in (1, 2):
            name = node.input(i)
            if name is None:
                vals.append(-np.inf if i == 1 else np.inf)
            elif ctx.const(name) is None:
                return None, None
            else:
                vals.append(float(ctx.const(name)))
        return vals[0], vals[1]
    return float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))


def _same(ctx, a, b):
    """Whether two (scale, zp) name pairs hold equal values."""
    return all(np.array_equal(ctx.const(x), ctx.const(y)) and ctx.const(x).dtype == ctx.const(y).dtype
               for x, y in zip(a, b))


def _fuse(ctx, n):
    """The fused node replacing `n` and its QuantizeLinear, or None."""
    if n.domain not in ("",):
        return None
    op = n.op_type
    qa = ctx.q_after(n.outputs[0]) if len(n.outputs) == 1 else None
    if qa is None:
        return None
    q, act = qa
    ys, yzp = ctx.q_params(q)
    out = [q.outputs[0]]
    attrs = dict(n.attrs)
    if act != (-np.inf, np.inf):
        attrs["_act"] = act
    if op == "Conv":
        x, w = ctx.dq(n.input(0)), ctx.dq(n.input(1), need_const=True)
        b = ctx.dq(n.input(2), need_const=True) if n.input(2) else None
        if x is None or w is None or (n.input(2) and b is None):
            return None
        if b is not None and ctx.const(b[0]).dtype != np.int32:
            return None
        ins = [*x[:3], *w[:3], ys, yzp] + ([b[0]] if b else [])
        return Node("QLinearConv", ins, out, attrs, n.name)
    if op in ("MatMul", "Gemm"):
        a, w = ctx.dq(n.input(0)), ctx.dq(n.input(1), need_const=True)
        if a is None or w is None:
            return None
        if op == "MatMul":
            if act != (-np.inf, np.inf):
                return None
            return Node("QLinearMatMul", [*a[:3], *w[:3], ys, yzp], out, {}, n.name)
        c = ctx.dq(n.input(2), need_const=True) if n.input(2) else None
        if n.input(2) and (c is None or ctx.const(c[0]).dtype != np.int32):
            return None
        if n.input(2) and attrs.get("beta", 1.0) != 1.0:
            return None
        attrs.pop("beta", None)
        ins = [*a[:3], *w[:3], c[0] if c else "", ys, yzp]
        return Node("QGemm", ins, out, attrs, n.name, MS)
    if op in ("Add", "Mul"):
        a, b = ctx.dq(n.input(0)), ctx.dq(n.input(1))
        if a is None or b is None:
            return None
        return Node("QLinear" + op, [*a[:3], *b[:3], ys, yzp], out, attrs, n.name, MS)
    if op in ("GlobalAveragePool", "AveragePool"):
        x = ctx.dq(n.input(0))
        if x is None:
            return None
        return Node("QLinear" + op, [*x[:3], ys, yzp], out, attrs, n.name, MS)
    if op == "Concat":
        xs = [ctx.dq(i) for i in n.inputs]
        if any(x is None for x in xs):
            return None
        ins = [ys, yzp] + [name for x in xs for name in x[:3]]
        return Node("QLinearConcat", ins, out, attrs, n.name, MS)
    if op == "Softmax":
        x = ctx.dq(n.input(0))
        if x is None or act != (-np.inf, np.inf):
            return None
        attrs.setdefault("axis", -1 if ctx.g.opset >= 13 else 1)
        attrs["opset"] = ctx.g.opset
        return Node("QLinearSoftmax", [*x[:3], ys, yzp], out, attrs, n.name, MS)
    if op in _LUT_OPS:
        x = ctx.dq(n.input(0))
        if x is None:
            return None
        if op == "Clip":
            lo, hi = _clip_bounds(n, ctx)
            if lo is None:
                return None
            attrs = {"min": lo, "max": hi, **({"_act": act} if "_act" in attrs else {})}
        return Node("_QUnary", [*x[:3], ys, yzp], out, {"fn": op, "fn_attrs": attrs}, n.name, MS)
    if op in _MOVERS:
        x = ctx.dq(n.input(0))
        if x is None or act != (-np.inf, np.inf) or not _same(ctx, x[1:3], (ys, yzp)):
            return None
        attrs = dict(n.attrs)
        if op == "Pad":
            if n.input(2):
                return None  # a float pad value would need quantizing; keep the float path
            attrs["_int_value"] = int(ctx.const(yzp))  # real zero is the zero point
        return Node(op, [x[0]] + n.inputs[1:], out, attrs, n.name)
    return None


def fuse_qdq(graph):
    """Rewrites QDQ groups into integer ops in place; returns the graph."""
    ctx = _Ctx(graph)
    changed = False
    nodes = []
    fused_q = set()
    for n in graph.nodes:
        if id(n) in fused_q:
            continue
        f = _fuse(ctx, n)
        if f is None:
            nodes.append(n)
            continue
        changed = True
        nodes.append(f)
        # The activation nodes and the QuantizeLinear between n and the fused output go away.
        name = n.outputs[0]
        while True:
            u = ctx.users[name][0]
            fused_q.add(id(u))
            if u.outputs[0] == f.outputs[0]:
                break
            name = u.outputs[0]
    graph.nodes = [n for n in nodes if id(n) not in fused_q]
    if changed:
        _cancel_dq_q(graph)
        remove_dead(sort_and_check(graph))
    return graph


def _cancel_dq_q(graph):
    """QuantizeLinear(DequantizeLinear(x)) with equal parameters is x itself."""
    ctx = _Ctx(graph)
    for i, n in enumerate(graph.nodes):
        if n.op_type != "QuantizeLinear" or n.domain not in ("", MS):
            continue
        d = ctx.dq(n.inputs[0])
        if d is None or ctx.const(n.input(1)) is None:
            continue
        if n.input(2) is None or not _same(ctx, d[1:3], (n.inputs[1], n.inputs[2])):
            continue
        graph.nodes[i] = Node("Identity", [d[0]], list(n.outputs), {}, n.name)
