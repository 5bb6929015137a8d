"""Helpers for the 8-bit op tests: single-node onnxruntime models and exact fp32 arithmetic."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from edgert.tables import fmaf  # noqa: F401 (re-exported: the fp32 FMA the oracles use)

F32 = np.float32
_TP = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
       np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}


def const(name, value, dtype):
    a = np.asarray(value, dtype=dtype)
    return helper.make_tensor(name, _TP[a.dtype], list(a.shape), a.flatten().tolist())


def ort_node(op_type, inputs, consts, attrs=None, domain="", opset=13, n_out=1,
             optimize=True):
    """Run one node. inputs: list of (name, array) fed at run time; consts: list of
    (name, value, dtype) initializers; the node's input order is given by `inputs` names then
    `consts` names unless attrs contains '_order' (a list of names, '' for absent)."""
    attrs = dict(attrs or {})
    order = attrs.pop("_order", None)
    names = order if order is not None else [n for n, _ in inputs] + [c[0] for c in consts]
    outs = [f"Y{i}" for i in range(n_out)]
    node = helper.make_node(op_type, names, outs, domain=domain or None, **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, _TP[a.dtype], list(a.shape)) for n, a in inputs],
        [onnx.ValueInfoProto(name=o) for o in outs],
        [const(*c) for c in consts])
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    res = sess.run(None, {n: a for n, a in inputs})
    return res if n_out > 1 else res[0]


def qrange(dt):
    i = np.iinfo(dt)
    return int(i.min), int(i.max)


def rand_q(rng, shape, dt):
    lo, hi = qrange(dt)
    return rng.integers(lo, hi + 1, size=shape).astype(dt)


def nchw_to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
