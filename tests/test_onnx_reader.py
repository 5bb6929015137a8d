"""edgert's own .onnx reader (onnx_import.py + protowire.py) against the onnx package's protobuf
classes (onnx_oracle.py, the reader edgert had before): the same Graph from every model the tests
can build, from encodings that protobuf allows but onnx's writer never makes, and from mangled
bytes, where edgert must either read what protobuf reads or refuse with a ModelError."""
import struct
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgert
import onnx_oracle
from edgert.onnx_import import read_onnx
from nets import model, ort_session, tiny_cnn

F = TensorProto.FLOAT


def same_graph(a, b):
    assert (a.opset, a.name) == (b.opset, b.name)
    assert a.inputs == b.inputs
    assert a.outputs == b.outputs
    assert a.constants.keys() == b.constants.keys()
    for k in a.constants:
        x, y = a.constants[k], b.constants[k]
        assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), k
    assert len(a.nodes) == len(b.nodes)
    for m, n in zip(a.nodes, b.nodes):
        assert (m.op_type, m.inputs, m.outputs, m.name, m.domain) == \
            (n.op_type, n.inputs, n.outputs, n.name, n.domain)
        assert m.attrs.keys() == n.attrs.keys(), m.name
        for k, u in m.attrs.items():
            v = n.attrs[k]
            if isinstance(u, np.ndarray):
                assert (u.dtype, u.shape, u.tobytes()) == (v.dtype, v.shape, v.tobytes()), k
            elif type(u).__name__ == "_Unsupported":
                assert type(v).__name__ == "_Unsupported"
            else:
                assert (type(u), u) == (type(v), v), (m.name, k)


def outcome(read, data):
    """A reader's Graph, or the ModelError it raised."""
    try:
        return read(data)
    except edgert.ModelError as e:
        return e


def agree(data, own=False):
    """edgert reads data as the protobuf oracle does: the same Graph or both a ModelError. With
    `own`, read_onnx(data, own=True) too (how a model file is read): the same outcome, and no
    array of its Graph refers to data's bytes."""
    mine, theirs = outcome(read_onnx, data), outcome(onnx_oracle.read_onnx, data)
    if own:
        before = sys.getrefcount(data)
        owned = outcome(lambda d: read_onnx(d, own=True), data)
        assert isinstance(owned, Exception) == isinstance(mine, Exception), (owned, mine)
        if not isinstance(owned, Exception):
            assert sys.getrefcount(data) == before  # nothing of the Graph holds the bytes
            same_graph(owned, mine)
            raw = np.frombuffer(data, np.uint8)
            arrays = list(owned.constants.values()) + [v for n in owned.nodes
                                                       for v in n.attrs.values()
                                                       if isinstance(v, np.ndarray)]
            for a in arrays:
                assert not np.shares_memory(a, raw)
    if isinstance(theirs, Exception) or isinstance(mine, Exception):
        assert isinstance(mine, Exception) and isinstance(theirs, Exception), (mine, theirs)
        return mine, theirs
    same_graph(mine, theirs)
    return mine, theirs


# --- a wire-format writer, to make encodings onnx's serializer never produces -----------------

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def key(num, wire):
    return varint(num << 3 | wire)


def vi(num, v):
    return key(num, 0) + varint(v)


