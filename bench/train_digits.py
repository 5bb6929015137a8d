"""Train the shipped default model: a small CNN on scikit-learn's bundled 8x8 digits, numpy only.

    python bench/train_digits.py [--out src/edgert/data]

Net: Conv 3x3 1->16 pad 1 + Relu, Conv 3x3 16->32 stride 2 pad 1 + Relu, Flatten (32*4*4),
Gemm -> 10 logits. Input "input" float32 [N,1,8,8] (dynamic batch "N"), pixels scaled to [0,1].
Split: stratified, 20% held out, random_state 0. Adam, minibatches of 64, im2col convolutions.

Writes digits_float.onnx, digits_int8.onnx (onnxruntime quantize_static, see QUANT below) and
digits_test.npz (x float32 [n,1,8,8], y int64: the held-out split) and prints both accuracies.

QUANT: QOperator format (QLinearConv / QGemm between one QuantizeLinear and one
DequantizeLinear: the plainest integer graph), uint8 activations (asymmetric, the natural fit
for post-Relu tensors and onnxruntime's long-standing default), int8 weights per output channel
(the most accurate weights), reduce_range=True (7-bit weights). reduce_range keeps onnxruntime's
own x64 u8 x s8 kernels, whose int16 pair sums can otherwise saturate, exact: so onnxruntime's
int8 output is the exact integer result and an exact runtime can be compared with it bit for bit.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 0


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, stratify=y, random_state=SEED)


def im2col(x, k, stride, pad):
    """x [B,C,H,W] -> cols [B*OH*OW, C*k*k] (column order c, kh, kw, as ONNX weights)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = np.empty((b, c, k, k, oh, ow), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(b * oh * ow, c * k * k), (oh, ow)


def col2im(dcols, shape, k, stride, pad, ohw):
    b, c, h, w = shape
    oh, ow = ohw
    d = dcols.reshape(b, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((b, c, h + 2 * pad, w + 2 * pad), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += d[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


LAYERS = (("W1", (16, 1, 3, 3)), ("B1", (16,)), ("W2", (32, 16, 3, 3)), ("B2", (32,)),
          ("W3", (10, 512)), ("B3", (10,)))


def init_params(rng):
    p = {}
    for name, shape in LAYERS:
        fan_in = int(np.prod(shape[1:])) if name[0] == "W" else 1
        p[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32) \
            if name[0] == "W" else np.zeros(shape, np.float32)
    return p


def conv(x, w, bias, stride):
    cols, (oh, ow) = im2col(x, 3, stride, 1)
    z = cols @ w.reshape(w.shape[0], -1).T + bias
    return z.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2), cols, (oh, ow)


def forward(p, x):
    z1, c1, s1 = conv(x, p["W1"], p["B1"], 1)
    a1 = np.maximum(z1, 0)
    z2, c2, s2 = conv(a1, p["W2"], p["B2"], 2)
    a2 = np.maximum(z2, 0)
    f = a2.reshape(x.shape[0], -1)
    logits = f @ p["W3"].T + p["B3"]
    return logits, (x, z1, c1, s1, a1, z2, c2, s2, f)


def loss_and_grads(p, x, y):
    logits, (x, z1, c1, s1, a1, z2, c2, s2, f) = forward(p, x)
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    n = x.shape[0]
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    dl = prob
    dl[np.arange(n), y] -= 1
    dl /= n
    g = {"W3": dl.T @ f, "B3": dl.sum(0)}
    dz2 = (dl @ p["W3"]).reshape(z2.shape) * (z2 > 0)
    dz2m = dz2.transpose(0, 2, 3, 1).reshape(-1, z2.shape[1])
    g["W2"] = (dz2m.T @ c2).reshape(p["W2"].shape)
    g["B2"] = dz2m.sum(0)
    dc2 = dz2m @ p["W2"].reshape(p["W2"].shape[0], -1)
    dz1 = col2im(dc2, a1.shape, 3, 2, 1, s2) * (z1 > 0)
    dz1m = dz1.transpose(0, 2, 3, 1).reshape(-1, z1.shape[1])
    g["W1"] = (dz1m.T @ c1).reshape(p["W1"].shape)
    g["B1"] = dz1m.sum(0)
    return loss, g


def train(xtr, ytr, epochs=40, batch=64, lr=3e-3):
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, t = 0.9, 0.999, 0
    for epoch in range(epochs):
        order = rng.permutation(len(xtr))
        step_lr = lr * (0.5 * (1 + np.cos(np.pi * epoch / epochs)))  # cosine decay
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            _, g = loss_and_grads(p, xtr[idx], ytr[idx])
            t += 1
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh, vh = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                p[k] = (p[k] - step_lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return p


def to_onnx(p):
    init = [numpy_helper.from_array(p[k], k) for k, _ in LAYERS]
    nodes = [
        helper.make_node("Conv", ["input", "W1", "B1"], ["conv1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "W2", "B2"], ["conv2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("Flatten", ["relu2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "W3", "B3"], ["logits"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], init)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="edgert-train-digits")
    m.ir_version = 8
    m.doc_string = "8x8 digits CNN; input pixels in [0,1] (sklearn digits / 16)"
    onnx.checker.check_model(m, full_check=True)
    return m


class _Calib:
    def __init__(self, x, batch=256):
        self.it = iter([{"input": x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.it, None)


def quantize(float_path, out_path, xcal):
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    with tempfile.TemporaryDirectory() as td:
        pre = os.path.join(td, "pre.onnx")
        quant_pre_process(float_path, pre)
        quantize_static(pre, out_path, _Calib(xcal), quant_format=QuantFormat.QOperator,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    m = onnx.load(out_path)
    onnx.checker.check_model(m)
    m.doc_string = ("8x8 digits CNN, onnxruntime quantize_static: QOperator, u8 activations, "
                    "s8 per-channel weights, reduce_range; input pixels in [0,1]")
    onnx.save(m, out_path)


def accuracy(path, x, y):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return float((s.run(None, {"input": x})[0].argmax(1) == y).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] /
                                         "src" / "edgert" / "data"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xtr, xte, ytr, yte = load_split()
    t0 = time.perf_counter()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency
    with threadpool_limits(1):  # tiny matmuls: BLAS threads only spin, 100x slower when busy
        p = train(xtr, ytr)
    print(f"trained in {time.perf_counter() - t0:.1f}s on {len(xtr)} images")
    numpy_acc = float((forward(p, xte)[0].argmax(1) == yte).mean())
    fpath, qpath = str(out / "digits_float.onnx"), str(out / "digits_int8.onnx")
    onnx.save(to_onnx(p), fpath)
    quantize(fpath, qpath, xtr)
    np.savez_compressed(out / "digits_test.npz", x=xte.astype(np.float32), y=yte.astype(np.int64))
    facc, qacc = accuracy(fpath, xte, yte), accuracy(qpath, xte, yte)
    print(f"held-out accuracy ({len(xte)} images): numpy {numpy_acc:.4f}, "
          f"onnxruntime float {facc:.4f}, onnxruntime int8 {qacc:.4f}")
    for f in ("digits_float.onnx", "digits_int8.onnx", "digits_test.npz"):
        print(f"{f}: {os.path.getsize(out / f)} bytes")
    return 0 if min(facc, qacc) >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
