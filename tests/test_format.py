"""The .edgert file: equal outputs, no onnx at load, versioning, and corruption of every kind."""
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert import _core
from edgert import format as fmt
import edgert_file as ef
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


def _parts(models, kind="static"):
    data = open(models[kind][1], "rb").read()
    return data, *ef.split(data)


def test_round_trip_of_the_test_reader(models):
    """The tests' own reader and writer agree with edgert's files byte for byte."""
    data, h, doc, plan, blobs = _parts(models)
    assert ef.encode_plan(ef.decode_plan(plan)) == plan
    assert ef.join(h, doc, plan, blobs, text=data[64:64 + h[3]]) == data


def test_weights_are_stored_packed(models):
    """Byte-form GEMM layers keep only their packed weights (what the kernels read)."""
    _, h, doc, plan, blobs = _parts(models)
    convs = [op for op in ef.decode_plan(plan)["ops"] if op["type"] in ("qconv", "qgemm")]
    packed = [op for op in convs if "x8_weight" in op["attrs"]]
    if "avx2" not in _core.available_isas():
        pytest.skip("no byte-form kernel on this machine")
    assert packed and all("weight" not in op["attrs"] for op in packed)


def test_weights_follow_the_arrays_loading_reads(models):
    """Creating the ops reads biases, scales and zero points, not the weights: those come first
    in the blob area, so that loading touches few pages of the mapping."""
    _, h, doc, plan, blobs = _parts(models)
    p = ef.decode_plan(plan)
    weights = {v for op in p["ops"] for k, (kind, v) in op["attrs"].items()
               if kind == 5 and k in fmt._Blobs.WEIGHTS}
    others = set(range(len(p["blobs"]))) - weights
    assert weights and others
    assert (max(p["blobs"][i]["offset"] for i in others)
            < min(p["blobs"][i]["offset"] for i in weights))


def test_version_mismatch_is_explained(models):
    _, h, doc, plan, blobs = _parts(models)
    with pytest.raises(edgert.ModelError, match="version 99 by a newer edgert.*recompile"):
        edgert.load(ef.join(h, doc, plan, blobs, version=99))
    with pytest.raises(edgert.ModelError, match="version 2 by an older edgert.*recompile"):
        edgert.load(ef.join(h, doc, plan, blobs, version=2))


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


def test_large_weights_are_checked_by_two_threads(models):
    """Weights past the inline limit are checksummed in chunks by a second thread and by the
    loading one once its ops exist: a flip in any chunk is caught."""
    _, h, doc, plan, blobs = _parts(models)
    big = blobs + bytes(600_000)
    good = ef.join(h, doc, plan, big)
    edgert.load(good, threads=1).run(None, {"input": _x()})
    off = len(good) - len(big)
    for pos in (0, len(blobs) - 1, len(blobs) + 300_000, len(big) - 1):
        d = bytearray(good)
        d[off + pos] ^= 0x10
        with pytest.raises(edgert.ModelError, match="weights checksum"):
            edgert.load(bytes(d), threads=1)


