"""Deterministic benchmark models: float ONNX builders and their onnxruntime-quantized variants.

Every model is a float32 ONNX graph (opset 13) with one input "input" of CONCRETE shape,
batch 1 (NCHW for the conv nets; the MLPs take [1,1,28,28] and Flatten it), and one output
"output". Weights are He-initialized from a fixed seed; BatchNormalization nodes sit where the
real nets have them, with running statistics taken from a traced calibration batch so that
activations stay well scaled (see netbuilder.py).

    build_float(name) -> bytes            the float model (cached on disk)
    build_quantized(name, variant) -> str path of the quantized model (cached on disk)
    sample_input(name, seed, batch=1)     an input drawn from the model's input distribution

Quantization is onnxruntime's own flow: quant_pre_process (shape inference + basic graph
optimizations, which fold BatchNormalization into Conv), then quantize_static with MinMax
calibration on CALIB_SAMPLES inputs from sample_input(name, 1000 + i).

The cache lives in $EDGERT_MODEL_CACHE (default ~/.cache/edgert-models), in a folder keyed by a
hash of this file, netbuilder.py and the onnx / onnxruntime / numpy versions.

`python -m bench.models [names...]` builds, checks and times everything and prints op counts.
"""
import contextlib
import functools
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from . import netbuilder
from .netbuilder import NetBuilder

CALIB_SAMPLES = 8
_TRACE_BATCH = 8  # samples whose activations set the BatchNormalization statistics


# -- architectures ---------------------------------------------------------------------------
def _divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def mobilenet_v2(b, width=1.0):
    """MobileNetV2 (torchvision layout): inverted residuals, ReLU6 as Clip(0, 6)."""
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = _divisible(32 * width)
    x = b.relu6(b.bn(b.conv("input", cin, 3, 2)))
    for t, c, n, s in cfg:
        cout = _divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            h, hidden = x, cin * t
            if t != 1:
                h = b.relu6(b.bn(b.conv(h, hidden, 1)))
            h = b.relu6(b.bn(b.conv(h, hidden, 3, stride, group=hidden)))
            h = b.bn(b.conv(h, cout, 1), act=False)
            x = b.add(x, h) if stride == 1 and cin == cout else h
            cin = cout
    x = b.relu6(b.bn(b.conv(x, _divisible(1280 * max(1.0, width)), 1)))
    return b.gemm(b.flatten(b.gap(x)), 1000, he=False, center=True)


