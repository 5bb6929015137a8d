"""The .edgert file: a planned model that loads by memory-mapping, without onnx or protobuf.

Layout (little-endian):
    [0, 64)        header: magic, format version, JSON length, blob offset and length, CRC32Cs
    [64, ...)      JSON document: metadata, the plan (tensors, ops, attributes), blob table and,
                   for models with dynamic input dimensions, the graph to plan other shapes
    [blobs, end)   every array (weights, tables, constants), each 64-byte aligned, used in place

Every offset, length, dtype and shape is checked before it is used; both CRC32C checksums must match, so a
truncated or bit-flipped file is an error, never a wrong answer.
"""
import json
import mmap
import os
import struct

import numpy as np

from .errors import ModelError
from .graph import Graph, Node, ValueInfo, check_elements

MAGIC = b"EDGERT\x00\x1a"
VERSION = 2  # 2: CRC32C checksums
_HEADER = struct.Struct("<8sIIQQQII")   # magic, version, reserved, json_len, blob_off, blob_len, json_crc, blob_crc
_HEADER_SIZE = 64
_ALIGN = 64
_DTYPES = {"u8": np.uint8, "i8": np.int8, "i32": np.int32, "i64": np.int64, "f32": np.float32,
           "f16": np.float16, "f64": np.float64, "bool": np.bool_, "i16": np.int16,
           "u16": np.uint16, "u32": np.uint32, "u64": np.uint64}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


def _crc(data):
    from . import _core  # CRC32C, with the CPU's crc32 instruction where it has one
    return _core.crc32c(data)


def is_edgert(prefix):
    return bytes(prefix[:len(MAGIC)]) == MAGIC


# --- writing -------------------------------------------------------------------------------
class _Blobs:
    def __init__(self):
        self.table, self.chunks, self.size = [], [], 0

    def add(self, a):
        a = np.ascontiguousarray(a)
        if a.dtype not in _CODES:
            raise ModelError(f"cannot store an array of dtype {a.dtype}")
        pad = -self.size % _ALIGN
        self.chunks.append(b"\0" * pad)
        self.size += pad
        self.table.append({"dtype": _CODES[a.dtype], "shape": list(a.shape),
                           "offset": self.size, "nbytes": a.nbytes})
        self.chunks.append(a.tobytes())
        self.size += a.nbytes
        return {"$blob": len(self.table) - 1}


def _encode(v, blobs):
    if isinstance(v, np.ndarray):
        return blobs.add(v)
    if isinstance(v, dict):
        return {k: _encode(x, blobs) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_encode(x, blobs) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.dtype):
        return _CODES[v]
    return v


def _value_info(v):
    return {"name": v.name, "dtype": _CODES[np.dtype(v.dtype)], "shape": v.shape and list(v.shape)}


