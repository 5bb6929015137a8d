"""Bad input of every kind gets a clear edgert exception: never a crash, hang or huge allocation."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgert
from nets import model, tiny_cnn

F = TensorProto.FLOAT


@pytest.fixture(scope="module")
def sess():
    return edgert.load(tiny_cnn().SerializeToString())


def test_wrong_input_name(sess):
    with pytest.raises(edgert.InputError, match="unknown input name.*'inputs'.*input"):
        sess.run(None, {"inputs": np.zeros((1, 3, 16, 16), np.float32)})


def test_missing_input(sess):
    with pytest.raises(edgert.InputError, match="missing input.*input"):
        sess.run(None, {})


def test_wrong_dtype_names_input_expected_and_given(sess):
    with pytest.raises(edgert.InputError, match="input 'input'.*float32.*float64"):
        sess.run(None, {"input": np.zeros((1, 3, 16, 16))})


def test_wrong_shape(sess):
    with pytest.raises(edgert.InputError, match=r"input 'input'.*\(1, 3, 16, 16\).*\(1, 3, 15, 16\)"):
        sess.run(None, {"input": np.zeros((1, 3, 15, 16), np.float32)})
    with pytest.raises(edgert.InputError, match="expected shape"):
        sess.run(None, {"input": np.zeros((3, 16, 16), np.float32)})


def test_wrongly_typed_input(sess):
    with pytest.raises(edgert.InputError, match="input 'input'"):
        sess.run(None, {"input": "not an array"})
    with pytest.raises(edgert.InputError):
        sess.run(None, [np.zeros((1, 3, 16, 16), np.float32)])


def test_unknown_output_name(sess):
    with pytest.raises(edgert.InputError, match="unknown output.*prob"):
        sess.run(["nope"], {"input": np.zeros((1, 3, 16, 16), np.float32)})


def test_errors_are_one_family():
    for cls in (edgert.ModelError, edgert.UnsupportedOpError, edgert.InputError,
                edgert.MissingDependencyError):
        assert issubclass(cls, edgert.EdgertError)


def test_unsupported_ops_are_all_listed():
    m = model([helper.make_node("Hardmax", ["x"], ["a"], name="hm"),
               helper.make_node("Relu", ["a"], ["b"]),
               helper.make_node("Foo", ["b"], ["y"], name="custom", domain="my.domain")],
              [("x", F, [1, 4])], [("y", F, [1, 4])])
    m.opset_import.append(helper.make_opsetid("my.domain", 1))
    with pytest.raises(edgert.UnsupportedOpError) as e:
        edgert.load(m.SerializeToString())
    msg = str(e.value)
    assert "hm" in msg and "Hardmax" in msg and "custom" in msg and "my.domain::Foo" in msg
    assert [(n[0], n[1]) for n in e.value.nodes] == [("hm", "Hardmax"), ("custom", "Foo")]


def test_missing_file():
    with pytest.raises(edgert.ModelError, match="cannot read model file.*nope.onnx"):
        edgert.load("/nonexistent/nope.onnx")


def test_garbage_and_truncated_files():
    data = tiny_cnn().SerializeToString()
    with pytest.raises(edgert.ModelError):
        edgert.load(b"\x00\xffnot a model at all" * 10)
    for cut in (1, 7, len(data) // 3, len(data) // 2, len(data) - 5):
        with pytest.raises(edgert.ModelError):
            edgert.load(data[:cut])


def test_bit_flips_never_crash():
    data = bytearray(tiny_cnn().SerializeToString())
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = bytearray(data)
        for i in rng.integers(0, len(d), 3):
            d[i] ^= 1 << int(rng.integers(0, 8))
        try:
            edgert.load(bytes(d)).run(None, {"input": np.zeros((1, 3, 16, 16), np.float32)})
        except edgert.EdgertError:
            pass


def test_cycle_is_rejected():
    m = model([helper.make_node("Relu", ["x", ], ["a"]),
               helper.make_node("Add", ["a", "c"], ["b"]),
               helper.make_node("Relu", ["b"], ["c"])],
              [("x", F, [1, 4])], [("c", F, [1, 4])])
    with pytest.raises(edgert.ModelError, match="defined twice|cycle"):
        edgert.load(m.SerializeToString())


def test_dangling_name_is_rejected():
    m = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")],
              [("x", F, [1, 4])], [("y", F, [1, 4])])
    with pytest.raises(edgert.ModelError, match="add.*ghost"):
        edgert.load(m.SerializeToString())


def test_absurd_initializer_dims_are_rejected_without_allocating():
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", F, [1, 4])], [("y", F, [1, 4])])
    for dims, raw, msg in (([1 << 20, 1 << 20, 1 << 20], 16, "elements"), ([4], 7, "bytes"),
                           ([-2, 4], 16, "invalid dimension")):
        t = TensorProto(name="w", data_type=F, dims=dims, raw_data=b"\x00" * raw)
        del m.graph.initializer[:]
        m.graph.initializer.append(t)
        with pytest.raises(edgert.ModelError, match=f"'w'.*{msg}"):
            edgert.load(m.SerializeToString())


def test_absurd_shapes_from_the_graph_are_rejected():
    m = model([helper.make_node("ConstantOfShape", ["s"], ["big"]),
               helper.make_node("Add", ["x", "big"], ["y"])],
              [("x", F, [1, 4])], [("y", F, [1, 4])], {"s": np.array([1 << 40, 1 << 40], np.int64)})
    with pytest.raises(edgert.ModelError, match="elements"):
        edgert.load(m.SerializeToString())
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [-3, 4])], [("y", F, [1, 4])])
    with pytest.raises(edgert.ModelError, match="negative"):
        edgert.load(m.SerializeToString())


def test_bad_attribute_values_are_model_errors():
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[0, 1])],
              [("x", F, [1, 1, 4, 4])], [("y", F, None)], {"w": np.ones((1, 1, 3, 3), np.float32)})
    with pytest.raises(edgert.ModelError, match="strides"):
        edgert.load(m.SerializeToString())
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], group=3)],
              [("x", F, [1, 4, 4, 4])], [("y", F, None)], {"w": np.ones((2, 1, 3, 3), np.float32)})
    with pytest.raises(edgert.ModelError, match="group"):
        edgert.load(m.SerializeToString())


def test_bad_threads_argument():
    with pytest.raises(edgert.EdgertError, match="threads"):
        edgert.load(tiny_cnn().SerializeToString(), threads=-1)
