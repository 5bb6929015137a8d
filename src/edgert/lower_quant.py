"""Lowering rules for the quantized ops (QOperator, and QDQ groups that qdq.py fused)."""
import math

import numpy as np

from .graph import Node
from .lower import rule
from .tables import build_lut
from .lower_float import (_UNARY, _with_flat, conv_geometry, pool_window, softmax_axis,
                          unary_attrs)

MS = "com.microsoft"
F32 = np.dtype(np.float32)
INT8 = (np.dtype(np.uint8), np.dtype(np.int8))


def _scale(L, name, what, count=None):
    s = L.const(name, what).astype(np.float32).reshape(-1)
    if s.size == 0 or (count is not None and s.size not in (1, count)):
        L.fail(f"{what} has {s.size} values, expected 1" + (f" or {count}" if count else ""))
    if not (0 < float(s[0]) < math.inf if s.size == 1  # most scales: no numpy reductions
            else np.all(np.isfinite(s)) and np.all(s > 0)):
        L.fail(f"{what} must be positive and finite, got {s[:4]}")
    return s


def _zp(L, name, what, dtype=None, count=None):
    if not name:
        return np.zeros(1, np.int32), np.dtype(dtype or np.uint8)
    z = L.const(name, what)
    if z.dtype not in INT8 and z.dtype != np.int32:
        L.fail(f"{what} has type {z.dtype}; expected uint8 or int8")
    if count is not None and z.size not in (1, count):
        L.fail(f"{what} has {z.size} values, expected 1 or {count}")
    return z.astype(np.int32).reshape(-1), z.dtype


def _qin(L, n, i):
    """(tensor, scale, zp) of the quantized input whose value, scale and zp start at index i."""
    x = L.t[n.inputs[i]]
    if x.dtype not in INT8:
        L.unsupported(f"input '{x.name}' is {x.dtype}; expected uint8 or int8")
    s = float(_scale(L, n.inputs[i + 1], "input scale", 1)[0])
    z, zdt = _zp(L, n.input(i + 2), "input zero point", x.dtype, 1)
    if n.input(i + 2) and zdt != x.dtype:
        L.fail(f"input '{x.name}' is {x.dtype} but its zero point is {zdt}")
    return x, s, int(z[0])


def _qout(L, n, si):
    """(scale, zp, dtype, qmin, qmax) of the output quantized by scale/zp at inputs si, si+1."""
    s = float(_scale(L, n.inputs[si], "output scale", 1)[0])
    z, dt = _zp(L, n.input(si + 1), "output zero point")
    z = int(z[0])
    info = np.iinfo(dt)
    qmin, qmax = int(info.min), int(info.max)
    lo, hi = n.attrs.get("_act", (-math.inf, math.inf))
    if lo > -math.inf:
        qmin = max(qmin, _quantize_value(lo, s, z, info))
    if hi < math.inf:
        qmax = min(qmax, _quantize_value(hi, s, z, info))
    return s, z, dt, qmin, qmax


def _quantize_value(v, s, z, info):
    q = np.rint(np.float32(v) / np.float32(s)) + z
    return int(np.clip(q, info.min, info.max))


def _requant_scale(in_scale, w_scale, out_scale):
    # onnxruntime's order: (x_scale * w_scale) / y_scale, each step in fp32.
    return ((np.float32(in_scale) * w_scale.astype(np.float32)) / np.float32(out_scale)).astype(np.float32)


def _ksum(wk, w_zp):
    """Σ(w − w_zp) per row of wk [M, K] (int64). Summed in int32 without a widened copy of the
    weights (2x faster than an int64 sum: MobileNetV2's 3.4 MB in 0.6 ms), exact while
    K·255 < 2^31."""
    acc = np.int32 if wk.shape[1] < (1 << 23) else np.int64
    return wk.sum(axis=1, dtype=acc).astype(np.int64) - w_zp.astype(np.int64) * wk.shape[1]


def _fold_bias(L, bias, x_zp, wk, w_zp):
    """bias − x_zp·Σ(w − w_zp) per output channel; wk is [M, K]; must fit int32."""
    total = bias.astype(np.int64) - x_zp * _ksum(wk, w_zp)
    if total.size and (total.min() < -2**31 or total.max() >= 2**31):
        L.fail("the folded bias overflows int32")
    return total.astype(np.int32)


