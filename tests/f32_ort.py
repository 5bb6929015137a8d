"""Helpers for the fp32 op tests: single-node onnxruntime oracles and the 1-vs-2-thread check."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from oplib import run_op

RNG = np.random.default_rng(20240601)


def rand(*shape, lo=-1.0, hi=1.0):
    return np.asarray(RNG.uniform(lo, hi, size=shape), dtype=np.float32)


def ort_node(op_type, inputs, attrs=None, initializers=None, opset=17, n_out=1):
    """Run one ONNX node on onnxruntime. inputs: {name: array} (graph inputs, in order);
    initializers: {name: array} appended after the inputs."""
    initializers = initializers or {}
    names = list(inputs) + list(initializers)
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op_type, names, outs, **(attrs or {}))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [onnx.numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=9 if opset <= 20 else 10)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def run_both(op_type, inputs, out_shape, attrs):
    """Run an edgert op with 1 and 2 threads; assert the two agree bit for bit; return one."""
    y1 = run_op(op_type, inputs, [(tuple(out_shape), np.float32)], attrs, threads=1)[0]
    y2 = run_op(op_type, inputs, [(tuple(out_shape), np.float32)], attrs, threads=2)[0]
    assert y1.shape == tuple(out_shape)
    assert np.array_equal(y1.view(np.uint32), y2.view(np.uint32)), "threads=1 and 2 differ"
    return y1


def nchw_to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