def test_large_weights_load_in_a_forked_child(models, tmp_path):
    """The checksum helper thread does not survive a fork: the child starts its own (and
    still catches a flip)."""
    _, h, doc, plan, blobs = _parts(models)
    big = blobs + bytes(600_000)
    good = ef.join(h, doc, plan, big)
    bad = bytearray(good)
    bad[-1] ^= 1
    (tmp_path / "good.edgert").write_bytes(good)
    (tmp_path / "bad.edgert").write_bytes(bytes(bad))
    code = """if True:
        import os, sys, edgert
        good, bad = sys.argv[1:]
        edgert.load(good, threads=1)
        pid = os.fork()
        if pid == 0:
            try:
                edgert.load(good, threads=1)
                try:
                    edgert.load(bad, threads=1)
                except edgert.ModelError as e:
                    os._exit(0 if "weights checksum" in str(e) else 2)
                os._exit(3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "good.edgert"),
                    str(tmp_path / "bad.edgert")], check=True, timeout=60)


def _op_index(p, attr):
    return next(i for i, op in enumerate(p["ops"]) if attr in op["attrs"])


def test_hostile_plans_with_valid_checksums(models):
    """Structural lies in the binary plan, checksums recomputed: each is a ModelError."""
    _, h, doc, plan, blobs = _parts(models)
    base = ef.decode_plan(plan)
    edits = {
        "blob shape overflows": lambda p: p["blobs"][0].update(shape=[1 << 40, 1 << 40]),
        "blob past the file": lambda p: p["blobs"][0].update(offset=1 << 50),
        "blob size lies": lambda p: p["blobs"][0].update(nbytes=p["blobs"][0]["nbytes"] + 64),
        "blob dtype unknown": lambda p: p["blobs"][0].update(dtype=9),
        "blob misaligned": lambda p: p["blobs"][-1].update(offset=p["blobs"][-1]["offset"] + 1)
        if p["blobs"][-1]["dtype"] != 0 else p["blobs"][-1].update(dtype=2, offset=1),
        "arena too small": lambda p: p.update(arena=64),
        "negative dim": lambda p: p["tensors"][0].update(shape=[-1, 3]),
        "rank 17": lambda p: p["tensors"][0].update(shape=[1] * 17),
        "tensor kind unknown": lambda p: p["tensors"][0].update(kind=7),
        "op input out of range": lambda p: p["ops"][0].update(inputs=[10 ** 6]),
        "op type unknown": lambda p: p["ops"][0].update(type="rm_rf"),
        "blob index out of range": lambda p: p["ops"][_op_index(p, "scale")]["attrs"].update(
            scale=(5, 10 ** 6)),
        "attr kind unknown": lambda p: p["ops"][_op_index(p, "scale")]["attrs"].update(
            scale=(9, 0)),
        "packed weights cut": lambda p: p["ops"][_op_index(p, "x8_weight")]["attrs"].update(
            x8_weight=p["ops"][_op_index(p, "x8_weight")]["attrs"]["x8_bias"]),
        "packed form unknown": lambda p: p["ops"][_op_index(p, "x8_weight")]["attrs"].update(
            x8_form=(0, 7)),
        "plan output missing": lambda p: p.update(outputs=[]),
        "packed by another layout": lambda p: p["ops"][_op_index(p, "x8_weight")]["attrs"].update(
            x8_layout=(4, "q8-gemm-x8/0000000000000000")),
    }
    for what, edit in edits.items():
        p = json.loads(json.dumps(base))
        edit(p)
        with pytest.raises(edgert.ModelError):
            edgert.load(ef.join(h, doc, ef.encode_plan(p), blobs))
            pytest.fail(what)
    # Counts that would ask for huge allocations, and a plan cut short or overlong.
    for raw in (plan[:8] + b"\xff\xff\xff\xff" + plan[12:], plan[:-3], plan + b"\0"):
        with pytest.raises(edgert.ModelError, match="corrupt plan"):
            edgert.load(ef.join(h, doc, raw, blobs))


class _Pairs(list):
    """Attributes as (name, value) pairs, for ef.encode_plan: may repeat a name."""

    def items(self):
        return self


def test_plan_attributes_are_checked_by_name(models):
    """Attributes read in place from the plan: a missing one, one of the wrong kind and a name
    given twice each fail naming the op and the attribute; an int is a float's valid value."""
    _, h, doc, plan, blobs = _parts(models)
    base = ef.decode_plan(plan)

    def load(attr, edit):
        p = json.loads(json.dumps(base))
        edit(p["ops"][_op_index(p, attr)])
        return edgert.load(ef.join(h, doc, ef.encode_plan(p), blobs), threads=1)

    conv = base["ops"][_op_index(base, "y_zp")]
    where = f"{conv['type']} '{conv['name']}': attribute '"
    filler = [(f"unused_{i}", (0, i)) for i in range(50)]  # past the indexed table size
    cases = [
        ("y_zp' is missing", lambda o: o["attrs"].pop("y_zp")),
        ("kernel' must be a list of ints, got a list of floats",
         lambda o: o["attrs"].update(kernel=(3, [3.0, 3.0]))),
        ("y_zp' must be a int, got a float", lambda o: o["attrs"].update(y_zp=(1, 0.0))),
        ("y_zp' given twice",
         lambda o: o.update(attrs=_Pairs(list(o["attrs"].items()) + [("y_zp", (0, 0))]))),
        ("y_zp' given twice",
         lambda o: o.update(attrs=_Pairs(list(o["attrs"].items()) + filler + [("y_zp", (0, 0))]))),
    ]
    for msg, edit in cases:
        with pytest.raises(edgert.ModelError, match=re.escape(where + msg)):
            load("y_zp", edit)
    assert load("a_scale", lambda o: o["attrs"].update(a_scale=(0, 1))).run(None, {"input": _x()})
    assert load("y_zp", lambda o: o.update(attrs=_Pairs(filler + list(o["attrs"].items()))))