@rule("QLinearConv")
@rule("QLinearConv", domain=MS)
def qlinear_conv(L, n):
    x, xs, xzp = _qin(L, n, 0)
    if len(x.shape) != 4:
        L.unsupported("only 2-D convolution (4-D input) is supported")
    w = L.const(n.input(3), "weight")
    if w.dtype not in INT8 or w.ndim != 4:
        L.fail(f"weight must be a 4-D uint8/int8 constant, got {w.dtype} {w.shape}")
    M = w.shape[0]
    ws = _scale(L, n.inputs[4], "weight scale", M)
    wzp, _ = _zp(L, n.input(5), "weight zero point", w.dtype, M)
    ys, yzp, ydt, qmin, qmax = _qout(L, n, 6)
    group = n.attrs.get("group", 1)
    N, C, H, W = x.shape
    if group < 1 or C != w.shape[1] * group or M % group:
        L.fail(f"weight {w.shape} does not fit input {x.shape} with group {group}")
    bias = L.const(n.input(8), "bias").reshape(-1) if n.input(8) else np.zeros(M, np.int32)
    if bias.size != M or bias.dtype != np.int32:
        L.fail(f"bias must be {M} int32 values, got {bias.size} {bias.dtype}")
    pads, strides, dil, (oh, ow) = conv_geometry(L, n, (H, W), list(w.shape[2:]))
    wt = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    wzp = np.broadcast_to(wzp, (M,)).astype(np.int32)
    xi = L.nhwc(x.name)
    L.out(n.outputs[0], ydt, (N, M, oh, ow), "nhwc", (ys, yzp))
    L.emit("qconv", [xi], [n.outputs[0]], {
        "weight": wt, "w_zp": wzp, "bias": _fold_bias(L, bias, xzp, wt.reshape(M, -1), wzp),
        "scale": _requant_scale(xs, np.broadcast_to(ws, (M,)), ys), "x_zp": xzp, "y_zp": yzp,
        "qmin": qmin, "qmax": qmax, "kernel": list(w.shape[2:]), "strides": strides,
        "pads": pads, "dilations": dil, "group": group})


def _qgemm(L, n, a_name, as_, azp, wk, ws, wzp, bias, yq, alpha=1.0):
    """Emits qgemm for A[.., K] x wk[N, K]; yq = (ys, yzp, dtype, qmin, qmax) or None for f32."""
    Nn = wk.shape[0]
    ws = np.broadcast_to(ws, (Nn,)).astype(np.float32)
    wzp = np.broadcast_to(wzp, (Nn,)).astype(np.int32)
    a = L.t[a_name]
    attrs = {"weight": np.ascontiguousarray(wk), "w_zp": wzp,
             "bias": _fold_bias(L, bias, azp, wk, wzp)}
    if yq is None:
        attrs["scale"] = (np.float32(alpha) * (np.float32(as_) * ws)).astype(np.float32)
        attrs.update(y_zp=0, qmin=0, qmax=0)
        L.out(n.outputs[0], F32, a.shape[:-1] + (Nn,))
    else:
        ys, yzp, ydt, qmin, qmax = yq
        scale = _requant_scale(as_, ws, ys)
        if alpha != 1.0:
            scale = (np.float32(alpha) * np.float32(as_) * ws / np.float32(ys)).astype(np.float32)
        attrs.update(scale=scale, y_zp=yzp, qmin=qmin, qmax=qmax)
        L.out(n.outputs[0], ydt, a.shape[:-1] + (Nn,), qparams=(ys, yzp))
    L.emit("qgemm", [a_name], [n.outputs[0]], attrs)


