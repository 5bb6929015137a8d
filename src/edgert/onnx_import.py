"""Reads an ONNX model (bytes) into edgert's Graph with edgert's own protobuf reader
(protowire.py): loading a .onnx file needs numpy only, not the onnx package."""
import numpy as np

from . import protowire as pw
from .errors import ModelError
from .graph import Graph, Node, ValueInfo, check_elements, remove_dead, sort_and_check

# ONNX TensorProto element types edgert understands, with their numpy dtypes.
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
           9: np.bool_, 10: np.float16, 11: np.float64, 4: np.uint16, 12: np.uint32, 13: np.uint64}
_NATIVE = {k: np.dtype(v) for k, v in _DTYPES.items()}
_WIRE = {k: d.newbyteorder("<") for k, d in _NATIVE.items()}  # raw_data is little-endian
_DEFAULT_DOMAINS = ("", "ai.onnx")

# Field numbers of onnx.proto, for the messages and fields edgert reads.
_M_GRAPH, _M_OPSET = 7, 8                                    # ModelProto
_O_DOMAIN, _O_VERSION = 1, 2                                 # OperatorSetIdProto
_G_NODE, _G_NAME, _G_INIT, _G_INPUT, _G_OUTPUT, _G_SPARSE_INIT = 1, 2, 5, 11, 12, 15  # GraphProto
_N_INPUT, _N_OUTPUT, _N_NAME, _N_OP, _N_ATTR, _N_DOMAIN = 1, 2, 3, 4, 5, 7  # NodeProto
# AttributeProto, and the AttributeType values edgert reads
_A_NAME, _A_F, _A_I, _A_S, _A_T, _A_FLOATS, _A_INTS, _A_STRINGS, _A_TYPE = 1, 2, 3, 4, 5, 7, 8, 9, 20
_FLOAT, _INT, _STRING, _TENSOR, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 6, 7, 8
# TensorProto
(_T_DIMS, _T_TYPE, _T_FLOATS, _T_INT32S, _T_INT64S, _T_NAME, _T_RAW, _T_DOUBLES, _T_UINT64S,
 _T_EXTERNAL, _T_LOCATION) = 1, 2, 4, 5, 7, 8, 9, 10, 11, 13, 14
_T_REPEATED = (_T_DIMS, _T_FLOATS, _T_INT32S, _T_INT64S, _T_DOUBLES, _T_UINT64S)
# ValueInfoProto; TypeProto's `value` oneof; TypeProto.Tensor; TensorShapeProto; its Dimension
# (dim_value and dim_param are a oneof)
_V_NAME, _V_TYPE = 1, 2
_TYPE_ONEOF = {1: "tensor", 4: "sequence", 5: "map", 8: "sparse tensor", 9: "optional"}
_TT_ELEM, _TT_SHAPE = 1, 2
_S_DIM = 1
_D_VALUE, _D_PARAM = 1, 2