def ld(num, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return key(num, 2) + varint(len(payload)) + payload


def f32(num, x):
    return key(num, 5) + struct.pack("<f", x)


def packed(num, values):
    return ld(num, b"".join(varint(v) for v in values))


UNKNOWN = vi(1000, 7) + key(1001, 1) + b"\x01" * 8 + ld(1002, b"junk") + key(1003, 5) + b"abcd"


def vinfo(name, shape=(1, 4), elem=F):
    return helper.make_tensor_value_info(name, elem, shape).SerializeToString()


def assemble(nodes=(), inits=(), inputs=(vinfo("x"),), outputs=(vinfo("y"),), graph_extra=b"",
             model_extra=b""):
    """ModelProto bytes: opset 13 and a graph of the given encoded pieces."""
    g = b"".join(ld(1, n) for n in nodes) + ld(2, "g") + b"".join(ld(5, t) for t in inits)
    g += b"".join(ld(11, i) for i in inputs) + b"".join(ld(12, o) for o in outputs) + graph_extra
    return vi(1, 8) + ld(8, ld(1, "") + vi(2, 13)) + ld(7, g) + model_extra


RELU = ld(1, "x") + ld(2, "y") + ld(3, "r") + ld(4, "Relu")


# --- every model the tests build -----------------------------------------------------------

def test_models_read_as_the_protobuf_oracle_reads_them():
    from edgert.cli import data_path
    datas = [tiny_cnn().SerializeToString(), tiny_cnn(batch=0).SerializeToString(),
             open(data_path("digits_int8.onnx"), "rb").read()]
    M = pytest.importorskip("bench.models")
    for name in ("mobilenet_v2_035_96", "ds_cnn", "mlp", "shufflenet_g3"):
        datas += [open(M.build_quantized(name, v), "rb").read() for v in M.variants_for(name)]
    for data in datas:
        mine, _ = agree(data, own=True)
        assert not isinstance(mine, Exception), mine


def test_typed_data_fields_of_every_element_type():
    """Tensors stored in float_data / int32_data / int64_data / double_data / uint64_data (not
    raw_data), including negative and out-of-range narrow values, as Constant attributes and
    initializers; both readers give numpy's values."""
    cases = {
        TensorProto.FLOAT: np.array([1.5, -0.0, np.inf, 3e38], np.float32),
        TensorProto.DOUBLE: np.array([1e300, -2.5], np.float64),
        TensorProto.INT8: np.array([-128, 127, -1, 0], np.int8),
        TensorProto.UINT8: np.array([0, 255, 128], np.uint8),
        TensorProto.INT16: np.array([-32768, 32767], np.int16),
        TensorProto.UINT16: np.array([65535, 1], np.uint16),
        TensorProto.INT32: np.array([-2 ** 31, 2 ** 31 - 1], np.int32),
        TensorProto.INT64: np.array([-2 ** 63, 2 ** 63 - 1, -1], np.int64),
        TensorProto.UINT32: np.array([2 ** 32 - 1, 0], np.uint32),
        TensorProto.UINT64: np.array([2 ** 64 - 1, 2 ** 63], np.uint64),
        TensorProto.BOOL: np.array([True, False, True], np.bool_),
        TensorProto.FLOAT16: np.array([1.0, -65504.0, 0.000061], np.float16),
    }
    nodes, inits = [], []
    for code, a in cases.items():
        name = f"c{code}"
        t = helper.make_tensor(name, code, a.shape, a.tolist() if code != TensorProto.FLOAT16
                               else a, raw=False)
        assert not t.HasField("raw_data")
        inits.append(t)
        nodes.append(helper.make_node("Constant", [], [name + "k"], value=t))
    outs = [helper.make_tensor_value_info(n.output[0], c, None) for n, c in zip(nodes, cases)]
    outs += [helper.make_tensor_value_info(t.name, c, None) for t, c in zip(inits, cases)]
    g = helper.make_graph(nodes, "typed", [], outs, inits)
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    mine, _ = agree(data)
    for code, a in cases.items():
        for got in (mine.constants[f"c{code}"],
                    next(n for n in mine.nodes if n.outputs == [f"c{code}k"]).attrs["value"]):
            assert got.dtype == a.dtype and got.tobytes() == a.tobytes(), code
    # Narrow values stored out of range wrap as a C cast does (onnxruntime reads them so).
    t = TensorProto(name="w", data_type=TensorProto.INT8, dims=[3])
    t.int32_data.extend([200, -129, 7])
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", TensorProto.INT8, [3])],
              [("y", TensorProto.INT8, [3])])
    m.graph.initializer.append(t)
    mine, _ = agree(m.SerializeToString())
    assert mine.constants["w"].tolist() == [-56, 127, 7]