def write(session, path):
    """Writes the session's model (default-shape plan, and its graph if shapes may vary)."""
    blobs = _Blobs()
    compiled = next(iter(session._plans.values()))
    p = compiled.plan
    graph = session._graph
    dynamic = graph is not None and any(d is None for i in session.get_inputs() for d in i.shape)
    doc = {
        "producer": _producer(),
        "inputs": [_arg(a) for a in session.get_inputs()],
        "outputs": [_arg(a) for a in session.get_outputs()],
        "plan": _encode({
            "tensors": p.tensors, "ops": p.ops, "input_ids": p.input_ids,
            "output_ids": p.output_ids, "output_consts": {str(k): v for k, v in p.output_consts.items()},
            "arena_bytes": p.arena_bytes, "activation_bytes": p.activation_bytes,
            "op_types": p.op_types, "out_dtypes": [_CODES[np.dtype(d)] for d in p.out_dtypes],
            "out_shapes": p.out_shapes, "out_qparams": p.out_qparams}, blobs),
        "graph": None if not dynamic else _encode({
            "nodes": [[n.op_type, n.domain, n.name, n.inputs, n.outputs, n.attrs] for n in graph.nodes],
            "constants": graph.constants, "opset": graph.opset,
            "inputs": [_value_info(v) for v in graph.inputs],
            "outputs": [_value_info(v) for v in graph.outputs]}, blobs),
    }
    doc["blobs"] = blobs.table
    text = json.dumps(doc, separators=(",", ":")).encode()
    blob_off = -(-(_HEADER_SIZE + len(text)) // _ALIGN) * _ALIGN
    body = b"".join(blobs.chunks)
    header = _HEADER.pack(MAGIC, VERSION, 0, len(text), blob_off, len(body),
                          _crc(text), _crc(body))
    # Written beside and renamed into place: a process that has the old file mapped keeps
    # reading the old bytes instead of faulting on a truncated file.
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(header.ljust(_HEADER_SIZE, b"\0"))
            f.write(text)
            f.write(b"\0" * (blob_off - _HEADER_SIZE - len(text)))
            f.write(body)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return blob_off + len(body)


def _arg(a):
    return {"name": a.name, "shape": a.shape, "dtype": _CODES[a.dtype], "scale": a.scale,
            "zero_point": a.zero_point}


def _producer():
    from . import __version__
    return f"edgert {__version__}"


# --- reading -------------------------------------------------------------------------------
class _Reader:
    def __init__(self, buf, where):
        self.buf, self.where = buf, where
        self.views = []

    def fail(self, msg):
        raise ModelError(f"{self.where}: {msg}")

    def header(self):
        size = len(self.buf)
        if size < _HEADER_SIZE:
            self.fail(f"truncated: {size} bytes is shorter than the header")
        magic, version, reserved, json_len, blob_off, blob_len, json_crc, blob_crc = \
            _HEADER.unpack_from(self.buf, 0)
        if magic != MAGIC:
            self.fail("not an .edgert file (bad magic number)")
        mv = memoryview(self.buf)
        if version != VERSION:
            newer = "a newer" if version > VERSION else "an older"
            self.fail(f"written in format version {version} by {newer} edgert; this edgert "
                      f"reads version {VERSION}: recompile the model with this edgert "
                      f"(edgert compile model.onnx)")
        if (json_len > size or blob_off < _HEADER_SIZE + json_len or blob_off % _ALIGN
                or blob_off + blob_len != size):
            self.fail(f"truncated or corrupt: header says {blob_off}+{blob_len} bytes, file has {size}")
        # Bytes no checksum covers must be zero, so that no bit of the file goes unchecked.
        if reserved or any(mv[_HEADER.size:_HEADER_SIZE]) or any(mv[_HEADER_SIZE + json_len:blob_off]):
            self.fail("corrupt: padding bytes are not zero")
        text = mv[_HEADER_SIZE:_HEADER_SIZE + json_len]
        if _crc(text) != json_crc:
            self.fail("corrupt: the metadata checksum does not match")
        if _crc(mv[blob_off:]) != blob_crc:
            self.fail("corrupt: the weights checksum does not match")
        self.blob_off, self.blob_len = blob_off, blob_len
        try:
            return json.loads(bytes(text))
        except (ValueError, RecursionError) as e:
            self.fail(f"corrupt metadata: {e}")

    def blobs(self, table):
        out = []
        whole = np.frombuffer(self.buf, np.uint8, self.blob_len, self.blob_off)
        for i, b in enumerate(table):
            dtype = np.dtype(_DTYPES[b["dtype"]])
            shape = [int(d) for d in b["shape"]]
            count = check_elements(shape, f"{self.where}: blob {i}")
            off, nbytes = int(b["offset"]), int(b["nbytes"])
            if nbytes != count * dtype.itemsize or off < 0 or off + nbytes > self.blob_len:
                self.fail(f"blob {i} ({shape} {b['dtype']}) lies outside the file")
            if off % dtype.itemsize:
                self.fail(f"blob {i} is misaligned")
            out.append(whole[off:off + nbytes].view(dtype).reshape(shape))
        return out


def _decode(v, arrays):
    if isinstance(v, dict):
        if "$blob" in v:
            return arrays[int(v["$blob"])]
        return {k: _decode(x, arrays) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    return v


def read(source, threads=None):
    """A Session on an .edgert file (memory-mapped from a path, or in a bytes-like object)."""
    from .plan import Plan
    from .session import NodeArg, Session
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf, where = source, "model bytes"
    else:
        where = f"model file '{source}'"
        try:
            with open(source, "rb") as f:
                buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read {where}: {getattr(e, 'strerror', None) or e}") from None
    r = _Reader(buf, where)
    try:
        doc = r.header()
        arrays = r.blobs(doc["blobs"])
        p = _decode(doc["plan"], arrays)
        plan = Plan(p["tensors"], p["ops"], p["input_ids"], p["output_ids"],
                    {int(k): v for k, v in p["output_consts"].items()}, int(p["arena_bytes"]),
                    int(p["activation_bytes"]), p["op_types"],
                    [np.dtype(_DTYPES[d]) for d in p["out_dtypes"]], p["out_shapes"],
                    [tuple(q) for q in p["out_qparams"]])
        inputs = [NodeArg(a["name"], a["shape"], _DTYPES[a["dtype"]], a["scale"], a["zero_point"])
                  for a in doc["inputs"]]
        outputs = [NodeArg(a["name"], a["shape"], _DTYPES[a["dtype"]], a["scale"], a["zero_point"])
                   for a in doc["outputs"]]
        graph = _graph(_decode(doc["graph"], arrays)) if doc["graph"] else None
        for a in inputs:
            check_elements([1 if d is None else d for d in a.shape], f"{where}: input '{a.name}'")
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as e:
        raise ModelError(f"{where}: corrupt metadata ({type(e).__name__}: {e})") from None
    session = Session._from_plan(graph, plan, inputs, outputs, threads)
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        # The ops have packed what they need; drop the file's pages from resident memory.
        # Whatever a run still reads from the file faults back in from the page cache.
        buf.madvise(mmap.MADV_DONTNEED)
    return session


def _graph(g):
    from .graph import sort_and_check
    nodes = [Node(t, i, o, a, name, d) for t, d, name, i, o, a in g["nodes"]]
    vi = lambda v: ValueInfo(v["name"], np.dtype(_DTYPES[v["dtype"]]),  # noqa: E731
                             None if v["shape"] is None else tuple(v["shape"]))
    graph = Graph(nodes, dict(g["constants"]), [vi(v) for v in g["inputs"]],
                  [vi(v) for v in g["outputs"]], int(g["opset"]))
    return sort_and_check(graph)