def read_tensor(buf, spans, where, own=False):
    """A TensorProto (the byte ranges of buf that encode it) as its name and a numpy array,
    with every size checked before anything is allocated; the array is a view of buf unless
    `own`."""
    code = location = 0
    name = raw = None
    external = False
    rep = {}
    for num, wire, v in pw.scan(buf, spans, f"{where}: a tensor"):
        if num == _T_RAW:
            if wire == pw.LEN:
                raw = v
        elif num in _T_REPEATED:
            rep.setdefault(num, []).append((wire, v))
        elif wire == pw.VARINT:
            if num == _T_TYPE:
                code = v
            elif num == _T_LOCATION:
                location = v
        elif wire == pw.LEN:
            if num == _T_NAME:
                name = v
            elif num == _T_EXTERNAL:
                external = True
    name = pw.text(buf, name, f"{where}: a tensor")
    if pw.as_int32(location) == 1 or external:
        raise ModelError(f"{where}: tensor '{name}' keeps its data in an external file, "
                         "which edgert does not read; save the model with its data inside")
    code = pw.as_int32(code)
    dtype = _NATIVE.get(code)
    if dtype is None:
        raise ModelError(f"{where}: tensor '{name}' has unsupported element type {code}")
    what = f"{where}: tensor '{name}'"
    shape = tuple(pw.int64s(buf, rep.get(_T_DIMS, ()), what))
    count = check_elements(shape, what)
    if raw is not None:
        a, b = raw
        if b - a != count * dtype.itemsize:
            raise ModelError(f"{what} of shape {shape} needs {count * dtype.itemsize} bytes of "
                             f"data but holds {b - a}")
        arr = np.ndarray(shape, _WIRE[code], buf, a)
        if own:
            arr = arr.astype(dtype)  # a copy
            arr.flags.writeable = False  # (as a view of bytes is)
            return name, arr
        return name, arr.astype(dtype, copy=False)
    # Typed fields, as onnx.proto assigns them: float and double in their own, 64-bit integers
    # in int64_data / uint64_data (uint32 too), everything narrower in int32_data (float16 as
    # its bit pattern). Narrowing wraps, as a C cast does.
    if dtype == np.float32:
        values = pw.fixed(buf, rep.get(_T_FLOATS, ()), np.float32, what)
    elif dtype == np.float64:
        values = pw.fixed(buf, rep.get(_T_DOUBLES, ()), np.float64, what)
    elif dtype == np.int64:
        values = pw.varints(buf, rep.get(_T_INT64S, ()), what).view(np.int64)
    elif dtype in (np.uint64, np.uint32):
        values = pw.varints(buf, rep.get(_T_UINT64S, ()), what)
    else:
        values = pw.varints(buf, rep.get(_T_INT32S, ()), what).astype(np.uint32).view(np.int32)
    if len(values) != count:
        raise ModelError(f"{what} of shape {shape} holds {len(values)} values")
    if dtype == np.float16:
        values = values.astype(np.uint16).view(np.float16)
    elif dtype == np.bool_:
        values = values != 0
    return name, values.astype(dtype).reshape(shape)


def _value_info(buf, spans, where):
    what = f"{where} value info"
    f = pw.by_number(pw.scan(buf, spans, what))
    name = pw.text(buf, pw.last(f.get(_V_NAME, ()), pw.LEN), what)
    what = f"{where} '{name}'"
    kind, tensor = None, []
    for num, wire, v in pw.scan(buf, pw.message(f.get(_V_TYPE, ())) or [], f"{what}'s type"):
        if num in _TYPE_ONEOF and wire == pw.LEN:
            if num != kind:  # setting another member of a oneof clears the one before
                kind, tensor = num, []
            tensor.append(v)
    if kind != 1:
        raise ModelError(f"{what} is not a tensor" + (f" (a {_TYPE_ONEOF[kind]})" if kind else ""))
    tt = pw.by_number(pw.scan(buf, tensor, f"{what}'s type"))
    code = pw.as_int32(pw.last(tt.get(_TT_ELEM, ()), pw.VARINT) or 0)
    if code not in _DTYPES:
        raise ModelError(f"{what} has unsupported element type {code}")
    shape = None
    shape_spans = pw.message(tt.get(_TT_SHAPE, ()))
    if shape_spans is not None:
        s = pw.by_number(pw.scan(buf, shape_spans, f"{what}'s shape"))
        shape = []
        for dim in pw.messages(s.get(_S_DIM, ())):
            value = None
            for num, wire, v in pw.scan(buf, dim, f"{what}'s shape"):
                if num == _D_VALUE and wire == pw.VARINT:
                    value = pw.as_int64(v)
                elif num == _D_PARAM and wire == pw.LEN:
                    value = None
            shape.append(value)
        shape = tuple(shape)
        if any(d is not None and d < 0 for d in shape):
            raise ModelError(f"{what} has a negative dimension: {shape}")
    return ValueInfo(name, _NATIVE[code], shape)


