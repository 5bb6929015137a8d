"""The .edgert file: a planned model that loads by memory-mapping, without onnx or protobuf.

Layout (little-endian):
    [0, 64)          header: magic, format version, section lengths, blob offset, CRC32Cs
    [64, +json_len)  JSON metadata: inputs, outputs, output facts, op counts and, for models
                     with dynamic input dimensions, the graph to plan other shapes
    [.., +plan_len)  the binary plan (csrc/runtime/plan_io.h), read by C++ straight into the
                     executor: tensors, ops, attributes, blob table
    [blobs, end)     every array (weights packed as the kernels read them, tables, constants),
                     each 64-byte aligned, used in place from the mapping

Every offset, length, dtype and shape is checked before it is used; both CRC32C checksums must
match, so a truncated or bit-flipped file is an error, never a wrong answer.
"""
import json
import mmap
import os
import struct

import numpy as np

from . import _core  # CRC32C (with the CPU's crc32 instruction where it has one), the executor
from .errors import EdgertError, ModelError
from .graph import Graph, Node, ValueInfo, check_elements
from .plan import Plan, plan_facts
from .session import NodeArg, Session, _Compiled, check_threads

MAGIC = b"EDGERT\x00\x1a"
VERSION = 3  # 2: CRC32C checksums; 3: binary plan, prepacked weights
# magic, version, reserved, json_len, plan_len, blob_off, blob_len, meta_crc (json + plan), blob_crc
_HEADER = struct.Struct("<8sIIQQQQII")
_HEADER_SIZE = 64
_ALIGN = 64
_DTYPES = {"u8": np.uint8, "i8": np.int8, "i32": np.int32, "i64": np.int64, "f32": np.float32,
           "f16": np.float16, "f64": np.float64, "bool": np.bool_, "i16": np.int16,
           "u16": np.uint16, "u32": np.uint32, "u64": np.uint64}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
# The binary plan's codes (plan_io.h): dtypes the executor knows, tensor kinds, attribute kinds.
_PLAN_DTYPES = {np.dtype(np.uint8): 0, np.dtype(np.int8): 1, np.dtype(np.int32): 2,
                np.dtype(np.int64): 3, np.dtype(np.float32): 4}
_PLAN_DTYPE_NAMES = {"u8": 0, "i8": 1, "i32": 2, "i64": 3, "f32": 4}
_KINDS = {"arena": 0, "input": 1, "output": 2, "const": 3}
A_INT, A_FLOAT, A_INTS, A_FLOATS, A_STR, A_ARR = range(6)


def _crc(data):
    return _core.crc32c(data)


def is_edgert(prefix):
    return bytes(prefix[:len(MAGIC)]) == MAGIC


# --- writing -------------------------------------------------------------------------------
class _Blobs:
    """The blob area. Offsets are given by lay_out(), once every array is in: the arrays loading
    reads (biases, scales, zero points, tables) first, together, then the weights only runs read,
    so creating the ops touches few pages of the mapping (each first touch is a page fault)."""

    # Attributes holding weights (used in place, or repacked only when another ISA runs them),
    # and the dynamic-shape graph's arrays (read only to plan other shapes) go last.
    WEIGHTS = ("weight", "x8_weight", "dw_packed", "dw_packed3")

    def __init__(self):
        self.table, self.arrays, self.weights = [], [], []
        self.json_index = []

    def add(self, a, weights=False):
        a = np.ascontiguousarray(a)
        if a.dtype not in _CODES:
            raise ModelError(f"cannot store an array of dtype {a.dtype}")
        self.table.append({"dtype": _CODES[a.dtype], "shape": list(a.shape), "offset": None,
                           "nbytes": a.nbytes})
        self.arrays.append(a)
        self.weights.append(weights)
        return len(self.table) - 1

    def lay_out(self):
        """The area's bytes; sets every table entry's offset."""
        chunks, size = [], 0
        for i in sorted(range(len(self.table)), key=lambda i: self.weights[i]):
            pad = -size % _ALIGN
            chunks.append(b"\0" * pad)
            self.table[i]["offset"] = size + pad
            chunks.append(self.arrays[i].tobytes())
            size += pad + self.arrays[i].nbytes
        return b"".join(chunks)


