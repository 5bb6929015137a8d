"""Lowering rules for the standard ONNX ops: fp32 compute, data movement, pooling."""
import numpy as np

from .lower import TO_NHWC, rule

F32 = np.dtype(np.float32)


def conv_geometry(L, n, in_hw, kernel, pool=False):
    """pads [t, l, b, r], strides, dilations and output (h, w) of a 2-D conv or pool window."""
    a = n.attrs
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if len(kernel) != 2 or len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
        L.unsupported("only 2-D windows are supported")
    if min(strides) < 1 or min(dil) < 1 or min(kernel) < 1 or min(pads) < 0:
        L.fail(f"invalid window: kernel {kernel}, strides {strides}, dilations {dil}, pads {pads}")
    auto = a.get("auto_pad", "NOTSET")
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        for i in range(2):
            out = -(-in_hw[i] // strides[i])
            total = max((out - 1) * strides[i] + span[i] - in_hw[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto != "NOTSET":
        L.fail(f"unknown auto_pad '{auto}'")
    out_hw = []
    for i in range(2):
        extent = in_hw[i] + pads[i] + pads[i + 2] - span[i]
        if extent < 0:
            L.fail(f"the window ({span[i]}) is larger than the padded input ({in_hw[i]})")
        if pool and a.get("ceil_mode", 0):
            o = -(-extent // strides[i]) + 1
            if (o - 1) * strides[i] >= in_hw[i] + pads[i]:
                o -= 1  # the last window must start inside the input or its leading pad
        else:
            o = extent // strides[i] + 1
        out_hw.append(o)
    return pads, strides, dil, tuple(out_hw)


def _need_f32(L, n, *names):
    for name in names:
        if L.t[name].dtype != F32:
            L.unsupported(f"input '{name}' is {L.t[name].dtype}; only float32 is supported here")


@rule("Conv")
def conv(L, n):
    x = L.t[n.inputs[0]]
    if len(x.shape) != 4:
        L.unsupported("only 2-D convolution (4-D input) is supported")
    _need_f32(L, n, x.name)
    w = L.const(n.input(1), "weight").astype(np.float32)
    group = n.attrs.get("group", 1)
    N, C, H, W = x.shape
    if w.ndim != 4 or group < 1 or C != w.shape[1] * group or w.shape[0] % group:
        L.fail(f"weight {w.shape} does not fit input {x.shape} with group {group}")
    M = w.shape[0]
    b = L.const(n.input(2), "bias").astype(np.float32).reshape(-1) if n.input(2) else np.zeros(M, F32)
    if b.size != M:
        L.fail(f"bias has {b.size} values for {M} output channels")
    kernel = list(w.shape[2:])
    if "kernel_shape" in n.attrs and list(n.attrs["kernel_shape"]) != kernel:
        L.fail(f"kernel_shape {n.attrs['kernel_shape']} disagrees with the weight {w.shape}")
    pads, strides, dil, (oh, ow) = conv_geometry(L, n, (H, W), kernel)
    xi = L.nhwc(x.name)
    L.out(n.outputs[0], F32, (N, M, oh, ow), "nhwc")
    L.emit("conv", [xi], [n.outputs[0]], {
        "weight": np.ascontiguousarray(w.transpose(0, 2, 3, 1)), "bias": b, "kernel": kernel,
        "strides": strides, "pads": pads, "dilations": dil, "group": group})


@rule("BatchNormalization")
def batchnorm(L, n):
    if n.attrs.get("training_mode", 0) or len([o for o in n.outputs if o]) > 1:
        L.unsupported("training mode is not supported")
    x = L.t[n.inputs[0]]
    _need_f32(L, n, x.name)
    gamma, beta, mean, var = (L.const(n.input(i)).astype(np.float32).reshape(-1) for i in (1, 2, 3, 4))
    eps = np.float32(n.attrs.get("epsilon", 1e-5))
    C = x.shape[1] if len(x.shape) > 1 else 1
    if not all(v.size == C for v in (gamma, beta, mean, var)):
        L.fail(f"parameters must have {C} values (the channel count)")
    scale = (gamma / np.sqrt(var + eps)).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    prev = L.ops[-1] if L.ops else None
    if (prev is not None and prev.type == "conv" and prev.outputs == [x.name]
            and len(L.users.get(x.name, [])) == 1 and x.name not in L.graph_outputs
            and "act_min" not in prev.attrs):
        prev.attrs["weight"] = (prev.attrs["weight"] * scale[:, None, None, None]).astype(np.float32)
        prev.attrs["bias"] = (prev.attrs["bias"] * scale + shift).astype(np.float32)
        prev.outputs = [n.outputs[0]]
        L.out(n.outputs[0], F32, x.shape, x.layout)
        return
    L.out(n.outputs[0], F32, x.shape, x.layout)
    L.emit("channel_affine", [x.name], [n.outputs[0]],
           {"axis": L.axis(x, 1), "scale": scale, "shift": shift})


@rule("Gemm")
def gemm(L, n):
    a = L.t[L.nchw(n.inputs[0])]
    _need_f32(L, n, a.name)
    B = L.const(n.input(1), "B (weights)").astype(np.float32)
    if len(a.shape) != 2 or B.ndim != 2:
        L.fail(f"Gemm needs 2-D inputs, got {a.shape} and {B.shape}")
    name = a.name
    if n.attrs.get("transA", 0):
        name = L.fresh(a.name + "@T")
        L.out(name, F32, a.shape[::-1])
        L.emit("transpose", [a.name], [name], {"perm": [1, 0]})
    M, K = L.t[name].shape
    W = B if n.attrs.get("transB", 0) else B.T
    if W.shape[1] != K:
        L.fail(f"A is {M}x{K} but B gives {W.shape[::-1]}")
    alpha, beta = n.attrs.get("alpha", 1.0), n.attrs.get("beta", 1.0)
    if alpha != 1.0:
        W = W * np.float32(alpha)
    Nn = W.shape[0]
    bias, extra = np.zeros(Nn, F32), None
    if n.input(2):
        c = L.maybe_const(n.input(2))
        if c is not None and c.size in (1, Nn) and (c.ndim < 2 or c.shape[0] == 1):
            bias = (np.broadcast_to(c.astype(np.float32).reshape(-1), (Nn,)) * np.float32(beta)).astype(F32)
        else:
            extra = n.input(2)
    out = n.outputs[0] if extra is None else L.fresh(n.outputs[0] + "@ab")
    L.out(out, F32, (M, Nn))
    L.emit("gemm", [name], [out], {"weight": np.ascontiguousarray(W, F32), "bias": bias})
    if extra is not None:
        if beta != 1.0:
            L.unsupported("a non-constant C with beta != 1 is not supported")
        _binary(L, n, "add", [out, extra], n.outputs[0])


@rule("MatMul")
def matmul(L, n):
    a, b = L.t[L.nchw(n.inputs[0])], L.t[n.inputs[1]]
    _need_f32(L, n, a.name, b.name)
    if len(a.shape) < 2 or len(b.shape) < 2:
        L.unsupported("1-D MatMul operands are not supported")
    if a.shape[-1] != b.shape[-2]:
        L.fail(f"shapes {a.shape} and {b.shape} do not multiply")
    if b.const is not None and b.const.ndim == 2:
        L.out(n.outputs[0], F32, a.shape[:-1] + (b.shape[1],))
        L.emit("gemm", [a.name], [n.outputs[0]], {
            "weight": np.ascontiguousarray(b.const.T, F32), "bias": np.zeros(b.shape[1], F32)})
        return
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        L.fail(f"batch dims of {a.shape} and {b.shape} do not broadcast")
    bn = L.nchw(b.name)
    L.out(n.outputs[0], F32, tuple(batch) + (a.shape[-2], b.shape[-1]))
    L.emit("matmul", [a.name, bn], [n.outputs[0]])


def _binary(L, n, kind, names, out):
    shapes = [L.t[i].shape for i in names]
    try:
        shape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        L.fail(f"input shapes {shapes} do not broadcast")
    if len(shape) > 6:
        L.unsupported("broadcasting beyond rank 6")
    layout = L.like(names) if len(shape) == 4 else "nchw"
    ins = [L.in_layout(i, layout, 4) for i in names]
    acc = ins[0]
    for k, other in enumerate(ins[1:]):
        dst = out if k == len(ins) - 2 else L.fresh(out + "@acc")
        L.out(dst, F32, shape, layout)
        L.emit("binary", [acc, other], [dst], {"kind": kind})
        acc = dst


_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min",
           "Pow": "pow", "Sum": "add"}


@rule(*_BINARY)
def binary(L, n):
    names = [i for i in n.inputs if i]
    _need_f32(L, n, *names)
    if len(names) == 1:
        return _view(L, n, names[0], L.t[names[0]].shape)
    _binary(L, n, _BINARY[n.op_type], names, n.outputs[0])


_UNARY = {"Relu": "relu", "Clip": "clip", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid",
          "Tanh": "tanh", "HardSigmoid": "hard_sigmoid", "HardSwish": "hard_swish", "Exp": "exp",
          "Log": "log", "Sqrt": "sqrt", "Neg": "neg", "Abs": "abs", "Erf": "erf", "Gelu": "gelu"}


def unary_attrs(L, n):
    """The unary kind and its attributes for node n (also used to build lookup tables)."""
    kind, a = _UNARY[n.op_type], n.attrs
    attrs = {"kind": kind}
    if kind == "clip":
        if "min" in a or "max" in a:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo = float(L.const(n.input(1), "min")) if n.input(1) else -np.inf
            hi = float(L.const(n.input(2), "max")) if n.input(2) else np.inf
        attrs.update(min=float(lo), max=float(hi))
    elif kind == "leaky_relu":
        attrs["alpha"] = float(a.get("alpha", 0.01))
    elif kind == "hard_sigmoid":
        attrs.update(alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5)))
    elif kind == "gelu":
        attrs["approximate"] = a.get("approximate", "none")
    return attrs


@rule(*_UNARY)
def unary(L, n):
    x = L.t[n.inputs[0]]
    _need_f32(L, n, x.name)
    L.out(n.outputs[0], F32, x.shape, x.layout)
    L.emit("unary", [x.name], [n.outputs[0]], unary_attrs(L, n))


def softmax_axis(L, n, x):
    """(input name, physical axis, 2-D flattening or None) for Softmax-like node n."""
    rank = len(x.shape)
    axis = n.attrs.get("axis", -1 if n.attrs.get("opset", L.graph.opset) >= 13 else 1)
    if not -rank <= axis < rank:
        L.fail(f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    if n.attrs.get("opset", L.graph.opset) < 13 and axis != rank - 1:
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return L.nchw(x.name), 1, (outer, int(np.prod(x.shape[axis:], dtype=np.int64)))
    return x.name, L.axis(x, axis), None


@rule("Softmax", "LogSoftmax")
def softmax(L, n):
    x = L.t[n.inputs[0]]
    _need_f32(L, n, x.name)
    name, axis, flat = softmax_axis(L, n, x)
    attrs = {"axis": axis, "log": int(n.op_type == "LogSoftmax")}
    _with_flat(L, "softmax", name, n.outputs[0], flat, attrs, F32)


def _with_flat(L, op, name, out, flat, attrs, dtype, qparams=None):
    x = L.t[name]
    if flat is None:
        L.out(out, dtype, x.shape, x.layout, qparams)
        L.emit(op, [name], [out], attrs)
        return
    a, b = L.fresh(name + "@2d"), L.fresh(out + "@2d")
    L.out(a, x.dtype, flat, qparams=x.qparams)
    L.emit("view", [name], [a])
    L.out(b, dtype, flat, qparams=qparams)
    L.emit(op, [a], [b], attrs)
    L.out(out, dtype, x.shape, qparams=qparams)
    L.emit("view", [b], [out])


def _pool_input(L, n):
    x = L.t[n.inputs[0]]
    if len(x.shape) != 4:
        L.unsupported("only 2-D pooling (4-D input) is supported")
    return x


@rule("MaxPool", "GlobalMaxPool")
def maxpool(L, n):
    if len(n.outputs) > 1 and n.outputs[1] and n.outputs[1] in L.users:
        L.unsupported("the Indices output is not supported")
    x = _pool_input(L, n)
    if x.dtype not in (F32, np.dtype(np.uint8), np.dtype(np.int8)):
        L.unsupported(f"{x.dtype} input")
    N, C, H, W = x.shape
    if n.op_type == "GlobalMaxPool":
        kernel, pads, strides, dil, (oh, ow) = [H, W], [0, 0, 0, 0], [1, 1], [1, 1], (1, 1)
    else:
        kernel = list(n.attrs.get("kernel_shape", []))
        pads, strides, dil, (oh, ow) = conv_geometry(L, n, (H, W), kernel, pool=True)
    xi = L.nhwc(x.name)
    L.out(n.outputs[0], x.dtype, (N, C, oh, ow), "nhwc", x.qparams)
    L.emit("maxpool", [xi], [n.outputs[0]], {"kernel": kernel, "strides": strides, "pads": pads,
                                              "dilations": dil})


def pool_window(L, n, shape, global_pool):
    N, C, H, W = shape
    if global_pool:
        return {"kernel": [H, W], "strides": [1, 1], "pads": [0, 0, 0, 0], "count_include_pad": 0}, (1, 1)
    kernel = list(n.attrs.get("kernel_shape", []))
    pads, strides, dil, out_hw = conv_geometry(L, n, (H, W), kernel, pool=True)
    attrs = {"kernel": kernel, "strides": strides, "pads": pads,
             "count_include_pad": int(n.attrs.get("count_include_pad", 0))}
    if dil != [1, 1]:
        if n.op_type != "AveragePool":
            L.unsupported("dilated quantized average pooling")
        attrs["dilations"] = dil
    return attrs, out_hw


@rule("AveragePool", "GlobalAveragePool")
def avgpool(L, n):
    x = _pool_input(L, n)
    _need_f32(L, n, x.name)
    attrs, (oh, ow) = pool_window(L, n, x.shape, n.op_type == "GlobalAveragePool")
    xi = L.nhwc(x.name)
    L.out(n.outputs[0], F32, (x.shape[0], x.shape[1], oh, ow), "nhwc")
    L.emit("avgpool", [xi], [n.outputs[0]], attrs)


@rule("LRN")
def lrn(L, n):
    x = L.t[n.inputs[0]]
    _need_f32(L, n, x.name)
    a = n.attrs
    if "size" not in a or a["size"] < 1:
        L.fail("LRN needs a positive size")
    L.out(n.outputs[0], F32, x.shape, x.layout)
    L.emit("lrn", [x.name], [n.outputs[0]], {
        "axis": L.axis(x, 1), "size": a["size"], "alpha": a.get("alpha", 1e-4),
        "beta": a.get("beta", 0.75), "bias": a.get("bias", 1.0)})


@rule("Concat")
def concat(L, n):
    names = [i for i in n.inputs if i]
    xs = [L.t[i] for i in names]
    rank = len(xs[0].shape)
    axis = n.attrs.get("axis")
    if axis is None or not -rank <= axis < rank:
        L.fail(f"axis {axis} is invalid for rank {rank}")
    axis %= rank
    if any(x.dtype != xs[0].dtype or len(x.shape) != rank for x in xs):
        L.fail("inputs differ in dtype or rank")
    for x in xs:
        if x.shape[:axis] + x.shape[axis + 1:] != xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
            L.fail(f"input shapes {[x.shape for x in xs]} do not concatenate on axis {axis}")
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    layout = L.like(names) if rank == 4 else "nchw"
    ins = [L.in_layout(i, layout, 4) for i in names]
    out = L.out(n.outputs[0], xs[0].dtype, shape, layout, xs[0].qparams)
    L.emit("concat", ins, [n.outputs[0]], {"axis": L.axis(out, axis)})


def _view(L, n, name, shape):
    x = L.t[L.nchw(name)]
    if int(np.prod(shape, dtype=np.int64)) != int(np.prod(x.shape, dtype=np.int64)):
        L.fail(f"cannot reshape {x.shape} to {tuple(shape)}")
    L.out(n.outputs[0], x.dtype, shape, qparams=x.qparams)
    L.emit("view", [x.name], [n.outputs[0]])


def reshape_target(L, in_shape, target, allowzero):
    target = [int(s) for s in target]
    shape = [in_shape[i] if s == 0 and not allowzero and i < len(in_shape) else s
             for i, s in enumerate(target)]
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        L.fail(f"invalid target shape {target}")
    total = int(np.prod(in_shape, dtype=np.int64))
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or total % known:
            L.fail(f"cannot reshape {tuple(in_shape)} to {target}")
        shape[shape.index(-1)] = total // known
    return tuple(shape)


@rule("Reshape")
def reshape(L, n):
    x = L.t[n.inputs[0]]
    target = L.const(n.input(1), "shape").reshape(-1)
    _view(L, n, x.name, reshape_target(L, x.shape, target, n.attrs.get("allowzero", 0)))


@rule("Flatten")
def flatten(L, n):
    x = L.t[n.inputs[0]]
    axis = n.attrs.get("axis", 1) % (len(x.shape) + 1) if x.shape else 0
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    _view(L, n, x.name, (outer, int(np.prod(x.shape[axis:], dtype=np.int64))))


@rule("Squeeze", "Unsqueeze")
def squeeze(L, n):
    x = L.t[n.inputs[0]]
    axes = n.attrs.get("axes")
    if axes is None and n.input(1):
        axes = [int(v) for v in L.const(n.input(1), "axes").reshape(-1)]
    shape = list(x.shape)
    if n.op_type == "Squeeze":
        rank = len(shape)
        axes = [a % rank for a in axes] if axes else [i for i, d in enumerate(shape) if d == 1]
        if any(shape[a] != 1 for a in axes):
            L.fail(f"cannot squeeze axes {axes} of shape {x.shape}")
        shape = [d for i, d in enumerate(shape) if i not in axes]
    else:
        rank = len(shape) + len(axes or [])
        for a in sorted(a % rank for a in axes or []):
            shape.insert(a, 1)
    _view(L, n, x.name, shape)


@rule("Identity", "Dropout")
def identity(L, n):
    if len(n.outputs) > 1 and n.outputs[1] and n.outputs[1] in L.users:
        L.unsupported("the Dropout mask output is not supported")
    _view(L, n, n.inputs[0], L.t[n.inputs[0]].shape)


@rule("Transpose")
def transpose(L, n):
    x = L.t[n.inputs[0]]
    rank = len(x.shape)
    perm = list(n.attrs.get("perm", range(rank - 1, -1, -1)))
    if sorted(perm) != list(range(rank)):
        L.fail(f"perm {perm} is not a permutation of {rank} axes")
    if rank > 6:
        L.unsupported("transposes beyond rank 6")
    phys = [TO_NHWC.index(p) for p in perm] if x.layout == "nhwc" else perm
    L.out(n.outputs[0], x.dtype, [x.shape[p] for p in perm], qparams=x.qparams)
    L.emit("transpose", [x.name], [n.outputs[0]], {"perm": phys})


@rule("Pad")
def pad(L, n):
    x = L.t[n.inputs[0]]
    rank = len(x.shape)
    pads = n.attrs.get("pads")
    if pads is None:
        pads = [int(v) for v in L.const(n.input(1), "pads").reshape(-1)]
    if n.input(3):
        axes = [int(a) % rank for a in L.const(n.input(3), "axes").reshape(-1)]
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[a + rank] = pads[k], pads[k + len(axes)]
        pads = full
    if len(pads) != 2 * rank:
        L.fail(f"{len(pads)} pads for rank {rank}")
    if min(pads) < 0:
        L.unsupported("negative pads (cropping)")
    mode = n.attrs.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        L.unsupported(f"mode '{mode}'")
    value = n.attrs.get("value", n.attrs.get("_int_value", 0.0))
    if n.input(2):
        value = float(L.const(n.input(2), "constant_value").reshape(-1)[0])
    shape = [d + pads[i] + pads[i + rank] for i, d in enumerate(x.shape)]
    if x.layout == "nhwc":
        pads = [pads[p] for p in TO_NHWC] + [pads[p + 4] for p in TO_NHWC]
    if mode == "reflect" and any(p >= d for p, d in zip(pads, list(x.phys) * 2) if p):
        L.fail("reflect pads must be smaller than the padded dimension")
    L.out(n.outputs[0], x.dtype, shape, x.layout, x.qparams)
    L.emit("pad", [x.name], [n.outputs[0]], {"pads": pads, "mode": mode, "value": float(value)})