def test_plan_names_must_be_utf8(models):
    """Names reach Python's error messages: a non-ASCII name loads and is reported intact; bytes
    that are not UTF-8 (a stray continuation, an overlong form, a surrogate) are corrupt."""
    _, h, doc, plan, blobs = _parts(models)
    base = ef.decode_plan(plan)
    i = _op_index(base, "y_zp")
    p = json.loads(json.dumps(base))
    p["ops"][i]["name"] = "conv_ü€😀"
    p["ops"][i]["attrs"].pop("y_zp")
    with pytest.raises(edgert.ModelError, match="qconv 'conv_ü€😀': attribute 'y_zp'"):
        edgert.load(ef.join(h, doc, ef.encode_plan(p), blobs))
    for bad in (b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        p = json.loads(json.dumps(base))
        p["ops"][i]["name"] = "@" * 24
        raw = ef.encode_plan(p).replace(b"@" * 24, b"abcdefghij" + bad + b"x" * (14 - len(bad)))
        with pytest.raises(edgert.ModelError, match="op name is not valid UTF-8"):
            edgert.load(ef.join(h, doc, raw, blobs))


def test_random_plan_mutations_never_crash(models):
    """Random byte changes in the plan with valid checksums: a ModelError, or a model that
    loads and runs (the change was harmless or only changed numbers); never a crash. The
    AddressSanitizer CI run repeats this."""
    _, h, doc, plan, blobs = _parts(models)
    rng = np.random.default_rng(3)
    x = _x()
    loaded = 0
    for _ in range(400):
        p = bytearray(plan)
        for pos in rng.integers(0, len(p), int(rng.integers(1, 4))):
            p[pos] = int(rng.integers(0, 256))
        try:
            s = edgert.load(ef.join(h, doc, bytes(p), blobs), threads=1)
        except edgert.ModelError:
            continue
        loaded += 1
        try:
            s.run(None, {"input": x})
        except edgert.EdgertError:
            pass
    assert loaded < 300, loaded  # most mutations must be caught


def test_hostile_metadata_with_valid_checksums(models):
    _, h, doc, plan, blobs = _parts(models)
    cases = []
    d = json.loads(json.dumps(doc)); del d["plan"]; cases.append(d)
    d = json.loads(json.dumps(doc)); d["inputs"][0]["dtype"] = "complex"; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["output_ids"] = []; cases.append(d)
    d = json.loads(json.dumps(doc)); d["plan"]["output_consts"] = {"0": {"$blob": 99}}
    cases.append(d)
    for d in cases:
        with pytest.raises(edgert.ModelError):
            edgert.load(ef.join(h, d, plan, blobs))
    with pytest.raises(edgert.ModelError, match="corrupt metadata"):
        edgert.load(ef.join(h, doc, plan, blobs, text=b"[" * 100000 + b"]" * 100000))
    with pytest.raises(edgert.ModelError, match="corrupt metadata"):
        edgert.load(ef.join(h, doc, plan, blobs, text=b"{not json"))
    for text in (b'{"producer": "\xff"}', b'{"producer": "\xed\xa0\x80"}'):  # not UTF-8
        with pytest.raises(edgert.ModelError, match="corrupt metadata"):
            edgert.load(ef.join(h, doc, plan, blobs, text=text))


def test_dynamic_graph_blobs_are_checked(models):
    _, h, doc, plan, blobs = _parts(models, "dynamic")
    d = json.loads(json.dumps(doc))
    d["blobs"][-1]["shape"] = [1 << 40, 1 << 40]
    with pytest.raises(edgert.ModelError):
        edgert.load(ef.join(h, d, plan, blobs))


_ISA_SCRIPT = r"""
import sys, numpy as np, edgert
x = np.random.default_rng(0).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
a = edgert.load(sys.argv[1]).run(None, {"input": x})[0]
b = edgert.load(sys.argv[2]).run(None, {"input": x})[0]
np.save(sys.argv[3], np.stack([a, b]))
print(edgert.isa())
"""


@pytest.mark.parametrize("isa", _core.available_isas())
@pytest.mark.parametrize("rr", [False, True])
def test_packed_file_runs_on_every_isa(tmp_path, isa, rr):
    """A file compiled here (weights packed for this machine's kernels) gives the same bytes
    under every ISA: another ISA unpacks and repacks the weights its own way."""
    src = quantize(tiny_cnn(batch=1, seed=4), tmp_path / "m.onnx", per_channel=True,
                   reduce_range=rr)
    compiled = tmp_path / "m.edgert"
    edgert.compile(src, compiled)
    x = _x()
    want = edgert.load(src).run(None, {"input": x})[0]
    out = tmp_path / "out.npy"
    env = dict(os.environ, EDGERT_ISA=isa)
    r = subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(src), str(compiled), str(out)],
                       env=env, check=True, capture_output=True, text=True)
    assert r.stdout.strip() == isa
    got = np.load(out)
    np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(got[1], want)


