"""The protocol-buffer wire format, read without the protobuf package.

edgert reads .onnx files with this (onnx_import.py holds the ONNX schema): importing the onnx
package costs a device about half a second and 20 MiB of resident memory before the first byte of
a model is read, and an embedded Python may have no wheel of it at all.

The reader follows protobuf's own decoding rules, so a file means to edgert what it means to
onnx and onnxruntime: the last value of a singular scalar field wins; a singular message that
occurs more than once is the merge of its occurrences (read here by walking their byte ranges
in order); repeated scalars come packed or one by one, mixed; a known field of the wrong wire
type is an unknown field, and unknown fields are skipped. Every length is checked against the
bytes that remain before it is used, nothing is decoded that is not asked for, and no message
nests deeper than the schema that reads it, so a hostile file costs at most a pass over its own
bytes.
"""
import struct

import numpy as np

from .errors import ModelError

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_MASK64 = (1 << 64) - 1
_F32 = struct.Struct("<f")


def _bad(what, why):
    return ModelError(f"not a valid ONNX model: {what} {why}")


def _varint(buf, pos, end, what):
    """The varint at buf[pos] (at most 10 bytes, kept to 64 bits as protobuf does) and the
    position after it."""
    result = 0
    shift = 0
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise _bad(what, "has a number longer than 10 bytes")
    raise _bad(what, "ends inside a number")


def scan(buf, spans, what):
    """The fields of one message whose encoding is the byte ranges `spans` of buf, in order:
    a list of (field number, wire type, value). A varint's value is its unsigned 64-bit
    integer, a fixed-width field's and a length-delimited one's its (start, end) range."""
    fields = []
    append = fields.append
    for pos, end in spans:
        while pos < end:
            key = buf[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _varint(buf, pos, end, what)
            num = key >> 3
            wire = key & 7
            if num == 0:
                raise _bad(what, "has a field numbered 0")
            if wire == VARINT:
                if pos < end and buf[pos] < 0x80:
                    value = buf[pos]
                    pos += 1
                else:
                    value, pos = _varint(buf, pos, end, what)
            elif wire == LEN:
                n = buf[pos] if pos < end else 0x80
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = _varint(buf, pos, end, what)
                if n > end - pos:
                    raise _bad(what, f"has a field of {n} bytes where {end - pos} remain")
                value = (pos, pos + n)
                pos += n
            elif wire == I32 or wire == I64:
                n = 4 if wire == I32 else 8
                if n > end - pos:
                    raise _bad(what, "ends inside a fixed-width number")
                value = (pos, pos + n)
                pos += n
            else:  # groups (3, 4) are deprecated and never in ONNX; 6 and 7 do not exist
                raise _bad(what, f"has field {num} of wire type {wire}, which ONNX files never use")
            append((num, wire, value))
    return fields


def by_number(fields):
    """scan()'s list as {field number: [(wire type, value), ...]}, each list in file order."""
    out = {}
    for num, wire, value in fields:
        lst = out.get(num)
        if lst is None:
            out[num] = [(wire, value)]
        else:
            lst.append((wire, value))
    return out


def message(entries):
    """The byte ranges of a singular message field, from its entries (every occurrence:
    protobuf merges them), or None when the field is absent."""
    spans = [v for w, v in entries if w == LEN]
    return spans or None


def messages(entries):
    """A repeated message field's elements, each as the span list to scan it by."""
    return [[v] for w, v in entries if w == LEN]


def last(entries, wire):
    """The value of a singular field's last entry of the right wire type (None if none)."""
    for w, v in reversed(entries):
        if w == wire:
            return v
    return None


def as_int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def as_int32(v):
    """An int32 or enum field's value: protobuf keeps the low 32 bits of the varint."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def float32(buf, entries, default=0.0):
    v = last(entries, I32)
    return default if v is None else _F32.unpack_from(buf, v[0])[0]


def text(buf, span, what, errors="strict"):
    """A string field's value from its span (None: the empty string). Names that are not
    UTF-8 are a model error (protobuf's Python objects could not hold them either)."""
    if span is None:
        return ""
    try:
        return buf[span[0]:span[1]].decode("utf-8", errors)
    except UnicodeDecodeError:
        raise _bad(what, f"has a string that is not UTF-8 at byte {span[0]}") from None


def texts(buf, entries, what, errors="strict"):
    return [text(buf, v, what, errors) for w, v in entries if w == LEN]


def _varints_np(buf, a, b, what):
    """The packed varints of buf[a:b] as uint64 (numpy, for long runs)."""
    x = np.frombuffer(buf, np.uint8, b - a, a)
    if x[-1] >= 0x80:
        raise _bad(what, "ends inside a number")
    stops = np.flatnonzero(x < 0x80)
    starts = np.empty_like(stops)
    starts[0] = 0
    starts[1:] = stops[:-1] + 1
    lengths = stops - starts + 1
    if int(lengths.max()) > 10:
        raise _bad(what, "has a number longer than 10 bytes")
    digit = np.arange(x.size) - np.repeat(starts, lengths)
    parts = (x & 0x7F).astype(np.uint64) << (7 * digit).astype(np.uint64)  # bits past 64 drop
    return np.bitwise_or.reduceat(parts, starts)


def varints(buf, entries, what):
    """A repeated varint field's entries (packed ranges and single values, mixed, in file
    order) as a uint64 array."""
    chunks = []
    singles = []
    for w, v in entries:
        if w == VARINT:
            singles.append(v)
        elif w == LEN:
            a, b = v
            if b - a > 64:
                if singles:
                    chunks.append(np.array(singles, np.uint64))
                    singles = []
                chunks.append(_varints_np(buf, a, b, what))
            else:
                while a < b:
                    x, a = _varint(buf, a, b, what)
                    singles.append(x)
    if singles:
        chunks.append(np.array(singles, np.uint64))
    if not chunks:
        return np.zeros(0, np.uint64)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def int64s(buf, entries, what):
    """A repeated int64 field as a list of Python ints (for short ones: dims, attributes)."""
    out = []
    for w, v in entries:
        if w == VARINT:
            out.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif w == LEN:
            a, b = v
            if b - a > 64:
                out.extend(_varints_np(buf, a, b, what).view(np.int64).tolist())
                continue
            while a < b:
                x = buf[a]
                if x < 0x80:
                    a += 1
                else:
                    x, a = _varint(buf, a, b, what)
                    if x >= 1 << 63:
                        x -= 1 << 64
                out.append(x)
    return out


def fixed(buf, entries, dtype, what):
    """A repeated fixed-width field (float, double, fixed32/64) as a numpy array of dtype
    (little-endian, as on the wire)."""
    dtype = np.dtype(dtype).newbyteorder("<")
    wire = I32 if dtype.itemsize == 4 else I64
    chunks = []
    for w, (a, b) in entries:
        if w == LEN:
            if (b - a) % dtype.itemsize:
                raise _bad(what, f"has a packed array of {b - a} bytes, not a multiple of "
                                 f"{dtype.itemsize}")
            chunks.append(np.frombuffer(buf, dtype, (b - a) // dtype.itemsize, a))
        elif w == wire:
            chunks.append(np.frombuffer(buf, dtype, 1, a))
    if not chunks:
        return np.zeros(0, dtype)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