def _attr(buf, spans, where, own):
    """One AttributeProto as (name, Python value)."""
    name = None
    kind = 0
    f = {}
    for num, wire, v in pw.scan(buf, spans, f"{where}: an attribute"):
        if num == _A_NAME:
            if wire == pw.LEN:
                name = v
        elif num == _A_TYPE:
            if wire == pw.VARINT:
                kind = v
        else:
            lst = f.get(num)
            if lst is None:
                f[num] = [(wire, v)]
            else:
                lst.append((wire, v))
    name = pw.text(buf, name, f"{where}: an attribute")
    what = f"{where}: attribute '{name}'"
    kind = pw.as_int32(kind)
    if kind == _INT:
        v = pw.last(f.get(_A_I, ()), pw.VARINT)
        return name, 0 if v is None else pw.as_int64(v)
    if kind == _INTS:
        return name, pw.int64s(buf, f.get(_A_INTS, ()), what)
    if kind == _FLOAT:
        return name, float(pw.float32(buf, f.get(_A_F, ())))
    if kind == _FLOATS:
        return name, pw.fixed(buf, f.get(_A_FLOATS, ()), np.float32, what).tolist()
    if kind == _STRING:
        return name, pw.text(buf, pw.last(f.get(_A_S, ()), pw.LEN), what, "replace")
    if kind == _STRINGS:
        return name, pw.texts(buf, f.get(_A_STRINGS, ()), what, "replace")
    if kind == _TENSOR:
        return name, read_tensor(buf, pw.message(f.get(_A_T, ())) or [], where, own)[1]
    return name, _Unsupported(name)  # graphs, sparse tensors, type protos: no op here takes them


class _Unsupported:
    def __init__(self, name):
        self.name = name


def _node(buf, spans, i, own):
    inputs, outputs, attrs = [], [], []
    op = name = domain = None
    what = f"node {i}"
    for num, wire, v in pw.scan(buf, spans, what):
        if wire != pw.LEN:
            continue
        if num == _N_INPUT:
            inputs.append(v)
        elif num == _N_OUTPUT:
            outputs.append(v)
        elif num == _N_OP:
            op = v
        elif num == _N_NAME:
            name = v
        elif num == _N_DOMAIN:
            domain = v
        elif num == _N_ATTR:
            attrs.append(v)
    op = pw.text(buf, op, what)
    name = pw.text(buf, name, what) or f"{op}_{i}"
    where = f"node '{name}'"
    domain = pw.text(buf, domain, where)
    try:
        inputs = [buf[a:b].decode() for a, b in inputs]
        outputs = [buf[a:b].decode() for a, b in outputs]
    except UnicodeDecodeError:
        raise ModelError(f"not a valid ONNX model: {where} has a tensor name that is not "
                         "UTF-8") from None
    return Node(op, inputs, outputs, dict(_attr(buf, [s], where, own) for s in attrs), name,
                "" if domain in _DEFAULT_DOMAINS else domain)


def read_onnx(data, own=False):
    """Parses serialized ONNX bytes into a checked, topologically sorted Graph. Its tensors are
    views of data's bytes, or with `own` copies: then nothing refers to data afterwards (a
    model file's bytes are freed at once, and a session can free each layer's weights as soon
    as it has packed them, see Session's `consume`)."""
    buf = bytes(data)
    m = pw.by_number(pw.scan(buf, [(0, len(buf))], "the model"))
    graph_spans = pw.message(m.get(_M_GRAPH, ()))
    if graph_spans is None:
        raise ModelError("not a valid ONNX model: it has no graph")
    opset = 0
    for spans in pw.messages(m.get(_M_OPSET, ())):
        o = pw.by_number(pw.scan(buf, spans, "an opset import"))
        if pw.text(buf, pw.last(o.get(_O_DOMAIN, ()), pw.LEN), "an opset import") in _DEFAULT_DOMAINS:
            opset = pw.as_int64(pw.last(o.get(_O_VERSION, ()), pw.VARINT) or 0)
    if opset <= 0:
        raise ModelError("the model declares no default-domain opset")

    g = pw.by_number(pw.scan(buf, graph_spans, "the graph"))
    if _G_SPARSE_INIT in g:
        raise ModelError("the model has sparse initializers, which edgert does not read; "
                         "store them dense")
    constants = {}
    for spans in pw.messages(g.get(_G_INIT, ())):
        name, constants[name] = read_tensor(buf, spans, "initializer", own)
    inputs = [v for v in (_value_info(buf, s, "input") for s in pw.messages(g.get(_G_INPUT, ())))
              if v.name not in constants]
    outputs = [_value_info(buf, s, "output") for s in pw.messages(g.get(_G_OUTPUT, ()))]
    if not outputs:
        raise ModelError("the model's graph has no outputs")
    nodes = [_node(buf, s, i, own) for i, s in enumerate(pw.messages(g.get(_G_NODE, ())))]
    graph = Graph(nodes, constants, inputs, outputs, opset,
                  pw.text(buf, pw.last(g.get(_G_NAME, ()), pw.LEN), "the graph"))
    return remove_dead(sort_and_check(graph))
