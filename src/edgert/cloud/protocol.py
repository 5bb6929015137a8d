"""Open Inference Protocol (KServe v2) tensors on the wire: JSON, and the binary tensor extension.

Every response is validated against what was asked: the echoed id, each output's name, datatype,
shape and element count. Anything off is a CloudError(reason="bad-response"), never an array.
"""
import json
import math

import numpy as np

from .errors import CloudError

_DT = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
       "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
       "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
DATATYPES = {np.dtype(v): k for k, v in _DT.items()}
BINARY_EXTENSION = "binary_tensor_data"
HEADER_LENGTH = "Inference-Header-Content-Length"


def datatype_of(dtype):
    try:
        return DATATYPES[np.dtype(dtype)]
    except KeyError:
        raise CloudError(f"dtype {np.dtype(dtype)} has no Open Inference Protocol datatype",
                         reason="unsupported-dtype") from None


def dtype_of(datatype):
    t = _DT.get(datatype)
    return np.dtype(t) if t is not None else None


def encode_request(request_id, inputs, output_names, binary=False):
    """inputs: list of (name, array). Returns (body bytes, headers dict)."""
    tensors, blobs = [], []
    for name, a in inputs:
        a = np.ascontiguousarray(a)
        t = {"name": name, "shape": [int(d) for d in a.shape], "datatype": datatype_of(a.dtype)}
        if binary:
            raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            t["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            t["data"] = a.ravel().tolist()
        tensors.append(t)
    req = {"id": request_id, "inputs": tensors}
    if output_names:
        req["outputs"] = [{"name": n, "parameters": {"binary_data": True}} if binary else {"name": n}
                          for n in output_names]
    head = json.dumps(req, separators=(",", ":")).encode()
    if not binary:
        return head, {"Content-Type": "application/json"}
    return b"".join([head] + blobs), {"Content-Type": "application/octet-stream",
                                       HEADER_LENGTH: str(len(head))}


def _bad(msg):
    return CloudError(f"invalid response from the inference server: {msg}", reason="bad-response")


def decode_response(body, headers, request_id, expected):
    """body/headers of a 200 answer -> {name: array} for the expected outputs.

    expected: list of (name, numpy dtype, shape list with None for any size, or None if unknown).
    """
    hlen = headers.get(HEADER_LENGTH)
    blob = b""
    if hlen is not None:
        try:
            n = int(hlen)
        except ValueError:
            raise _bad(f"{HEADER_LENGTH} is not an integer: {hlen[:40]!r}") from None
        if not 0 <= n <= len(body):
            raise _bad(f"{HEADER_LENGTH} {n} exceeds the body's {len(body)} bytes")
        body, blob = body[:n], body[n:]
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"malformed JSON ({e.__class__.__name__}: {str(e)[:80]})") from None
    if not isinstance(doc, dict):
        raise _bad(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("id") != request_id:
        raise _bad(f"response id {str(doc.get('id'))[:60]!r} does not match request id {request_id!r}")
    outs = doc.get("outputs")
    if not isinstance(outs, list) or not all(isinstance(o, dict) for o in outs):
        raise _bad("'outputs' is missing or not a list of objects")
    got, offset = {}, 0
    for o in outs:
        name = o.get("name")
        shape = o.get("shape")
        if not isinstance(name, str):
            raise _bad("an output has no name")
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)):
            raise _bad(f"output '{name}': invalid shape {str(shape)[:60]}")
        dt = dtype_of(o.get("datatype"))
        if dt is None:
            raise _bad(f"output '{name}': unknown datatype {str(o.get('datatype'))[:20]!r}")
        count = math.prod(shape)
        params = o.get("parameters") if isinstance(o.get("parameters"), dict) else {}
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size != count * dt.itemsize or offset + size > len(blob):
                raise _bad(f"output '{name}': binary_data_size {size} does not fit shape {shape} "
                           f"{o.get('datatype')} or the {len(blob) - offset} bytes left")
            arr = np.frombuffer(blob, dt.newbyteorder("<"), count, offset).astype(dt).reshape(shape)
            offset += size
        else:
            data = o.get("data")
            if not isinstance(data, list):
                raise _bad(f"output '{name}': no 'data' list")
            try:
                arr = np.asarray(data, dtype=dt)
            except (ValueError, TypeError, OverflowError) as e:
                raise _bad(f"output '{name}': data is not {o.get('datatype')}: {str(e)[:60]}") from None
            if arr.size != count:
                raise _bad(f"output '{name}': {arr.size} values for shape {shape}")
            arr = arr.reshape(shape)
        got[name] = arr
    result = {}
    for name, dtype, shape in expected:
        if name not in got:
            raise _bad(f"output '{name}' is missing (got {sorted(got)[:8]})")
        a = got[name]
        if a.dtype != dtype:
            raise _bad(f"output '{name}': datatype {DATATYPES[a.dtype]}, expected {DATATYPES.get(np.dtype(dtype), dtype)}")
        if shape is not None and not shape_matches(shape, a.shape):
            raise _bad(f"output '{name}': shape {list(a.shape)}, expected {shape_str(shape)}")
        result[name] = a
    return result


def shape_matches(expected, got):
    """expected dims of None/-1/str match any size."""
    return len(expected) == len(got) and all(
        e is None or isinstance(e, str) or e < 0 or e == g for e, g in zip(expected, got))


def shape_str(shape):
    return "[" + ", ".join("?" if d is None or isinstance(d, str) or d < 0 else str(d)
                           for d in shape) + "]"