@pytest.mark.parametrize("native", [False, True])
def test_native_and_portable_files_give_the_same_bytes_under_every_isa(tmp_path, native):
    """edgert.compile plans a file for any ISA (int8 activations stay int8) or, native, for this
    machine's (on x86 they run as uint8, as a loaded .onnx does); either file gives the .onnx
    session's bytes under every ISA this machine has."""
    src = quantize(tiny_cnn(batch=1, seed=6), tmp_path / "m.onnx", fmt="QOperator",
                   per_channel=True, act="QInt8")
    compiled = tmp_path / "m.edgert"
    sess = edgert.compile(src, compiled, native=native)
    plan = next(iter(sess._plans.values())).plan
    shifted = any(t["dtype"] == "u8" for t in plan.tensors if t["kind"] == "arena")
    assert shifted == (native and _core.isa() in ("amx", "avx512vnni", "avx2"))
    x = _x()
    want = edgert.load(src).run(None, {"input": x})[0]
    for isa in _core.available_isas():
        out = tmp_path / f"{isa}.npy"
        r = subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(src), str(compiled), str(out)],
                           env=dict(os.environ, EDGERT_ISA=isa), check=True, capture_output=True,
                           text=True)
        assert r.stdout.strip() == isa
        got = np.load(out)
        np.testing.assert_array_equal(got[0], want)
        np.testing.assert_array_equal(got[1], want)


def test_compiled_files_carry_the_pair_orders_an_avx2_device_uses(tmp_path):
    """Lowering stores conv -> depthwise -> 1x1 chains in the channel order the AVX2 kernels'
    byte pairs want (fold_pair_orders) only where this ISA's kernels use it, but always in a plan
    for an .edgert file, which may run anywhere. MobileNetV2 0.35 has such chains; outputs are
    the same bytes either way, here and under avx2."""
    from edgert.lower import lower
    from edgert.onnx_import import read_onnx
    from edgert.qdq import fuse_qdq
    M = pytest.importorskip("bench.models")
    src = M.build_quantized("mobilenet_v2_035_96", "qop_au8_ws8_pt")
    g = fuse_qdq(read_onnx(open(src, "rb").read()))
    shapes = {v.name: tuple(v.shape) for v in g.inputs}

    def weights(portable):
        return [op.attrs["weight"] for op in lower(g, shapes, portable).ops if op.type == "qconv"]
    moved = sum(not np.array_equal(a, b) for a, b in zip(weights(False), weights(True)))
    assert _core.pair_orders_help() == (_core.isa() == "avx2")
    assert moved == 0 if _core.pair_orders_help() else moved >= 2
    compiled = tmp_path / "m.edgert"
    edgert.compile(src, compiled)
    x = M.sample_input("mobilenet_v2_035_96", 0)
    name = edgert.load(src).get_inputs()[0].name
    for isa in sorted({_core.isa(), "avx2"} & set(_core.available_isas())):
        out = tmp_path / f"{isa}.npy"
        np.save(tmp_path / "x.npy", x)
        code = ("import sys, numpy as np, edgert\n"
                "x = np.load(sys.argv[3])\n"
                f"r = [edgert.load(p).run(None, {{{name!r}: x}})[0] for p in sys.argv[1:3]]\n"
                "np.save(sys.argv[4], np.stack(r))\n")
        subprocess.run([sys.executable, "-c", code, src, str(compiled), str(tmp_path / "x.npy"),
                        str(out)], env=dict(os.environ, EDGERT_ISA=isa), check=True)
        got = np.load(out)
        np.testing.assert_array_equal(got[0], got[1])


def test_depthwise_packed_by_another_layout_is_repacked(models):
    """Depthwise weights stored packed for a kernel this machine does not run (another layout
    fingerprint) are packed anew from the stored weights: same outputs."""
    data, h, doc, plan, blobs = _parts(models)
    p = ef.decode_plan(plan)
    dw = [op for op in p["ops"] if "dw_layout" in op["attrs"]]
    assert dw, "the tiny CNN has a depthwise conv"
    for op in dw:
        op["attrs"]["dw_layout"] = (4, "some_other_kernel/0123456789abcdef")
    x = _x()
    want = edgert.load(data).run(None, {"input": x})[0]
    got = edgert.load(ef.join(h, doc, ef.encode_plan(p), blobs)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, want)