@rule("QLinearMatMul")
@rule("QLinearMatMul", domain=MS)
def qlinear_matmul(L, n):
    a, as_, azp = _qin(L, n, 0)
    a_name = L.nchw(a.name)
    b = L.const(n.input(3), "B (weights)")
    if b.ndim != 2 or b.dtype not in INT8:
        L.unsupported("B must be a 2-D uint8/int8 constant")
    if len(a.shape) < 2 or a.shape[-1] != b.shape[0]:
        L.fail(f"shapes {a.shape} and {b.shape} do not multiply")
    bs = _scale(L, n.inputs[4], "B scale", b.shape[1])
    bzp, _ = _zp(L, n.input(5), "B zero point", b.dtype, b.shape[1])
    _qgemm(L, n, a_name, as_, azp, b.T, bs, bzp, np.zeros(b.shape[1], np.int32), _qout(L, n, 6))


@rule("QGemm", domain=MS)
def qgemm(L, n):
    a, as_, azp = _qin(L, n, 0)
    a_name = L.nchw(a.name)
    if len(a.shape) != 2:
        L.fail(f"A must be 2-D, got {a.shape}")
    if n.attrs.get("transA", 0):
        t = L.fresh(a_name + "@T")
        L.out(t, a.dtype, a.shape[::-1], qparams=a.qparams)
        L.emit("transpose", [a_name], [t], {"perm": [1, 0]})
        a_name = t
    b = L.const(n.input(3), "B (weights)")
    if b.ndim != 2 or b.dtype not in INT8:
        L.fail("B must be a 2-D uint8/int8 constant")
    wk = b if n.attrs.get("transB", 0) else b.T
    Nn = wk.shape[0]
    if wk.shape[1] != L.t[a_name].shape[1]:
        L.fail(f"A {L.t[a_name].shape} and B {b.shape} do not multiply")
    bs = _scale(L, n.inputs[4], "B scale", Nn)
    bzp, _ = _zp(L, n.input(5), "B zero point", b.dtype, Nn)
    bias = np.zeros(Nn, np.int32)
    if n.input(6):
        c = L.const(n.input(6), "C (bias)")
        if c.dtype != np.int32 or c.size not in (1, Nn):
            L.unsupported(f"C must be int32 with 1 or {Nn} values")
        bias = np.broadcast_to(c.reshape(-1), (Nn,)).astype(np.int32)
    yq = _qout(L, n, 7) if n.input(7) else None
    _qgemm(L, n, a_name, as_, azp, wk, bs, bzp, bias, yq, n.attrs.get("alpha", 1.0))


@rule("QLinearAdd", "QLinearMul", domain=MS)
def qlinear_binary(L, n):
    a, as_, azp = _qin(L, n, 0)
    b, bs, bzp = _qin(L, n, 3)
    ys, yzp, ydt, qmin, qmax = _qout(L, n, 6)
    try:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        L.fail(f"input shapes {a.shape} and {b.shape} do not broadcast")
    layout = L.like([a.name, b.name]) if len(shape) == 4 else "nchw"
    ins = [L.in_layout(a.name, layout, 4), L.in_layout(b.name, layout, 4)]
    L.out(n.outputs[0], ydt, shape, layout, (ys, yzp))
    L.emit("qadd" if n.op_type == "QLinearAdd" else "qmul", ins, [n.outputs[0]], {
        "a_scale": as_, "a_zp": azp, "b_scale": bs, "b_zp": bzp, "y_scale": ys, "y_zp": yzp,
        "qmin": qmin, "qmax": qmax})


@rule("QLinearGlobalAveragePool", "QLinearAveragePool", domain=MS)
def qlinear_pool(L, n):
    x, xs, xzp = _qin(L, n, 0)
    ys, yzp, ydt, qmin, qmax = _qout(L, n, 3)
    if len(x.shape) != 4:
        L.unsupported("only 2-D pooling (4-D input) is supported")
    if n.attrs.get("channels_last", 0):
        # The tensor's own shape is already N, H, W, C: pool it as is.
        N, H, W, C = x.shape
        src, layout = L.nchw(x.name), "nchw"
        logical = (N, C, H, W)
    else:
        src, layout, logical = L.nhwc(x.name), "nhwc", x.shape
    attrs, (oh, ow) = pool_window(L, n, logical, n.op_type == "QLinearGlobalAveragePool")
    N, C = logical[0], logical[1]
    out_shape = (N, C, oh, ow) if layout == "nhwc" else (N, oh, ow, C)
    L.out(n.outputs[0], ydt, out_shape, layout, (ys, yzp))
    attrs.update(x_scale=xs, x_zp=xzp, y_scale=ys, y_zp=yzp, qmin=qmin, qmax=qmax)
    L.emit("qavgpool", [src], [n.outputs[0]], attrs)


