"""A tracing ONNX graph builder for the benchmark models.

Every layer method both appends an ONNX node and computes the layer's value on a small
calibration batch with numpy. That trace gives BatchNormalization data-dependent running
statistics (so random-weight nets keep well-scaled activations, like trained ones: no dead or
exploding layers) and lets `check` compare onnxruntime's output with an independent numpy forward.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _round_stat(a):
    # fp16 rounding makes the stored statistics insensitive to BLAS summation order, so the
    # model bytes are the same on every machine.
    return np.asarray(a, np.float16).astype(np.float32)


def _conv_np(x, w, b, strides, pads, group):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    sh, sw = strides
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    xg = xp.reshape(n, group, cg, xp.shape[2], xp.shape[3])
    wg = w.reshape(group, m // group, cg, kh, kw)
    y = np.zeros((n, group, m // group, oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            patch = xg[:, :, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            wij = wg[:, :, :, i, j]
            if group == 1:
                y[:, 0] += np.tensordot(wij[0], patch[:, 0], axes=([1], [1])).transpose(1, 0, 2, 3)
            elif cg == 1 and m == group:  # depthwise
                y[:, :, 0] += patch[:, :, 0] * wij[None, :, 0, 0, None, None]
            else:
                y += np.einsum("gmc,ngchw->ngmhw", wij, patch, optimize=True)
    y = y.reshape(n, m, oh, ow)
    if b is not None:
        y += b[None, :, None, None]
    return y


def _pool_np(x, kernel, strides, pads, kind):
    kh, kw = kernel
    sh, sw = strides
    pt, pl, pb, pr = pads
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    ones = np.pad(np.ones(x.shape[2:], np.float32), ((pt, pb), (pl, pr)))
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    acc = np.full(x.shape[:2] + (oh, ow), fill, np.float32)
    cnt = np.zeros((oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            sl = (slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
            patch = xp[(slice(None), slice(None)) + sl]
            if kind == "max":
                acc = np.maximum(acc, patch)
            else:
                acc = acc + patch
                cnt += ones[sl]
    return acc if kind == "max" else acc / cnt  # count_include_pad = 0


class NetBuilder:
    """Builds one float ONNX model; `x` handles are tensor names, values live in self.val."""

    def __init__(self, name, seed, input_shape, calib):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.val = [], [], {}
        self.counts = {}
        self.input_shape = list(input_shape)
        self.val["input"] = np.asarray(calib, np.float32)

    # -- plumbing ---------------------------------------------------------------------------
    def _fresh(self, prefix):
        k = self.counts.get(prefix, 0)
        self.counts[prefix] = k + 1
        return f"{prefix}_{k}"

    def const(self, prefix, arr):
        name = self._fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def _node(self, op, inputs, value, prefix=None, **attrs):
        out = self._fresh(prefix or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.val[out] = np.asarray(value, np.float32)
        return out

    def shape(self, x):
        return self.val[x].shape

    # -- layers -----------------------------------------------------------------------------
    def conv(self, x, cout, k, stride=1, pads=None, group=1, bias=False):
        """He-initialized Conv; pads [top, left, bottom, right] default to 'same' for odd k."""
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        if pads is None:
            pads = [kh // 2, kw // 2, kh // 2, kw // 2]
        cin = self.shape(x)[1]
        fan_in = (cin // group) * kh * kw
        w = (self.rng.standard_normal((cout, cin // group, kh, kw)) *
             np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.05).astype(np.float32) if bias else None
        inputs = [x, self.const("W", w)] + ([self.const("B", b)] if bias else [])
        y = _conv_np(self.val[x], w, b, (sh, sw), pads, group)
        return self._node("Conv", inputs, y, kernel_shape=[kh, kw], strides=[sh, sw],
                          pads=[pads[0], pads[1], pads[2], pads[3]], group=group,
                          dilations=[1, 1])

    ACT_SHIFT = (0.5, 1.5)

    def bn(self, x, gamma_range=(0.5, 1.5), act=True):
        """BatchNormalization whose running stats are the traced batch's (data-dependent init).

        act: an activation follows. Its beta is then a positive multiple of gamma, so most
        units stay active: random nets whose activations are centered then half cut amplify
        any perturbation (quantization noise) by ~1.2x per layer, unlike trained nets.
        """
        v = self.val[x]
        c = v.shape[1]
        gamma = self.rng.uniform(*gamma_range, c).astype(np.float32)
        if act:
            beta = (gamma * self.rng.uniform(*self.ACT_SHIFT, c)).astype(np.float32)
        else:
            beta = (self.rng.standard_normal(c) * 0.1).astype(np.float32)
        mean = _round_stat(v.mean(axis=(0, 2, 3), dtype=np.float64))
        var = _round_stat(v.var(axis=(0, 2, 3), dtype=np.float64) + 1e-3)
        eps = 1e-5
        y = ((v - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps) *
             gamma[None, :, None, None] + beta[None, :, None, None])
        inputs = [x] + [self.const(p, a) for p, a in
                        (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        return self._node("BatchNormalization", inputs, y, prefix="bn", epsilon=eps)

    def relu(self, x):
        return self._node("Relu", [x], np.maximum(self.val[x], 0))

    def relu6(self, x):
        lo = self.const("clip_min", np.array(0.0, np.float32))
        hi = self.const("clip_max", np.array(6.0, np.float32))
        return self._node("Clip", [x, lo, hi], np.clip(self.val[x], 0, 6), prefix="relu6")

    def hardsigmoid(self, x):
        y = np.clip(self.val[x] / 6 + 0.5, 0, 1).astype(np.float32)
        return self._node("HardSigmoid", [x], y, alpha=1 / 6, beta=0.5)

    def hardswish(self, x):
        """x · HardSigmoid(x): HardSwish in opset 13 (the op itself came with 14), as
        onnxruntime's pre-processing writes it anyway."""
        return self.mul(x, self.hardsigmoid(x))

    def add(self, a, b):
        return self._node("Add", [a, b], self.val[a] + self.val[b])

    def mul(self, a, b):
        return self._node("Mul", [a, b], self.val[a] * self.val[b])

    def concat(self, xs, axis=1):
        return self._node("Concat", xs, np.concatenate([self.val[x] for x in xs], axis),
                          axis=axis)

    def maxpool(self, x, k, stride, pad):
        y = _pool_np(self.val[x], (k, k), (stride, stride), [pad] * 4, "max")
        return self._node("MaxPool", [x], y, kernel_shape=[k, k], strides=[stride, stride],
                          pads=[pad] * 4)

    def avgpool(self, x, kernel, stride, pads):
        y = _pool_np(self.val[x], kernel, (stride, stride), pads, "avg")
        return self._node("AveragePool", [x], y, kernel_shape=list(kernel),
                          strides=[stride, stride], pads=list(pads), count_include_pad=0)

    def gap(self, x):
        return self._node("GlobalAveragePool", [x], self.val[x].mean(axis=(2, 3), keepdims=True))

    def flatten(self, x):
        v = self.val[x]
        return self._node("Flatten", [x], v.reshape(v.shape[0], -1), axis=1)

    def reshape(self, x, shape):
        s = self.const("shape", np.array(shape, np.int64))
        return self._node("Reshape", [x, s], self.val[x].reshape(shape))

    def transpose(self, x, perm):
        return self._node("Transpose", [x], self.val[x].transpose(perm), perm=list(perm))

    def gemm(self, x, nout, he=True, center=False):
        """Gemm with transB=1 (weights [out, in]), as PyTorch's Linear exports.

        center: a classifier head; its bias cancels the traced batch's mean logits, so the
        logits (and the top-1 class) depend on the input rather than on a shared offset.
        center="act": a hidden layer; centered, then shifted like bn(act=True).
        """
        nin = self.shape(x)[1]
        std = np.sqrt(2.0 / nin) if he else np.sqrt(1.0 / nin)
        w = (self.rng.standard_normal((nout, nin)) * std).astype(np.float32)
        b = (self.rng.standard_normal(nout) * 0.05).astype(np.float32)
        if center:
            z = self.val[x] @ w.T
            b = b - z.mean(axis=0, dtype=np.float64)
            if center == "act":  # an activation follows: shift as bn(act=True) does
                b = b + z.std(axis=0, dtype=np.float64) * self.rng.uniform(*self.ACT_SHIFT, nout)
            b = _round_stat(b)
        y = self.val[x] @ w.T + b
        return self._node("Gemm", [x, self.const("W", w), self.const("B", b)], y,
                          alpha=1.0, beta=1.0, transB=1)

    def softmax(self, x):
        v = self.val[x]
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return self._node("Softmax", [x], e / e.sum(axis=-1, keepdims=True), axis=-1)

    # -- output -----------------------------------------------------------------------------
    def model(self, out):
        """The finished ModelProto, with concrete batch 1 on input and output."""
        oshape = [1] + list(self.shape(out)[1:])
        g = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, oshape)],
            initializer=self.inits)
        # rename the last node's output to "output"
        last = g.node[-1]
        old = last.output[0]
        assert old == out, "the output must be the last node's"
        last.output[0] = "output"
        self.val["output"] = self.val.pop(old)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edgert-bench")
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m
