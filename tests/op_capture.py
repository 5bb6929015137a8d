"""A pytest plugin (`-p op_capture`, with $EDGERT_OP_CAPTURE set to a file): records every
oplib.run_op call of the op tests and the outputs it gave, so that another build of edgert (the
aarch64 one under qemu, csrc/tests/aarch64_ops.sh) can replay the same cases and must give the
same bytes. The outputs recorded here passed the tests' own oracles (onnxruntime, numpy)."""
import os
import pickle

import numpy as np

import oplib

_cases = []
_run_op = oplib.run_op


def _recording_run_op(op_type, inputs, outputs, attrs, threads=1):
    out = _run_op(op_type, inputs, outputs, attrs, threads)
    _cases.append((op_type, [np.array(a) for a in inputs], list(outputs), dict(attrs), threads,
                   [np.array(o) for o in out]))
    return out


oplib.run_op = _recording_run_op  # before the test modules import it


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["EDGERT_OP_CAPTURE"], "wb") as f:
        pickle.dump(_cases, f)