@rule("QLinearConcat", domain=MS)
def qlinear_concat(L, n):
    ys, yzp, ydt, _, _ = _qout(L, n, 0)
    if (len(n.inputs) - 2) % 3 or len(n.inputs) < 5:
        L.fail("expects Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples")
    xs = [_qin(L, n, i) for i in range(2, len(n.inputs), 3)]
    names = [x.name for x, _, _ in xs]
    rank = len(xs[0][0].shape)
    axis = n.attrs.get("axis")
    if axis is None or not -rank <= axis < rank:
        L.fail(f"axis {axis} is invalid for rank {rank}")
    axis %= rank
    for x, _, _ in xs:
        if len(x.shape) != rank or (x.shape[:axis] + x.shape[axis + 1:]
                                    != xs[0][0].shape[:axis] + xs[0][0].shape[axis + 1:]):
            L.fail(f"input shapes {[x.shape for x, _, _ in xs]} do not concatenate on axis {axis}")
    shape = list(xs[0][0].shape)
    shape[axis] = sum(x.shape[axis] for x, _, _ in xs)
    layout = L.like(names) if rank == 4 else "nchw"
    ins = [L.in_layout(i, layout, 4) for i in names]
    out = L.out(n.outputs[0], ydt, shape, layout, (ys, yzp))
    L.emit("qconcat", ins, [n.outputs[0]], {
        "axis": L.axis(out, axis), "y_scale": ys, "y_zp": yzp,
        "in_scales": [float(s) for _, s, _ in xs], "in_zps": [int(z) for _, _, z in xs]})


@rule("QLinearSigmoid", "QLinearLeakyRelu", "_QUnary", domain=MS)
def qlinear_unary(L, n):
    x, xs, xzp = _qin(L, n, 0)
    ys, yzp, ydt, qmin, qmax = _qout(L, n, 3)
    if n.op_type == "_QUnary":
        fn_node = Node(n.attrs["fn"], [], [], n.attrs["fn_attrs"], n.name)
        if fn_node.op_type not in _UNARY:
            L.unsupported(f"quantized {fn_node.op_type}")
        ua = unary_attrs(L, fn_node)
    elif n.op_type == "QLinearSigmoid":
        ua = {"kind": "sigmoid"}
    else:
        ua = {"kind": "leaky_relu", "alpha": n.attrs.get("alpha", 0.01)}
    table = build_lut(ua["kind"], ua, xs, xzp, x.dtype, ys, yzp, ydt, qmin, qmax)
    L.out(n.outputs[0], ydt, x.shape, x.layout, (ys, yzp))
    L.emit("qlut", [x.name], [n.outputs[0]], {"table": table})


@rule("QLinearSoftmax", domain=MS)
def qlinear_softmax(L, n):
    x, xs, xzp = _qin(L, n, 0)
    ys, yzp, ydt, _, _ = _qout(L, n, 3)
    name, axis, flat = softmax_axis(L, n, x)
    attrs = {"axis": axis, "x_scale": xs, "x_zp": xzp, "y_scale": ys, "y_zp": yzp}
    _with_flat(L, "qsoftmax", name, n.outputs[0], flat, attrs, ydt, (ys, yzp))


def _axis_params(L, n, x, scale, zp):
    attrs = {"scale": scale.astype(np.float32), "zp": zp.astype(np.int32)}
    if scale.size > 1:
        rank = len(x.shape)
        axis = n.attrs.get("axis", 1)
        if not -rank <= axis < rank or x.shape[axis % rank] != scale.size:
            L.fail(f"per-axis parameters ({scale.size}) do not fit axis {axis} of {x.shape}")
        attrs["axis"] = L.axis(x, axis)
    else:
        attrs["axis"] = 0
    return attrs


