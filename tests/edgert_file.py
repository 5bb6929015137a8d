"""The .edgert layout, read and written independently of edgert.format (from the specification
in edgert/format.py and csrc/runtime/plan_io.h), so tests can take files apart, change them
structurally and put them back together with valid checksums."""
import json
import struct

from edgert import _core

HEADER = struct.Struct("<8sIIQQQQII")
_ATTR_FIXED = {0: "<q", 1: "<d"}


def split(data):
    """(header fields, JSON document, plan bytes, blob bytes)."""
    h = HEADER.unpack_from(data, 0)
    _, _, _, jlen, plen, boff, _, _, _ = h
    return h, json.loads(data[64:64 + jlen]), data[64 + jlen:64 + jlen + plen], data[boff:]


def join(header, doc, plan, blobs, *, version=None, text=None):
    """A file from its parts, checksums recomputed (text: raw JSON bytes instead of doc)."""
    magic, ver, res = header[:3]
    text = json.dumps(doc).encode() if text is None else text
    meta = text + plan
    off = -(-(64 + len(meta)) // 64) * 64
    h = HEADER.pack(magic, ver if version is None else version, res, len(text), len(plan), off,
                    len(blobs), _core.crc32c(meta), _core.crc32c(blobs))
    return h.ljust(64, b"\0") + meta + b"\0" * (off - 64 - len(meta)) + blobs


class _In:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v if len(v) > 1 else v[0]

    def str(self):
        n = self.take("<I")
        s = self.b[self.p:self.p + n].decode()
        self.p += n
        return s

    def shape(self):
        r = self.take("<B")
        return list(self.take(f"<{r}q")) if r > 1 else ([self.take("<q")] if r else [])

    def ids(self):
        n = self.take("<I")
        return list(self.take(f"<{n}I")) if n > 1 else ([self.take("<I")] if n else [])


def decode_plan(b):
    r = _In(b)
    p = {"arena": r.take("<Q"), "blobs": [], "tensors": [], "ops": []}
    for _ in range(r.take("<I")):
        p["blobs"].append({"dtype": r.take("<B"), "shape": r.shape(), "offset": r.take("<Q"),
                           "nbytes": r.take("<Q")})
    for _ in range(r.take("<I")):
        t = {"kind": r.take("<B"), "dtype": r.take("<B"), "shape": r.shape()}
        if t["kind"] == 0:
            t["offset"] = r.take("<q")
        elif t["kind"] == 3:
            t["blob"] = r.take("<I")
        p["tensors"].append(t)
    for _ in range(r.take("<I")):
        op = {"type": r.str(), "name": r.str(), "inputs": r.ids(), "outputs": r.ids(), "attrs": {}}
        for _ in range(r.take("<I")):
            k, kind = r.str(), r.take("<B")
            if kind in _ATTR_FIXED:
                v = r.take(_ATTR_FIXED[kind])
            elif kind in (2, 3):
                n = r.take("<I")
                v = list(struct.unpack_from(f"<{n}{'q' if kind == 2 else 'd'}", r.b, r.p))
                r.p += 8 * n
            elif kind == 4:
                v = r.str()
            else:
                v = r.take("<I")
            op["attrs"][k] = (kind, v)
        p["ops"].append(op)
    p["inputs"], p["outputs"] = r.ids(), r.ids()
    assert r.p == len(b), "bytes after the plan"
    return p


def encode_plan(p):
    out = [struct.pack("<QI", p["arena"], len(p["blobs"]))]
    shape = lambda s: struct.pack(f"<B{len(s)}q", len(s), *s)  # noqa: E731
    text = lambda s: struct.pack("<I", len(s.encode())) + s.encode()  # noqa: E731
    ids = lambda v: struct.pack(f"<I{len(v)}I", len(v), *v)  # noqa: E731
    for b in p["blobs"]:
        out += [struct.pack("<B", b["dtype"]), shape(b["shape"]),
                struct.pack("<QQ", b["offset"], b["nbytes"])]
    out.append(struct.pack("<I", len(p["tensors"])))
    for t in p["tensors"]:
        out += [struct.pack("<BB", t["kind"], t["dtype"]), shape(t["shape"])]
        if t["kind"] == 0:
            out.append(struct.pack("<q", t["offset"]))
        elif t["kind"] == 3:
            out.append(struct.pack("<I", t["blob"]))
    out.append(struct.pack("<I", len(p["ops"])))
    for op in p["ops"]:
        out += [text(op["type"]), text(op["name"]), ids(op["inputs"]), ids(op["outputs"]),
                struct.pack("<I", len(op["attrs"]))]
        for k, (kind, v) in op["attrs"].items():
            out += [text(k), struct.pack("<B", kind)]
            if kind in _ATTR_FIXED:
                out.append(struct.pack(_ATTR_FIXED[kind], v))
            elif kind in (2, 3):
                out.append(struct.pack(f"<I{len(v)}{'q' if kind == 2 else 'd'}", len(v), *v))
            elif kind == 4:
                out.append(text(v))
            else:
                out.append(struct.pack("<I", v))
    out += [ids(p["inputs"]), ids(p["outputs"])]
    return b"".join(out)