def mobilenet_v3_small(b):
    """MobileNetV3-Small (torchvision layout): HardSwish and ReLU, 3x3 and 5x5 depthwise convs,
    squeeze-and-excitation (GlobalAveragePool, 1x1 convs, HardSigmoid, Mul) in most blocks."""
    # (kernel, expanded, out, squeeze-excite, HardSwish, stride)
    cfg = [(3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2),
           (3, 88, 24, False, False, 1), (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1),
           (5, 240, 40, True, True, 1), (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1),
           (5, 288, 96, True, True, 2), (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1)]
    x = b.hardswish(b.bn(b.conv("input", 16, 3, 2)))
    cin = 16
    for k, exp, cout, se, hs, s in cfg:
        act = b.hardswish if hs else b.relu
        h = x
        if exp != cin:
            h = act(b.bn(b.conv(h, exp, 1)))
        h = act(b.bn(b.conv(h, exp, k, s, group=exp)))
        if se:
            g = b.relu(b.conv(b.gap(h), _divisible(exp // 4), 1, bias=True))
            h = b.mul(h, b.hardsigmoid(b.conv(g, exp, 1, bias=True)))
        h = b.bn(b.conv(h, cout, 1), act=False)
        x = b.add(x, h) if s == 1 and cin == cout else h
        cin = cout
    x = b.gap(b.hardswish(b.bn(b.conv(x, 576, 1))))
    x = b.hardswish(b.gemm(b.flatten(x), 1024, center="act"))
    return b.gemm(x, 1000, he=False, center=True)


def resnet18(b):
    """ResNet-18: 7x7 stem, MaxPool, 4 stages of 2 basic blocks, GAP, FC 1000."""
    x = b.maxpool(b.relu(b.bn(b.conv("input", 64, 7, 2))), 3, 2, 1)
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for i in range(2):
            s = stride if i == 0 else 1
            h = b.relu(b.bn(b.conv(x, cout, 3, s)))
            h = b.bn(b.conv(h, cout, 3), gamma_range=(0.2, 0.6), act=False)
            skip = b.bn(b.conv(x, cout, 1, s)) if (s != 1 or cin != cout) else x
            x = b.relu(b.add(h, skip))
            cin = cout
    return b.gemm(b.flatten(b.gap(x)), 1000, he=False, center=True)


def ds_cnn(b):
    """DS-CNN (keyword spotting, 'Hello Edge'): 49x10 MFCC, conv 10x4/2, 4 DS blocks, 12 classes.

    Convs carry a bias before BatchNormalization (as the Keras original), so folding must fold
    the bias too; the stem's TF 'same' padding is asymmetric ([4,1,5,1]: 49x10 -> 25x5).
    """
    x = b.relu(b.bn(b.conv("input", 64, (10, 4), 2, pads=[4, 1, 5, 1], bias=True)))
    for _ in range(4):
        x = b.relu(b.bn(b.conv(x, 64, 3, 1, group=64, bias=True)))
        x = b.relu(b.bn(b.conv(x, 64, 1, bias=True)))
    h, w = b.shape(x)[2:]
    x = b.avgpool(x, (h, w), 1, [0, 0, 0, 0])
    return b.gemm(b.flatten(x), 12, he=False, center=True)


def mlp(b, softmax=False):
    """784-256-256-10 with Relu (optionally a final Softmax), input Flattened from 1x28x28."""
    x = b.flatten("input")
    x = b.relu(b.gemm(x, 256, center="act"))
    x = b.relu(b.gemm(x, 256, center="act"))
    x = b.gemm(x, 10, he=False, center=True)
    return b.softmax(x) if softmax else x


def _shuffle(b, x, groups):
    _, c, h, w = b.shape(x)
    x = b.reshape(x, [-1, groups, c // groups, h, w])
    x = b.transpose(x, [0, 2, 1, 3, 4])
    return b.reshape(x, [-1, c, h, w])


def shufflenet_g3(b):
    """ShuffleNet-v1-style net (g=3, 0.5x widths, fewer units) at 112x112.

    Unit: grouped 1x1 + BN + Relu, channel shuffle (Reshape/Transpose/Reshape), depthwise 3x3 +
    BN, grouped 1x1 + BN, then Add (stride 1) or Concat with AvgPool 3x3/2 of the input
    (stride 2), then Relu.
    """
    g = 3
    x = b.maxpool(b.relu(b.bn(b.conv("input", 24, 3, 2))), 3, 2, 1)
    cin = 24
    for cout, units in ((120, 2), (240, 3), (480, 2)):
        for i in range(units):
            stride = 2 if i == 0 else 1
            branch = cout - cin if stride == 2 else cout
            mid = cout // 4
            h = b.relu(b.bn(b.conv(x, mid, 1, group=g)))
            h = _shuffle(b, h, g)
            h = b.bn(b.conv(h, mid, 3, stride, group=mid), act=False)
            h = b.bn(b.conv(h, branch, 1, group=g), gamma_range=(0.3, 0.8), act=False)
            if stride == 2:
                x = b.relu(b.concat([b.avgpool(x, (3, 3), 2, [1, 1, 1, 1]), h]))
            else:
                x = b.relu(b.add(x, h))
            cin = cout
    return b.gemm(b.flatten(b.gap(x)), 1000, he=False, center=True)


# name -> (architecture, input shape, input distribution, seed)
_SPECS = {
    "mobilenet_v2": (functools.partial(mobilenet_v2, width=1.0), [1, 3, 224, 224], "normal", 1),
    "mobilenet_v2_035_96": (functools.partial(mobilenet_v2, width=0.35), [1, 3, 96, 96],
                            "normal", 2),
    "resnet18": (resnet18, [1, 3, 224, 224], "normal", 3),
    "ds_cnn": (ds_cnn, [1, 1, 49, 10], "normal", 4),
    "mlp": (mlp, [1, 1, 28, 28], "uniform", 5),
    "mlp_softmax": (functools.partial(mlp, softmax=True), [1, 1, 28, 28], "uniform", 6),
    "shufflenet_g3": (shufflenet_g3, [1, 3, 112, 112], "normal", 7),
    "mobilenet_v3_small": (mobilenet_v3_small, [1, 3, 224, 224], "normal", 8),
}
MODELS = {name: spec[0] for name, spec in _SPECS.items()}


def input_shape(name):
    return list(_SPECS[name][1])


def sample_input(name, seed, batch=1):
    """Deterministic input: N(0,1) for image/MFCC nets (normalized data), U(0,1) for the MLPs."""
    shape = [batch] + input_shape(name)[1:]
    rng = np.random.default_rng(seed)
    if _SPECS[name][2] == "uniform":
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _one_blas_thread():
    # The trace's matmuls are mid-sized: OpenBLAS threads mostly spin, and on a busy 2-core
    # machine that made tracing 3x slower.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def trace(name):
    """Build the model with its numpy trace: (ModelProto, trace input, trace output)."""
    arch, shape, _, seed = _SPECS[name]
    calib = sample_input(name, 10_000, _TRACE_BATCH)
    b = NetBuilder(name, seed, shape, calib)
    with _one_blas_thread():
        out = arch(b)
    m = b.model(out)
    return m, b.val["input"], b.val["output"]


# -- quantization variants -------------------------------------------------------------------
def _variant(fmt, act, wt, per_channel, reduce_range):
    from onnxruntime.quantization import QuantFormat, QuantType
    return {"quant_format": {"qop": QuantFormat.QOperator, "qdq": QuantFormat.QDQ}[fmt],
            "activation_type": {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}[act],
            "weight_type": {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}[wt],
            "per_channel": per_channel, "reduce_range": reduce_range}


def _variant_names():
    names = []
    for fmt in ("qop", "qdq"):
        for pc in (False, True):
            for act in ("u8", "s8"):
                for rr in (False, True):
                    names.append(f"{fmt}_a{act}_ws8_{'pc' if pc else 'pt'}{'_rr' if rr else ''}")
        names.append(f"{fmt}_au8_wu8_pt")
    return names


# variant name: {qop|qdq}_a{u8|s8}_w{s8|u8}_{pt|pc}[_rr]  (activations, weights, per-tensor or
# per-channel weights, reduce_range)
VARIANTS = {n: n for n in _variant_names()}
MAIN_VARIANTS = ["qop_au8_ws8_pt", "qop_as8_ws8_pc", "qdq_au8_ws8_pt", "qdq_as8_ws8_pc"]
FULL_SET_MODELS = ("mobilenet_v2_035_96", "ds_cnn", "mlp")


def variant_kwargs(variant):
    fmt, act, wt, gran, *rr = variant.split("_")
    if variant not in VARIANTS:
        raise KeyError(variant)
    return _variant(fmt, act[1:], wt[1:], gran == "pc", bool(rr))


def variants_for(name):
    return list(VARIANTS) if name in FULL_SET_MODELS else list(MAIN_VARIANTS)


# -- caching ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def cache_dir():
    import onnxruntime
    h = hashlib.sha256()
    for mod in (sys.modules[__name__], netbuilder):
        h.update(Path(mod.__file__).read_bytes())
    h.update(f"{onnx.__version__}|{onnxruntime.__version__}|{np.__version__}".encode())
    root = Path(os.environ.get("EDGERT_MODEL_CACHE", Path.home() / ".cache" / "edgert-models"))
    d = root / h.hexdigest()[:16]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _atomic_write(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _check_trace(m, x, y):
    """onnxruntime on the built model must agree with the numpy trace (an independent oracle)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for i in range(x.shape[0]):
        got = sess.run(None, {"input": x[i:i + 1]})[0]
        scale = max(1.0, float(np.abs(y[i]).max()))
        err = float(np.abs(got[0] - y[i]).max())
        if err > 1e-3 * scale:
            raise AssertionError(f"onnxruntime vs numpy trace: max err {err} (scale {scale})")


def float_path(name):
    path = cache_dir() / f"{name}.onnx"
    if not path.exists():
        m, x, y = trace(name)
        _check_trace(m, x, y)
        _atomic_write(path, m.SerializeToString())
    return str(path)


def build_float(name):
    return Path(float_path(name)).read_bytes()


class _Reader:
    """The deterministic CalibrationDataReader: sample_input(name, 1000 + i), i < CALIB_SAMPLES."""

    def __init__(self, name):
        self.it = iter([{"input": sample_input(name, 1000 + i)} for i in range(CALIB_SAMPLES)])

    def get_next(self):
        return next(self.it, None)


def _preprocessed_path(name):
    from onnxruntime.quantization import quant_pre_process
    path = cache_dir() / f"{name}.pre.onnx"
    if not path.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
            tmp = Path(td) / "pre.onnx"
            quant_pre_process(float_path(name), str(tmp))
            os.replace(tmp, path)
    return str(path)


def build_quantized(name, variant):
    """Path of `name` quantized by onnxruntime with VARIANTS[variant] (built once, cached)."""
    from onnxruntime.quantization import CalibrationMethod, quantize_static
    kwargs = variant_kwargs(variant)
    path = cache_dir() / f"{name}-{variant}.onnx"
    if not path.exists():
        pre = _preprocessed_path(name)
        with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
            tmp = Path(td) / "q.onnx"
            quantize_static(pre, str(tmp), _Reader(name), calibrate_method=CalibrationMethod.MinMax,
                            **kwargs)
            onnx.checker.check_model(str(tmp))
            os.replace(tmp, path)
    return str(path)


def op_counts(model):
    """{'domain:op_type': count} over the main graph ('' domain printed as 'ai.onnx')."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    counts = {}
    for n in model.graph.node:
        k = f"{n.domain or 'ai.onnx'}:{n.op_type}"
        counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items()))


def _main(argv):
    import onnxruntime as ort
    names = argv or list(MODELS)
    for name in names:
        t0 = time.perf_counter()
        fpath = float_path(name)
        t_float = time.perf_counter() - t0
        print(f"== {name}: float build {t_float:.1f}s, {os.path.getsize(fpath) / 1e6:.2f} MB")
        print("   float ops:", op_counts(fpath))
        t0 = time.perf_counter()
        _preprocessed_path(name)
        print(f"   pre-process {time.perf_counter() - t0:.1f}s; ops:",
              op_counts(_preprocessed_path(name)))
        xs = [sample_input(name, s) for s in range(8)]
        fsess = ort.InferenceSession(fpath, providers=["CPUExecutionProvider"])
        ref = [fsess.run(None, {"input": x})[0] for x in xs]
        for v in variants_for(name):
            t0 = time.perf_counter()
            q = build_quantized(name, v)
            dt = time.perf_counter() - t0
            qsess = ort.InferenceSession(q, providers=["CPUExecutionProvider"])
            got = [qsess.run(None, {"input": x})[0] for x in xs]
            agree = sum(int(np.argmax(a) == np.argmax(r)) for a, r in zip(got, ref))
            corr = np.mean([np.corrcoef(a.ravel(), r.ravel())[0, 1] for a, r in zip(got, ref)])
            print(f"   {v:22s} {dt:6.1f}s {os.path.getsize(q) / 1e6:6.2f} MB top1 {agree}/8 "
                  f"corr {corr:.4f} {op_counts(q)}")


if __name__ == "__main__":
    _main(sys.argv[1:])