@rule("QuantizeLinear")
@rule("QuantizeLinear", domain=MS)
def quantize(L, n):
    x = L.t[n.inputs[0]]
    if x.dtype != F32:
        L.unsupported(f"quantizing {x.dtype} input")
    s = _scale(L, n.inputs[1], "scale")
    z, dt = _zp(L, n.input(2), "zero point", count=s.size)
    if dt not in INT8:
        L.unsupported(f"quantizing to {dt}")
    qp = (float(s[0]), int(z[0])) if s.size == 1 else None
    L.out(n.outputs[0], dt, x.shape, x.layout, qp)
    L.emit("quantize", [x.name], [n.outputs[0]], _axis_params(L, n, x, s, np.broadcast_to(z, s.shape)))


@rule("DequantizeLinear")
@rule("DequantizeLinear", domain=MS)
def dequantize(L, n):
    x = L.t[n.inputs[0]]
    if x.dtype not in INT8 and x.dtype != np.int32:
        L.unsupported(f"dequantizing {x.dtype} input")
    s = _scale(L, n.inputs[1], "scale")
    z, _ = _zp(L, n.input(2), "zero point", count=s.size)
    L.out(n.outputs[0], F32, x.shape, x.layout)
    L.emit("dequantize", [x.name], [n.outputs[0]], _axis_params(L, n, x, s, np.broadcast_to(z, s.shape)))


def fold_pair_orders(L):
    """Puts conv -> depthwise conv -> 1x1 conv chains (and conv -> 1x1 conv ones) in the channel
    order the 1x1 conv's weights want. The AVX2 kernels multiply byte pairs of adjacent input
    channels exactly only while both weights of a pair cannot overflow int16 together (the
    pair_u8 test); a trained layer fails it in a few pairs, and the conv engine then runs it on
    rows permuted at run time (a pass over the whole input). The channels between the first conv
    and the 1x1 one are internal, so they can be stored in that order instead: the first conv's
    output channels (weight rows, bias, scales) and the depthwise conv's channels move, the 1x1
    conv's weight columns with them. Same results exactly; MobileNetV2's project layers then read
    their input as it is."""
    from . import _core
    users, producer = {}, {}
    for op in L.ops:
        for i in op.inputs:
            users.setdefault(i, []).append(op)
        for o in op.outputs:
            producer[o] = op
    kept = set(L.output_names.values())

    def only_user(tensor, op):
        return tensor not in kept and users.get(tensor) == [op]

    for c in L.ops:
        a = c.attrs
        if c.type != "qconv" or a["group"] != 1 or list(a["kernel"]) != [1, 1]:
            continue
        d = producer.get(c.inputs[0])
        if d is None or d.type != "qconv" or not only_user(c.inputs[0], c):
            continue
        k = a["weight"].shape[-1]
        if d.attrs["group"] == 1 and d.attrs["weight"].shape[0] == k:
            moved = (d,)  # conv -> 1x1 conv (MobileNetV2's first projection -> expansion)
        elif d.attrs["group"] == k and d.attrs["weight"].shape[0] == k and d.attrs["weight"].shape[-1] == 1:
            p = producer.get(d.inputs[0])  # conv -> depthwise -> 1x1
            if (p is None or p.type != "qconv" or p.attrs["group"] != 1
                    or not only_user(d.inputs[0], d) or p.attrs["weight"].shape[0] != k):
                continue
            moved = (p, d)
        else:
            continue
        w = np.ascontiguousarray(a["weight"].reshape(a["weight"].shape[0], k))
        mask = _core.pair_order(w, np.ascontiguousarray(a["w_zp"], np.int32))
        if mask is None:
            continue
        order = np.array([g0 + int(mask[g0 + j]) for g0 in range(0, k, 16)
                          for j in range(min(16, k - g0))], np.int64)
        if sorted(order.tolist()) != list(range(k)):
            continue
        for op in moved:
            for name in ("weight", "w_zp", "bias", "scale"):
                op.attrs[name] = np.ascontiguousarray(op.attrs[name][order])
        a["weight"] = np.ascontiguousarray(a["weight"][..., order])