class _PlanWriter:
    """The binary plan of plan_io.h; arrays go to the shared blob area."""

    def __init__(self, blobs):
        self.blobs, self.out, self.index, self.body = blobs, [], [], []

    def u8(self, v): self.out.append(struct.pack("<B", v))
    def u32(self, v): self.out.append(struct.pack("<I", v))
    def i64(self, v): self.out.append(struct.pack("<q", v))

    def str(self, s):
        b = s.encode()
        self.u32(len(b))
        self.out.append(b)

    def shape(self, shape):
        self.u8(len(shape))
        self.out.append(struct.pack(f"<{len(shape)}q", *shape))

    def array(self, a, weights=False):
        a = np.ascontiguousarray(a)
        if a.dtype not in _PLAN_DTYPES:
            raise ModelError(f"the executor cannot hold an array of dtype {a.dtype}")
        self.index.append(self.blobs.add(a, weights))
        return len(self.index) - 1

    def attr(self, v, weights=False):
        if isinstance(v, str):
            self.u8(A_STR), self.str(v)
        elif isinstance(v, np.ndarray):
            self.u8(A_ARR), self.u32(self.array(v, weights))
        elif isinstance(v, (int, np.integer)):
            self.u8(A_INT), self.i64(int(v))
        elif isinstance(v, (float, np.floating)):
            self.u8(A_FLOAT), self.out.append(struct.pack("<d", float(v)))
        elif isinstance(v, (list, tuple)):
            floats = any(isinstance(x, (float, np.floating)) for x in v)
            self.u8(A_FLOATS if floats else A_INTS), self.u32(len(v))
            self.out.append(struct.pack(f"<{len(v)}{'d' if floats else 'q'}",
                                        *(float(x) if floats else int(x) for x in v)))
        else:
            raise ModelError(f"cannot store an attribute of type {type(v).__name__}")

    def encode(self, p, ops):
        """Tensors, ops and the plan's inputs and outputs; plan() adds the blob table."""
        self.u32(len(p.tensors))
        for t in p.tensors:
            self.u8(_KINDS[t["kind"]]), self.u8(_PLAN_DTYPE_NAMES[t["dtype"]])
            self.shape(t["shape"])
            if t["kind"] == "arena":
                self.i64(t["offset"])
            elif t["kind"] == "const":
                self.u32(self.array(t["data"]))
        self.u32(len(ops))
        for op in ops:
            self.str(op["type"]), self.str(op.get("name", ""))
            for ids in (op["inputs"], op["outputs"]):
                self.u32(len(ids))
                self.out.append(struct.pack(f"<{len(ids)}I", *ids))
            attrs = op.get("attrs", {})
            self.u32(len(attrs))
            for k, v in attrs.items():
                self.str(k), self.attr(v, k in _Blobs.WEIGHTS)
        for ids in (p.input_ids, [i for i in p.output_ids if i is not None]):
            self.u32(len(ids))
            self.out.append(struct.pack(f"<{len(ids)}I", *ids))
        self.body, self.out = self.out, []

    def plan(self, arena_bytes):
        """The whole plan, once the blob area is laid out: the blob table goes first."""
        self.out = [struct.pack("<Q", arena_bytes)]
        self.u32(len(self.index))
        for i in self.index:
            b = self.blobs.table[i]
            self.u8(_PLAN_DTYPE_NAMES[b["dtype"]]), self.shape(b["shape"])
            self.out.append(struct.pack("<QQ", b["offset"], b["nbytes"]))
        return b"".join(self.out + self.body)


def _encode(v, blobs, weights=False):
    """JSON metadata with arrays replaced by {"$blob": index into the JSON's blob table}
    (blobs.json_index: the JSON's table, a list of indices into the shared one)."""
    if isinstance(v, np.ndarray):
        blobs.json_index.append(blobs.add(v, weights))
        return {"$blob": len(blobs.json_index) - 1}
    if isinstance(v, dict):
        return {k: _encode(x, blobs, weights) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_encode(x, blobs, weights) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.dtype):
        return _CODES[v]
    return v


def _value_info(v):
    return {"name": v.name, "dtype": _CODES[np.dtype(v.dtype)], "shape": v.shape and list(v.shape)}


def packed_ops(compiled):
    """The plan's ops with each op's packed state (weights as its kernels read them) in place of
    the attributes it was packed from, so loading skips the packing."""
    ops = []
    for i, op in enumerate(compiled.plan.ops):
        drop, add = compiled.executor.packed_attrs(i)
        if drop or add:
            op = dict(op, attrs={**{k: v for k, v in op["attrs"].items() if k not in drop}, **add})
        ops.append(op)
    return ops


