"""The oracle for edgert's own .onnx reader (src/edgert/onnx_import.py + protowire.py): the same
Graph read through the onnx package's protobuf classes, as edgert read models before it had a
reader of its own. Tests compare the two on every model they can build or mangle."""
import numpy as np

from edgert.errors import MissingDependencyError, ModelError
from edgert.graph import Graph, Node, ValueInfo, check_elements, remove_dead, sort_and_check

# ONNX TensorProto element types edgert understands, with their numpy dtypes.
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
           9: np.bool_, 10: np.float16, 11: np.float64, 4: np.uint16, 12: np.uint32, 13: np.uint64}
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "reading .onnx files needs the onnx package: pip install 'edgert[onnx]' "
            "(or load a compiled .edgert file)") from None
    return onnx


def tensor_to_array(t, where):
    """A TensorProto as a numpy array, with every size checked before anything is allocated."""
    if t.data_location == 1 or len(t.external_data):
        raise ModelError(f"{where}: tensor '{t.name}' keeps its data in an external file, "
                         "which edgert does not read; save the model with its data inside")
    if t.data_type not in _DTYPES:
        raise ModelError(f"{where}: tensor '{t.name}' has unsupported element type {t.data_type}")
    dtype = np.dtype(_DTYPES[t.data_type])
    shape = tuple(int(d) for d in t.dims)
    count = check_elements(shape, f"{where}: tensor '{t.name}'")
    if t.HasField("raw_data"):
        if len(t.raw_data) != count * dtype.itemsize:
            raise ModelError(f"{where}: tensor '{t.name}' of shape {shape} needs "
                             f"{count * dtype.itemsize} bytes of data but holds {len(t.raw_data)}")
        return np.frombuffer(t.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    fields = {np.float32: t.float_data, np.float64: t.double_data, np.int64: t.int64_data,
              np.uint64: t.uint64_data, np.uint32: t.uint64_data}
    values = fields.get(dtype.type, t.int32_data)
    if len(values) != count:
        raise ModelError(f"{where}: tensor '{t.name}' of shape {shape} holds {len(values)} values")
    if dtype == np.float16:  # stored as uint16 bit patterns in int32_data
        return np.array(values, dtype=np.int64).astype(np.uint16).view(np.float16).reshape(shape)
    wide = {np.float32: np.float32, np.float64: np.float64, np.uint64: np.uint64, np.uint32: np.uint64}
    return np.array(values, dtype=wide.get(dtype.type, np.int64)).astype(dtype).reshape(shape)


def _value_info(vi, where):
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise ModelError(f"{where} '{vi.name}' is not a tensor")
    if tt.elem_type not in _DTYPES:
        raise ModelError(f"{where} '{vi.name}' has unsupported element type {tt.elem_type}")
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        if any(d is not None and d < 0 for d in shape):
            raise ModelError(f"{where} '{vi.name}' has a negative dimension: {shape}")
    return ValueInfo(vi.name, np.dtype(_DTYPES[tt.elem_type]), shape)


def _attrs(node, where):
    onnx = _onnx()
    out = {}
    A = onnx.AttributeProto
    for a in node.attribute:
        if a.type == A.FLOAT:
            out[a.name] = float(a.f)
        elif a.type == A.INT:
            out[a.name] = int(a.i)
        elif a.type == A.STRING:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif a.type == A.FLOATS:
            out[a.name] = [float(v) for v in a.floats]
        elif a.type == A.INTS:
            out[a.name] = [int(v) for v in a.ints]
        elif a.type == A.STRINGS:
            out[a.name] = [s.decode("utf-8", "replace") for s in a.strings]
        elif a.type == A.TENSOR:
            out[a.name] = tensor_to_array(a.t, where)
        else:  # graphs, sparse tensors, type protos: no op edgert runs takes them
            out[a.name] = _Unsupported(a.name)
    return out


class _Unsupported:
    def __init__(self, name):
        self.name = name


def read_onnx(data):
    """Parses serialized ONNX bytes into a checked, topologically sorted Graph."""
    onnx = _onnx()
    try:
        model = onnx.ModelProto()
        model.ParseFromString(bytes(data))
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"not a valid ONNX model: {e}") from None
    if not model.HasField("graph"):
        raise ModelError("not a valid ONNX model: it has no graph")
    g = model.graph
    opset = 0
    for o in model.opset_import:
        if o.domain in _DEFAULT_DOMAINS:
            opset = int(o.version)
    if opset <= 0:
        raise ModelError("the model declares no default-domain opset")

    constants = {}
    for t in g.initializer:
        constants[t.name] = tensor_to_array(t, "initializer")
    inputs = [_value_info(v, "input") for v in g.input if v.name not in constants]
    outputs = [_value_info(v, "output") for v in g.output]
    if not outputs:
        raise ModelError("the model's graph has no outputs")
    nodes = []
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        domain = "" if n.domain in _DEFAULT_DOMAINS else n.domain
        nodes.append(Node(n.op_type, list(n.input), list(n.output),
                          _attrs(n, f"node '{name}'"), name, domain))
    graph = Graph(nodes, constants, inputs, outputs, opset, g.name)
    return remove_dead(sort_and_check(graph))
