"""Run one internal op through the C++ executor: the harness for op tests."""
import numpy as np

from edgert import _core

_DT = {np.dtype(np.uint8): "u8", np.dtype(np.int8): "i8", np.dtype(np.int32): "i32",
       np.dtype(np.int64): "i64", np.dtype(np.float32): "f32"}


def run_op(op_type, inputs, outputs, attrs, threads=1):
    """inputs: arrays; outputs: [(shape, dtype)]; returns the op's outputs as arrays. The op
    gets private copies of the array attributes and frees those it says it no longer reads
    (release_unread, as sessions do), so a kernel that still read them would read freed
    memory: wrong bytes natively, an error under AddressSanitizer."""
    inputs = [np.ascontiguousarray(a) for a in inputs]
    attrs = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in attrs.items()}
    return make_executor(op_type, inputs, outputs, attrs, threads, release=True).run(inputs)


def make_executor(op_type, inputs, outputs, attrs, threads=1, release=False):
    """The one-op executor run_op runs (for its packed_attrs)."""
    inputs = [np.ascontiguousarray(a) for a in inputs]
    tensors, offset = [], 0
    for a in inputs:
        tensors.append({"dtype": _DT[a.dtype], "shape": list(a.shape), "kind": "input"})
    for shape, dtype in outputs:
        tensors.append({"dtype": _DT[np.dtype(dtype)], "shape": list(shape), "kind": "output"})
    n_in = len(inputs)
    op = {"type": op_type, "name": op_type + "_under_test", "inputs": list(range(n_in)),
          "outputs": list(range(n_in, n_in + len(outputs))), "attrs": attrs}
    return _core.Executor(offset, tensors, [op], list(range(n_in)),
                          list(range(n_in, n_in + len(outputs))), threads, release)