def test_attribute_kinds():
    t = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "t")
    n = helper.make_node("Foo", ["x"], ["y"], name="n", domain="my.ops", f=-2.5, i=-(2 ** 40),
                         s="caf\u00e9", fs=[1.0, -0.5], ints=[-1, 0, 2 ** 62], strs=["a", "bc"],
                         t=t, g=helper.make_graph([], "sub", [], []))
    m = model([n], [("x", F, [1, 4])], [("y", F, [1, 4])])
    mine, _ = agree(m.SerializeToString())
    a = mine.nodes[0].attrs
    assert (a["f"], a["i"], a["s"], a["fs"], a["ints"], a["strs"]) == \
        (-2.5, -(2 ** 40), "caf\u00e9", [1.0, -0.5], [-1, 0, 2 ** 62], ["a", "bc"])
    assert np.array_equal(a["t"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert mine.nodes[0].domain == "my.ops"


# --- encodings protobuf reads but onnx's writer does not make ------------------------------

def _merged_tensor():
    # An attribute's tensor in two occurrences of field 5: protobuf merges them.
    first = ld(8, "t") + vi(1, 2) + vi(2, F)
    second = packed(1, [2]) + ld(9, np.arange(4, dtype="<f4").tobytes())
    return ld(1, "x") + ld(2, "y") + ld(4, "Foo") + ld(5, ld(1, "value") + vi(20, 4) + ld(5, first)
                                                      + ld(5, second))


ENCODINGS = {
    "unknown fields everywhere": assemble(
        [RELU + UNKNOWN + ld(5, ld(1, "a") + UNKNOWN + vi(20, 2) + vi(3, 5))],
        [numpy_helper.from_array(np.ones(4, np.float32), "w").SerializeToString() + UNKNOWN],
        inputs=[vinfo("x") + UNKNOWN], graph_extra=UNKNOWN, model_extra=UNKNOWN),
    "last scalar wins": assemble([ld(1, "x") + ld(2, "y") + ld(4, "Foo") + ld(4, "Relu")]),
    "wrong wire type is an unknown field": assemble([RELU + vi(4, 3) + f32(1, 1.0)]),
    "packed and single dims mixed": assemble(
        [RELU], [ld(8, "w") + packed(1, [2]) + vi(1, 3) + vi(2, F) + vi(2, TensorProto.INT8)
                 + ld(9, bytes(range(6)))]),
    "float_data unpacked and packed": assemble(
        [RELU], [ld(8, "w") + vi(1, 3) + vi(2, F) + f32(4, 1.0)
                 + ld(4, struct.pack("<2f", 2.0, -3.0))]),
    "ints mixed": assemble([RELU + ld(5, ld(1, "p") + vi(20, 7) + packed(8, [1, 2]) + vi(8, 3)
                                      + packed(8, [-4 & (2 ** 64 - 1)]))]),
    "long packed varints": assemble([RELU + ld(5, ld(1, "p") + vi(20, 7)
                                               + packed(8, list(range(-50, 2 ** 20, 9999))))]),
    "graph in two pieces": (vi(1, 8) + ld(8, ld(1, "") + vi(2, 13)) + ld(7, ld(1, RELU))
                            + ld(7, ld(11, vinfo("x")) + ld(12, vinfo("y")))),
    "tensor in two pieces": assemble([_merged_tensor()]),
    "oneof: tensor then sequence": assemble(
        [RELU], inputs=[ld(1, "x") + ld(2, ld(1, vi(1, F)) + ld(4, b""))]),
    "oneof: sequence then tensor": assemble(
        [RELU], inputs=[ld(1, "x") + ld(2, ld(4, b"") + ld(1, vi(1, F)))]),
    "dim value then param": assemble(
        [RELU], inputs=[ld(1, "x") + ld(2, ld(1, vi(1, F) + ld(2, ld(1, vi(1, 3) + ld(2, "N")))))]),
    "dim param then value": assemble(
        [RELU], inputs=[ld(1, "x") + ld(2, ld(1, vi(1, F) + ld(2, ld(1, ld(2, "N") + vi(1, 3)))))]),
    "negative element type, 10 bytes": assemble([RELU], [ld(8, "w") + vi(2, -1) + vi(1, 1)]),
    "enum of 64 bits keeps 32": assemble([RELU], [ld(8, "w") + vi(2, F | 1 << 40) + vi(1, 0)]),
    "model twice": assemble([RELU]) * 2,
    "opset from ai.onnx": (vi(1, 8) + ld(8, ld(1, "ai.onnx") + vi(2, 17))
                           + ld(7, ld(1, RELU) + ld(11, vinfo("x")) + ld(12, vinfo("y")))),
}


@pytest.mark.parametrize("case", ENCODINGS)
def test_encodings_protobuf_allows(case):
    data = ENCODINGS[case]
    onnx.ModelProto().ParseFromString(data)  # valid protobuf, every one
    mine, theirs = agree(data, own=True)
    expect_error = case.startswith(("negative", "model twice", "oneof: tensor then"))
    assert isinstance(mine, Exception) == expect_error, mine


# --- mangled bytes --------------------------------------------------------------------------

def _rich_model():
    n1 = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], alpha=0.5,
                          mode="same")
    n2 = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(
        np.array([3, -4], np.int64)))
    n3 = helper.make_node("Reshape", ["c", "k"], ["y"])
    return model([n1, n2, n3], [("x", F, ["N", 1, 4, 4])], [("y", F, None)],
                 {"w": np.ones((1, 1, 3, 3), np.float32)}).SerializeToString()