def write(session, path):
    """Writes the session's model (default-shape plan, and its graph if shapes may vary)."""
    compiled = next(iter(session._plans.values()))
    p = compiled.plan
    if p.ops is None:
        raise EdgertError("this session was loaded from an .edgert file; compile the .onnx model")
    if p.released:
        raise EdgertError("this session was loaded to run, without the weights a file needs; "
                          "use edgert.compile(model, path)")
    blobs = _Blobs()
    writer = _PlanWriter(blobs)
    writer.encode(p, packed_ops(compiled))
    graph = session._graph
    dynamic = graph is not None and any(d is None for i in session.get_inputs() for d in i.shape)
    doc = {
        "producer": _producer(),
        "inputs": [_arg(a) for a in session.get_inputs()],
        "outputs": [_arg(a) for a in session.get_outputs()],
        "plan": _encode({
            "output_ids": p.output_ids,
            "output_consts": {str(k): v for k, v in p.output_consts.items()},
            "arena_bytes": p.arena_bytes, "activation_bytes": p.activation_bytes,
            "op_types": p.op_types, "out_dtypes": [_CODES[np.dtype(d)] for d in p.out_dtypes],
            "out_shapes": p.out_shapes, "out_qparams": p.out_qparams,
            "facts": plan_facts(p)}, blobs),
        "graph": None if not dynamic else _encode({
            "nodes": [[n.op_type, n.domain, n.name, n.inputs, n.outputs, n.attrs] for n in graph.nodes],
            "constants": graph.constants, "opset": graph.opset,
            "inputs": [_value_info(v) for v in graph.inputs],
            "outputs": [_value_info(v) for v in graph.outputs]}, blobs, weights=True),
    }
    body = blobs.lay_out()
    plan_bytes = writer.plan(p.arena_bytes)
    doc["blobs"] = [blobs.table[i] for i in blobs.json_index]
    text = json.dumps(doc, separators=(",", ":")).encode()
    meta = text + plan_bytes
    blob_off = -(-(_HEADER_SIZE + len(meta)) // _ALIGN) * _ALIGN
    header = _HEADER.pack(MAGIC, VERSION, 0, len(text), len(plan_bytes), blob_off, len(body),
                          _crc(meta), _crc(body))
    # Written beside and renamed into place: a process that has the old file mapped keeps
    # reading the old bytes instead of faulting on a truncated file.
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(header.ljust(_HEADER_SIZE, b"\0"))
            f.write(meta)
            f.write(b"\0" * (blob_off - _HEADER_SIZE - len(meta)))
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

    def fail(self, msg):
        raise ModelError(f"{self.where}: {msg}")

    def layout(self):
        """Checks the header's fields and offsets; sets where the plan and the weights are."""
        size = len(self.buf)
        if size < _HEADER_SIZE:
            self.fail(f"truncated: {size} bytes is shorter than the header")
        magic, version = struct.unpack_from("<8sI", self.buf, 0)
        if magic != MAGIC:
            self.fail("not an .edgert file (bad magic number)")
        if version != VERSION:
            newer = "a newer" if version > VERSION else "an older"
            self.fail(f"written in format version {version} by {newer} edgert; this edgert "
                      f"reads version {VERSION}: recompile the model with this edgert "
                      f"(edgert compile model.onnx)")
        (_, _, self.reserved, json_len, plan_len, blob_off, blob_len, self.meta_crc,
         self.blob_crc) = _HEADER.unpack_from(self.buf, 0)
        meta_end = _HEADER_SIZE + json_len + plan_len
        if (json_len > size or plan_len > size or blob_off < meta_end or blob_off % _ALIGN
                or blob_off + blob_len != size):
            self.fail(f"truncated or corrupt: header says {blob_off}+{blob_len} bytes, file has {size}")
        self.json_len = json_len
        self.plan_off, self.plan_len = _HEADER_SIZE + json_len, plan_len
        self.blob_off, self.blob_len = blob_off, blob_len

    def metadata(self):
        """The JSON document, after the padding and the metadata checksum are checked."""
        mv, meta_end = memoryview(self.buf), self.plan_off + self.plan_len
        # Bytes no checksum covers must be zero, so that no bit of the file goes unchecked.
        if self.reserved or any(mv[_HEADER.size:_HEADER_SIZE]) or any(mv[meta_end:self.blob_off]):
            self.fail("corrupt: padding bytes are not zero")
        if _crc(mv[_HEADER_SIZE:meta_end]) != self.meta_crc:
            self.fail("corrupt: the metadata checksum does not match")
        try:  # str, not bytes: json's encoding detection for bytes costs more than the parse
            return json.loads(str(mv[_HEADER_SIZE:self.plan_off], "utf-8"))
        except (ValueError, RecursionError) as e:
            self.fail(f"corrupt metadata: {e}")

    def check_weights(self, crc):
        if crc.result() != self.blob_crc:
            self.fail("corrupt: the weights checksum does not match")

    def array(self, table, i):
        """Blob i of the JSON's table, as a read-only view of the file."""
        b = table[i]
        dtype = np.dtype(_DTYPES[b["dtype"]])
        shape = [int(d) for d in b["shape"]]
        count = check_elements(shape, f"{self.where}: blob {i}")
        off, nbytes = int(b["offset"]), int(b["nbytes"])
        if nbytes != count * dtype.itemsize or off < 0 or off + nbytes > self.blob_len:
            self.fail(f"blob {i} ({shape} {b['dtype']}) lies outside the file")
        if off % dtype.itemsize:
            self.fail(f"blob {i} is misaligned")
        return np.frombuffer(self.buf, dtype, count, self.blob_off + off).reshape(shape)


def _decode(v, arrays):
    if isinstance(v, dict):
        if "$blob" in v:
            return arrays(int(v["$blob"]))
        return {k: _decode(x, arrays) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    return v


def map_edgert(fd):
    """The file open at fd, memory-mapped, if it is an .edgert file; None for anything else,
    including a file that cannot be mapped (the caller reads it instead)."""
    try:
        buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty, a pipe, a directory, ...
        return None
    if is_edgert(buf[:len(MAGIC)]):
        return buf
    buf.close()
    return None


def read(source, threads=None, *, name=None):
    """A Session on an .edgert file: a path (memory-mapped), a mapped file (an mmap; `name` its
    path, for messages) or a bytes-like object."""
    threads = check_threads(threads)
    if isinstance(source, (bytes, bytearray, memoryview, mmap.mmap)):
        buf = source
        where = f"model file '{name}'" if name is not None else "model bytes"
    else:
        where = f"model file '{source}'"
        try:
            with open(source, "rb") as f:
                buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read {where}: {getattr(e, 'strerror', None) or e}") from None
    r = _Reader(buf, where)
    r.layout()
    # The weights' checksum begins now, on a helper thread, and runs while the metadata is read
    # and the ops are created (they read weights only as numbers, never as sizes or offsets, so
    # unverified bytes cannot make them misbehave); a mismatch wins over any error they raise.
    weights_crc = _core.Crc32cTask(buf, r.blob_off, r.blob_len)
    doc = r.metadata()
    try:
        executor = _core.Executor.from_buffer(buf, r.plan_off, r.plan_len, r.blob_off,
                                              r.blob_len, threads)
    except _core.ModelError as e:
        r.check_weights(weights_crc)
        raise ModelError(f"{where}: {e}") from None
    r.check_weights(weights_crc)
    try:  # the weights are verified now: arrays the metadata names may be read
        table = doc["blobs"]
        arrays = lambda i: r.array(table, i)  # noqa: E731
        p = doc["plan"]
        plan = Plan(None, None, None, p["output_ids"],
                    {int(k): _decode(v, arrays) for k, v in p["output_consts"].items()},
                    int(p["arena_bytes"]), int(p["activation_bytes"]), p["op_types"],
                    [np.dtype(_DTYPES[d]) for d in p["out_dtypes"]], p["out_shapes"],
                    [tuple(q) for q in p["out_qparams"]], p["facts"])
        inputs = [NodeArg(a["name"], a["shape"], _DTYPES[a["dtype"]], a["scale"], a["zero_point"])
                  for a in doc["inputs"]]
        outputs = [NodeArg(a["name"], a["shape"], _DTYPES[a["dtype"]], a["scale"], a["zero_point"])
                   for a in doc["outputs"]]
        graph = _graph(_decode(doc["graph"], arrays)) if doc["graph"] else None
        for a in inputs:
            check_elements([1 if d is None else d for d in a.shape], f"{where}: input '{a.name}'")
        if len(plan.output_ids) != len(outputs):
            r.fail("corrupt metadata: outputs and plan disagree")
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as e:
        raise ModelError(f"{where}: corrupt metadata ({type(e).__name__}: {e})") from None
    # The mapping stays: runs read the packed weights from it (shared with the page cache).
    return Session._from_plan(graph, _Compiled(plan, executor), inputs, outputs, threads)


def _graph(g):
    from .graph import sort_and_check
    nodes = [Node(t, i, o, a, name, d) for t, d, name, i, o, a in g["nodes"]]
    vi = lambda v: ValueInfo(v["name"], np.dtype(_DTYPES[v["dtype"]]),  # noqa: E731
                             None if v["shape"] is None else tuple(v["shape"]))
    graph = Graph(nodes, dict(g["constants"]), [vi(v) for v in g["inputs"]],
                  [vi(v) for v in g["outputs"]], int(g["opset"]))
    return sort_and_check(graph)