def _producers_and_readers(L):
    """{tensor: the op writing it} and {tensor: how many op inputs read it}."""
    producer = {o: op for op in L.ops for o in op.outputs}
    users = {}
    for op in L.ops:
        for i in op.inputs:
            users[i] = users.get(i, 0) + 1
    return producer, users


def fuse_self_luts(L):
    """An 8-bit add or multiply of a tensor with itself or with a lookup table of it (onnxruntime's
    quantized HardSwish: x · HardSigmoid(x), a qlut and a qmul) depends on that tensor's byte
    alone, so it becomes one qlut whose table is the op's own result for each of the 256 bytes:
    the op itself runs once over them (all such ops in one executor, whose kernels give the same
    bytes on every ISA), so the fused plan's answers are the unfused plan's. The first qlut goes
    too when nothing else reads it. MobileNetV3-Small (28 HardSwish, QOperator u8): its qmuls and
    qluts were 42 % of a run."""
    from . import _core
    producer, users = _producers_and_readers(L)
    kept = set(L.output_names.values())
    codes = {np.dtype(np.uint8): "u8", np.dtype(np.int8): "i8"}
    v = np.arange(256, dtype=np.uint8)  # every byte of x
    fused, tensors, ops, feeds = [], [], [], []  # one executor runs every such op once
    for op in L.ops:
        if op.type not in ("qadd", "qmul") or len(op.inputs) != 2:
            continue
        a, b = op.inputs
        lut = None
        if a != b:
            for mine, other in ((a, b), (b, a)):
                src = producer.get(mine)
                if (src is not None and src.type == "qlut" and src.inputs == [other]
                        and users.get(mine) == 1 and mine not in kept):
                    lut = src
            if lut is None:
                continue
        x = lut.inputs[0] if lut else a
        ta, tb, ty = L.t[a], L.t[b], L.t[op.outputs[0]]
        if not (ta.shape == tb.shape == ty.shape and {ta.dtype, tb.dtype, ty.dtype} <= set(codes)):
            continue
        table = lut.attrs["table"].view(np.uint8) if lut else None
        k = len(tensors)
        tensors += [{"dtype": codes[t.dtype], "shape": [256], "kind": kind}
                    for t, kind in ((ta, "input"), (tb, "input"), (ty, "output"))]
        ops.append({"type": op.type, "name": op.name, "inputs": [k, k + 1], "outputs": [k + 2],
                    "attrs": dict(op.attrs)})
        feeds += [(v if name == x else table[v]).view(t.dtype) for name, t in ((a, ta), (b, tb))]
        fused.append((op, x, lut))
    if not fused:
        return
    ins = [i for i in range(len(tensors)) if tensors[i]["kind"] == "input"]
    outs = [i for i in range(len(tensors)) if tensors[i]["kind"] == "output"]
    results = _core.Executor(0, tensors, ops, ins, outs, 1).run(feeds)
    for (op, x, lut), y in zip(fused, results):
        op.type, op.inputs = "qlut", [x]
        op.attrs = {"table": np.ascontiguousarray(y).view(np.uint8)}
        if lut is not None:
            L.ops.remove(lut)


def fuse_output_luts(L):
    """A qlut that is the only reader of a qconv's or qgemm's 8-bit output (not a graph output)
    becomes that op's output table (out_table): the conv maps each byte it has just written
    through the table while the bytes are still in its core's cache, and the qlut pass over the
    whole tensor goes. Byte for byte the same: the table is the qlut's, applied to the same
    requantized bytes. MobileNetV3-Small: 20 of its HardSwish tables (after fuse_self_luts)
    follow a conv; at 2 threads each was a serial op reading the half of its input the other
    core had written. Runs last, once the tables and zero points are final."""
    producer, users = _producers_and_readers(L)
    kept = set(L.output_names.values()) | {v.name for v in L.graph.inputs}
    q8 = (np.dtype(np.uint8), np.dtype(np.int8))
    for op in list(L.ops):
        if op.type != "qlut":
            continue
        x, y = op.inputs[0], op.outputs[0]
        src = producer.get(x)
        if (src is None or src.type not in ("qconv", "qgemm") or "out_table" in src.attrs
                or users.get(x) != 1 or x in kept or L.t[x].dtype not in q8
                or L.t[x].dtype != L.t[y].dtype or tuple(L.t[x].shape) != tuple(L.t[y].shape)):
            continue
        src.attrs["out_table"] = np.ascontiguousarray(op.attrs["table"]).view(np.uint8)
        src.outputs = [y]
        producer[y] = src
        L.ops.remove(op)