def test_truncations_and_bit_flips_read_as_protobuf_reads_them_or_fail_cleanly():
    """Every truncation, and thousands of bit flips, of a model with every kind of field: where
    protobuf refuses the bytes edgert refuses them; where edgert reads them it reads what
    protobuf reads."""
    data = _rich_model()
    rng = np.random.default_rng(1)
    mangled = [data[:cut] for cut in range(len(data))]
    for _ in range(3000):
        d = bytearray(data)
        for i in rng.integers(0, len(d), int(rng.integers(1, 4))):
            d[i] ^= 1 << int(rng.integers(0, 8))
        mangled.append(bytes(d))
    read = refused = 0
    for d in mangled:
        try:
            onnx.ModelProto().ParseFromString(d)
            valid = True
        except Exception:
            valid = False
        mine = outcome(read_onnx, d)
        owned = outcome(lambda b: read_onnx(b, own=True), d)  # as a model file is read
        assert isinstance(owned, Exception) == isinstance(mine, Exception), (owned, mine)
        if not isinstance(mine, Exception):
            same_graph(owned, mine)
        if not valid:
            # protobuf checks every nested message; edgert checks what it reads and skips the
            # fields it does not use (metadata, docs, value_info), so it may read these.
            refused += isinstance(mine, edgert.ModelError)
            continue
        theirs = outcome(onnx_oracle.read_onnx, d)
        if isinstance(mine, Exception):
            # Refusing what protobuf reads is allowed only for what protobuf reads loosely.
            assert isinstance(theirs, Exception) or "UTF-8" in str(mine) or "wire type" in str(mine), mine
            continue
        assert not isinstance(theirs, Exception), theirs
        same_graph(mine, theirs)
        read += 1
    assert read > 300 and refused > 300  # both sides of the property were tested


@pytest.mark.parametrize("data,message", [
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\x08\xff", "ends inside a number"),
    (b"\x3a" + varint(1 << 62) + b"xx", "field of 4611686018427387904 bytes where 2 remain"),
    (b"\x3a\x05ab", "field of 5 bytes where 2 remain"),
    (b"\x02\x00", "numbered 0"),
    (b"\x0b\x0c", "wire type 3"),
    (b"\x0f", "wire type 7"),
    (b"\x0d\x01\x02", "fixed-width"),
    (b"", "no graph"),
    (assemble([RELU + ld(5, ld(1, "p") + vi(20, 6) + ld(7, b"\x00" * 7))]), "multiple of 4"),
    (assemble([RELU + ld(5, ld(1, "p") + vi(20, 7) + ld(8, b"\x80" * 80))]), "inside a number"),
    (assemble([ld(1, "x") + ld(2, "y") + ld(3, b"\xff\xfe") + ld(4, "Relu")]), "not UTF-8"),
    (assemble([RELU], graph_extra=ld(15, b"")), "sparse initializers"),
    (assemble([RELU], [ld(8, "w") + vi(2, F) + vi(1, 2) + vi(14, 1)]), "'w'.*external"),
    (assemble([RELU], [ld(8, "w") + vi(2, F) + vi(1, 1 << 40) + ld(9, b"")]), "'w'.*elements"),
    (assemble([RELU], [ld(8, "w") + vi(2, F) + vi(1, 3) + f32(4, 1.0)]), "'w'.*holds 1 values"),
    (assemble([RELU], inputs=[ld(1, "x") + ld(2, ld(5, b""))]), "'x' is not a tensor.*map"),
])
def test_hostile_bytes_are_model_errors(data, message):
    with pytest.raises(edgert.ModelError, match=message):
        read_onnx(data)


def test_a_large_packed_array_is_read_in_one_pass():
    """A tensor of a million int32_data values (3 MB of varints): decoded vectorized, equal to
    the oracle's values."""
    a = np.random.default_rng(0).integers(-2 ** 31, 2 ** 31, 1 << 20).astype(np.int32)
    t = helper.make_tensor("w", TensorProto.INT32, a.shape, a.tolist(), raw=False)
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", TensorProto.INT32, a.shape)],
              [("y", TensorProto.INT32, a.shape)])
    m.graph.initializer.append(t)
    mine, _ = agree(m.SerializeToString())
    assert np.array_equal(mine.constants["w"], a)


def test_loading_onnx_needs_neither_onnx_nor_protobuf(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_cnn().SerializeToString())
    x = np.random.default_rng(0).normal(size=(1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np\n"
            "for m in ('onnx', 'google', 'google.protobuf', 'onnxruntime'):\n"
            "    sys.modules[m] = None  # any import of them fails\n"
            "import edgert\n"
            f"s = edgert.load({str(path)!r})\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, s.run(None, {{'input': np.load({str(tmp_path / 'x.npy')!r})}})[0])\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    expected = ort_session(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
