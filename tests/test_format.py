"""The .edgert file: equal outputs, no onnx at load, versioning, and corruption of every kind."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert import format as fmt
from nets import quantize, tiny_cnn


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("fmt")
    q = quantize(tiny_cnn(batch=0), d / "q.onnx", fmt="QDQ", per_channel=True, act="QInt8")
    static = quantize(tiny_cnn(batch=1), d / "s.onnx")
    out = {}
    for name, src in (("dynamic", q), ("static", static)):
        path = d / f"{name}.edgert"
        edgert.compile(src, path)
        out[name] = (src, str(path))
    return out


def _x(batch=1, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (batch, 3, 16, 16)).astype(np.float32)


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_compiled_equals_onnx_bit_for_bit(models, kind):
    src, path = models[kind]
    a, b = edgert.load(src), edgert.load(path)
    for seed in range(3):
        x = _x(seed=seed)
        np.testing.assert_array_equal(a.run(None, {"input": x})[0], b.run(None, {"input": x})[0])
    assert [(i.name, i.shape, i.type) for i in a.get_inputs()] == \
           [(i.name, i.shape, i.type) for i in b.get_inputs()]
    assert [(o.name, o.type, o.scale, o.zero_point) for o in a.get_outputs()] == \
           [(o.name, o.type, o.scale, o.zero_point) for o in b.get_outputs()]


def test_compiled_dynamic_batch_plans_new_shapes(models):
    src, path = models["dynamic"]
    x = _x(batch=4, seed=7)
    np.testing.assert_array_equal(edgert.load(src).run(None, {"input": x})[0],
                                  edgert.load(path).run(None, {"input": x})[0])


def test_load_from_bytes(models):
    _, path = models["static"]
    with open(path, "rb") as f:
        data = f.read()
    x = _x()
    np.testing.assert_array_equal(edgert.load(data).run(None, {"input": x})[0],
                                  edgert.load(path).run(None, {"input": x})[0])


def test_loading_imports_neither_onnx_nor_protobuf(models):
    _, path = models["dynamic"]
    code = ("import sys, numpy as np, edgert; s = edgert.load(sys.argv[1]); "
            "s.run(None, {'input': np.zeros((2, 3, 16, 16), np.float32)}); "
            "bad = [m for m in sys.modules if m == 'onnx' or m.startswith(('onnx.', 'google.protobuf'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, path], check=True)


def _rewrite(data, doc=None, version=None, text=None):
    """The file with its JSON replaced by doc or raw text (or its version changed), CRCs recomputed."""
    magic, ver, res, jlen, boff, blen, jcrc, bcrc = fmt._HEADER.unpack_from(data, 0)
    blobs = data[boff:]
    if text is None:
        text = json.dumps(json.loads(data[64:64 + jlen]) if doc is None else doc).encode()
    new_off = -(-(64 + len(text)) // 64) * 64
    header = fmt._HEADER.pack(magic, ver if version is None else version, res, len(text), new_off,
                              len(blobs), fmt._crc(text), fmt._crc(blobs))
    return header.ljust(64, b"\0") + text + b"\0" * (new_off - 64 - len(text)) + blobs


def test_version_mismatch_is_explained(models):
    data = open(models["static"][1], "rb").read()
    with pytest.raises(edgert.ModelError, match="version 99 by a newer edgert.*recompile"):
        edgert.load(_rewrite(data, version=99))


def test_truncation_at_many_offsets(models):
    data = open(models["static"][1], "rb").read()
    for cut in sorted(set(np.linspace(0, len(data) - 1, 60).astype(int))):
        with pytest.raises(edgert.ModelError):
            edgert.load(data[:max(cut, len(fmt.MAGIC))])


def test_bit_flips_are_detected(models):
    data = open(models["static"][1], "rb").read()
    rng = np.random.default_rng(1)
    for pos in rng.integers(8, len(data), 150):
        d = bytearray(data)
        d[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(edgert.ModelError):
            edgert.load(bytes(d))


def test_hostile_metadata_with_valid_checksums(models):
    data = open(models["static"][1], "rb").read()
    doc = json.loads(data[64:64 + struct.unpack_from("<Q", data, 16)[0]])
    cases = []
    d = json.loads(json.dumps(doc)); d["blobs"][0]["shape"] = [1 << 40, 1 << 40]; cases.append(d)
    d = json.loads(json.dumps(doc)); d["blobs"][0]["offset"] = 1 << 50; cases.append(d)
    d = json.loads(json.dumps(doc)); d["blobs"][0]["nbytes"] = -5; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["arena_bytes"] = 64; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["tensors"][0]["shape"] = [-1, 3]; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["ops"][0]["inputs"] = [10 ** 6]; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["ops"][0]["type"] = "rm_rf"; cases.append(d)
    d = json.loads(json.dumps(doc)); del d["plan"]; cases.append(d)
    d = json.loads(json.dumps(doc)); d["inputs"][0]["dtype"] = "complex"; cases.append(d)
    for i, d in enumerate(cases):
        with pytest.raises(edgert.ModelError):
            edgert.load(_rewrite(data, d))
    with pytest.raises(edgert.ModelError, match="corrupt metadata"):
        edgert.load(_rewrite(data, text=b"[" * 100000 + b"]" * 100000))
    with pytest.raises(edgert.ModelError, match="corrupt metadata"):
        edgert.load(_rewrite(data, text=b"{not json"))