def fuse_input_muls(L):
    """A qmul of a 4-D tensor X by per-channel bytes S ([N, C, 1, 1]: a squeeze-and-excitation
    block's scales) whose only reader is a 1x1, stride-1, unpadded qconv of one group becomes
    that conv's input multiply (the mul_* attributes, S its second input): the conv makes x·s a
    tile of rows at a time, in its core's cache and split among its threads, and the qmul pass
    over the whole tensor goes. Byte for byte the same: the conv's rows are the qmul's bytes (the
    same kernel on the same operands). MobileNetV3-Small: 9 SE blocks, each a qmul read by its
    projection conv. Runs after shift_int8_activations, once the zero points are final."""
    _, users = _producers_and_readers(L)
    kept = set(L.output_names.values()) | {v.name for v in L.graph.inputs}
    readers = {}
    for op in L.ops:
        for i in op.inputs:
            readers.setdefault(i, op)
    q8 = (np.dtype(np.uint8), np.dtype(np.int8))
    for op in list(L.ops):
        if op.type != "qmul" or len(op.inputs) != 2:
            continue
        y = op.outputs[0]
        conv = readers.get(y)
        if conv is None or conv.type != "qconv" or users.get(y) != 1 or y in kept:
            continue
        a = conv.attrs
        if (conv.inputs != [y] or "mul_a_scale" in a or list(a["kernel"]) != [1, 1]
                or list(a["strides"]) != [1, 1] or any(a["pads"]) or a["group"] != 1):
            continue
        ty = L.t[y]
        if len(ty.shape) != 4 or ty.dtype not in q8:
            continue
        n, c = ty.shape[0], ty.shape[1]
        for xi in (0, 1):  # which operand is X (the whole tensor), the other S
            tx, ts = L.t[op.inputs[xi]], L.t[op.inputs[1 - xi]]
            if (tuple(tx.shape) == tuple(ty.shape) and tx.dtype == ty.dtype
                    and tuple(ts.shape) == (n, c, 1, 1) and ts.dtype in q8):
                break
        else:
            continue
        m = op.attrs
        xa, sa = ("a", "b") if xi == 0 else ("b", "a")
        a.update({"mul_a_scale": m[xa + "_scale"], "mul_a_zp": m[xa + "_zp"],
                  "mul_b_scale": m[sa + "_scale"], "mul_b_zp": m[sa + "_zp"],
                  "mul_y_scale": m["y_scale"], "mul_y_zp": m["y_zp"],
                  "mul_qmin": m["qmin"], "mul_qmax": m["qmax"]})
        conv.inputs = [op.inputs[xi], op.inputs[1 - xi]]
        L.ops.remove(op)


# Ops that move bytes unchanged (a tensor and its copies must be shifted together), and the
# quantized ops whose zero points and clamps say what their bytes mean.
_BYTE_MOVES = {"view", "copy", "transpose", "concat", "maxpool", "pad"}
_SHIFT_READERS = {"qconv", "qgemm", "qadd", "qmul", "qavgpool", "qconcat", "qlut", "dequantize"}
_SHIFT_WRITERS = {"qconv", "qgemm", "qadd", "qmul", "qavgpool", "qconcat", "qlut", "quantize"}


