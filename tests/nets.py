"""Small ONNX models built in code for the API, error and op tests."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def model(nodes, inputs, outputs, inits=(), opset=OPSET, ms=False):
    """A checked ModelProto from helper pieces; inputs/outputs as (name, elem_type, shape)."""
    g = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m


def tiny_cnn(batch=1, seed=0):
    """Conv-Relu, depthwise Conv-Clip, residual Add, MaxPool, GAP, Gemm, Softmax (float)."""
    rng = np.random.default_rng(seed)
    f = lambda *s, sd=0.3: rng.normal(0, sd, s).astype(np.float32)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("Add", ["r2", "r1"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["g"]),
        helper.make_node("Flatten", ["g"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=-1),
    ]
    inits = {"w1": f(8, 3, 3, 3), "b1": f(8, sd=0.1), "w2": f(8, 1, 3, 3), "b2": f(8, sd=0.1),
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
             "wf": f(10, 8), "bf": f(10, sd=0.1)}
    n = batch if batch else "N"
    return model(nodes, [("input", TensorProto.FLOAT, [n, 3, 16, 16])],
                 [("prob", TensorProto.FLOAT, [n, 10])], inits)


def quantize(float_model, path, fmt="QOperator", per_channel=False, act="QUInt8",
             weight="QInt8", reduce_range=False, samples=8, seed=0):
    """onnxruntime's quantize_static on float_model with random calibration data; returns path."""
    import os
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    inp = float_model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    data = [{inp.name: rng.normal(0, 1, shape).astype(np.float32)} for _ in range(samples)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "float.onnx")
        onnx.save(float_model, src)
        quantize_static(src, str(path), Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=per_channel, activation_type=getattr(QuantType, act),
                        weight_type=getattr(QuantType, weight), reduce_range=reduce_range)
    return str(path)


def ort_session(path_or_bytes, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])