def shift_int8_activations(L):
    """Runs int8 activations as uint8: x + 128 with zero point zp + 128, the same real values
    (scale·(x − zp)) and, since every requantization rounds v/s + zp and adding the even 128
    commutes with half-to-even rounding and with the clamps moved by 128, the same results
    byte for byte once shifted back. The x86 kernels multiply u8 × s8 (vpmaddubsw, vpdpbusd),
    so an int8 operand costs them an XOR with 0x80 per broadcast: MobileNetV2 with int8
    activations ran 1.11x (avx512vnni) and 1.08x (avx2) the time of its uint8 twin.

    A tensor is shifted with every tensor its bytes are copied to (views, transposes, pads,
    concats, max pools), and only if all of them are internal (not graph inputs or outputs, not
    constants) and every op that reads or writes them is one whose parameters say what the
    bytes mean (zero points, clamps, lookup tables); anything else (qsoftmax, a float op on
    int8 bytes) leaves that group as it is. Readers get zp + 128 (qconv and qgemm refold it into
    the bias: bias − 128·Σ(w − w_zp)), writers zp, qmin, qmax + 128, pads their value + 128,
    lookup tables their rows reordered by x ^ 0x80 and their entries + 128."""
    i8, u8 = np.dtype(np.int8), np.dtype(np.uint8)
    fixed = {v.name for v in L.graph.inputs} | set(L.output_names) | set(L.output_names.values())
    cand = {n for n, t in L.t.items() if t.dtype == i8 and t.const is None and n not in fixed}
    if not cand:
        return
    parent = {n: n for n in cand}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    bad = set()
    for op in L.ops:
        names = [n for n in op.inputs + op.outputs if n in cand]
        if not names:
            continue
        if op.type in _BYTE_MOVES:
            roots = {find(n) for n in names}
            if len(names) < len(op.inputs) + len(op.outputs):  # bytes from or to a fixed tensor
                bad |= roots
            r0 = roots.pop()
            for r in roots:
                parent[r] = r0
            continue
        for k, n in enumerate(op.inputs):
            if n in cand and (op.type not in _SHIFT_READERS or (k > 0 and op.type not in
                                                                ("qadd", "qmul", "qconcat"))):
                bad.add(find(n))
        for n in op.outputs:
            if n in cand and op.type not in _SHIFT_WRITERS:
                bad.add(find(n))
    bad = {find(b) for b in bad}
    shifted = {n for n in cand if find(n) not in bad}
    if not shifted:
        return

    refolds = {}
    for op in L.ops:
        if op.type in ("qconv", "qgemm") and op.inputs[0] in shifted:
            a = op.attrs
            wk = a["weight"].reshape(a["weight"].shape[0], -1)
            bias = a["bias"].astype(np.int64) - 128 * _ksum(wk, a["w_zp"])
            if bias.size and (bias.min() < -2**31 or bias.max() >= 2**31):
                return  # cannot happen for a trained layer; then nothing is shifted
            refolds[id(op)] = bias.astype(np.int32)

    for op in L.ops:
        a = op.attrs
        for k, n in enumerate(op.inputs):
            if n not in shifted:
                continue
            if op.type in ("qconv", "qgemm"):
                a["bias"] = refolds[id(op)]
                if op.type == "qconv":
                    a["x_zp"] += 128
            elif op.type in ("qadd", "qmul"):
                a["a_zp" if k == 0 else "b_zp"] += 128
            elif op.type == "qavgpool":
                a["x_zp"] += 128
            elif op.type == "qconcat":
                a["in_zps"] = [z + 128 if j == k else z for j, z in enumerate(a["in_zps"])]
            elif op.type == "qlut":
                a["table"] = np.ascontiguousarray(a["table"][np.arange(256) ^ 0x80])
            elif op.type == "dequantize":
                a["zp"] = a["zp"] + 128
        for n in op.outputs:
            if n not in shifted:
                continue
            if op.type in ("qconv", "qgemm", "qadd", "qmul", "qavgpool"):
                a["y_zp"] += 128
                a["qmin"] += 128
                a["qmax"] += 128
            elif op.type == "qconcat":
                a["y_zp"] += 128
            elif op.type == "qlut":
                a["table"] = (a["table"].view(np.uint8) ^ 0x80).astype(np.uint8)
            elif op.type == "quantize":
                a["zp"] = a["zp"] + 128
            elif op.type == "pad":
                a["value"] = float(a["value"]) + 128.0
    for n in shifted:
        t = L.t[n]
        t.dtype = u8
        if t.qparams is not None:
            t.qparams = (t.qparams[0], t.qparams[1] + 128)
