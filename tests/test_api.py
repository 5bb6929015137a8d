"""The public Python API: load, metadata, run, predict, threads, dynamic batch, concurrency."""
import threading
import weakref

import numpy as np
import pytest

import edgert
from nets import ort_session, quantize, tiny_cnn

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def qmodel(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    return quantize(tiny_cnn(batch=0), d / "q.onnx", per_channel=True)


def _x(seed, batch=1):
    return np.random.default_rng(seed).normal(0, 1, (batch, 3, 16, 16)).astype(np.float32)


def test_load_from_path_and_bytes_agree(qmodel):
    a = edgert.load(qmodel).run(None, {"input": _x(0)})[0]
    with open(qmodel, "rb") as f:
        b = edgert.load(f.read()).run(None, {"input": _x(0)})[0]
    np.testing.assert_array_equal(a, b)


def test_metadata_matches_onnxruntime(qmodel):
    s, o = edgert.load(qmodel), ort_session(qmodel)
    for mine, theirs in ((s.get_inputs(), o.get_inputs()), (s.get_outputs(), o.get_outputs())):
        assert [m.name for m in mine] == [t.name for t in theirs]
        assert [m.type for m in mine] == [t.type for t in theirs]
        assert [len(m.shape) for m in mine] == [len(t.shape) for t in theirs]
    assert s.get_inputs()[0].dtype == np.float32
    assert s.get_inputs()[0].shape[1:] == [3, 16, 16]


def test_run_output_names_and_predict(qmodel):
    s = edgert.load(qmodel)
    x = _x(1)
    full = s.run(None, {"input": x})
    named = s.run(["prob"], {"input": x})
    np.testing.assert_array_equal(full[0], named[0])
    np.testing.assert_array_equal(s.predict(x), full[0])
    assert full[0].shape == (1, 10) and full[0].dtype == np.float32


def test_dynamic_batch_equals_single_runs(qmodel):
    s = edgert.load(qmodel)
    xs = _x(2, batch=3)
    batched = s.run(None, {"input": xs})[0]
    singles = np.concatenate([s.run(None, {"input": xs[i:i + 1]})[0] for i in range(3)])
    np.testing.assert_array_equal(batched, singles)
    ref = ort_session(qmodel).run(None, {"input": xs})[0]
    assert batched.shape == ref.shape


def test_results_independent_of_thread_count(qmodel):
    x = _x(3, batch=2)
    outs = [edgert.load(qmodel, threads=t).run(None, {"input": x})[0] for t in (1, 2, 3)]
    for o in outs[1:]:
        np.testing.assert_array_equal(outs[0], o)


def test_concurrent_runs_on_one_session(qmodel):
    s = edgert.load(qmodel, threads=2)
    xs = [_x(10 + i) for i in range(8)]
    expected = [s.run(None, {"input": x})[0] for x in xs]
    results = [None] * 8
    errors = []

    def work(i):
        try:
            for _ in range(20):
                r = s.run(None, {"input": xs[i]})[0]
                if not np.array_equal(r, expected[i]):
                    errors.append(i)
            results[i] = r
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_non_contiguous_input_gives_same_answer(qmodel):
    s = edgert.load(qmodel)
    x = _x(4)
    wide = np.zeros((1, 3, 16, 32), np.float32)
    wide[..., ::2] = x
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(s.run(None, {"input": view})[0], s.run(None, {"input": x})[0])


def test_warm_session_checks_inputs_like_a_cold_one(qmodel):
    """After a good run the next runs try the last plan first (Executor.try_run): it must decline
    every input the plan does not take as-is, with the same errors and answers as a fresh one."""
    warm = edgert.load(qmodel)
    x = _x(6)
    want = warm.run(None, {"input": x})[0]
    bad = [{"input": x.astype(np.float64)}, {"input": x[:, :, :15]}, {"inputs": x},
           {"input": x, "extra": x}, {}, {"input": x.tolist()[0]}]
    for feed in bad:
        errors = []
        for s in (edgert.load(qmodel), warm):
            with pytest.raises(edgert.EdgertError) as e:
                s.run(None, feed)
            errors.append((type(e.value), str(e.value)))
        assert errors[0] == errors[1], feed.keys()
        np.testing.assert_array_equal(warm.run(None, {"input": x})[0], want)

    class Sub(np.ndarray):
        pass

    raw = np.zeros(x.nbytes + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, np.float32, x.size, offset=1).reshape(x.shape)
    misaligned[...] = x
    assert not misaligned.flags.aligned
    for same in (np.asfortranarray(x), x.view(Sub), misaligned, x.copy()):
        np.testing.assert_array_equal(warm.run(None, {"input": same})[0], want)
    batch = _x(7, batch=2)  # another shape plans anew; the warm plan then changes too
    np.testing.assert_array_equal(warm.run(None, {"input": batch})[0],
                                  edgert.load(qmodel).run(None, {"input": batch})[0])
    np.testing.assert_array_equal(warm.run(["prob"], {"input": x})[0], want)


def test_constant_outputs_on_repeated_runs():
    """A graph output that is a constant comes back as a fresh copy on every run, the later runs
    (which try the last plan first) included."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Identity", ["c"], ["k"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("k", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(c, "c")])
    s = edgert.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
                    .SerializeToString())
    x = np.array([[-1, 2, -3, 4]], np.float32)
    for _ in range(3):
        y, k = s.run(None, {"x": x})
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        np.testing.assert_array_equal(k, c)
        k[0, 0] = 99  # the caller's copy: the next run must not see it
    np.testing.assert_array_equal(s.run(["k"], {"x": x})[0], c)


def test_inputs_are_not_modified(qmodel):
    s = edgert.load(qmodel)
    x = _x(5)
    before = x.copy()
    s.run(None, {"input": x})
    np.testing.assert_array_equal(x, before)


def test_isa_is_reported():
    assert edgert.isa() in ("amx", "avx512vnni", "avx2", "neon", "scalar")


def test_arena_is_reused(qmodel):
    info = edgert.load(qmodel).plan_info()
    assert 0 < info["arena_bytes"] < info["activation_bytes"]


def test_profile_times_every_plan_op_and_leaves_results_alone(qmodel):
    s = edgert.load(qmodel, threads=2)
    x = _x(20)
    before = s.run(None, {"input": x})[0]
    rows = s.profile({"input": x}, runs=5, warmup=1)
    assert [r["op"] for r in rows] == s.plan_info()["ops"]
    import onnx
    nodes = {n.name for n in onnx.load(qmodel).graph.node}
    assert any(r["node"] in nodes for r in rows)
    assert all(r["median_us"] > 0 and r["p90_us"] >= r["median_us"] for r in rows)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    np.testing.assert_array_equal(s.run(None, {"input": x})[0], before)
    np.testing.assert_array_equal(edgert.load(qmodel, threads=1).run(None, {"input": x})[0], before)


def test_profile_rejects_bad_arguments(qmodel):
    s = edgert.load(qmodel)
    with pytest.raises(edgert.InputError, match="runs >= 1"):
        s.profile({"input": _x(0)}, runs=0)
    with pytest.raises(edgert.InputError, match="unknown input name"):
        s.profile({"nope": _x(0)}, runs=1)
    with pytest.raises(edgert.InputError, match="expected dtype float32"):
        s.profile({"input": _x(0).astype(np.float64)}, runs=1, warmup=0)


def test_a_session_frees_the_weights_its_kernels_packed(qmodel, tmp_path):
    """A session loaded to run lets go of each conv's weights once its kernel has packed them
    (a compile session keeps them for the file): the plan's weights are gone, its facts are
    those of a plan that kept them, the answers are the same bytes, and writing it is refused
    with a message that says what to do."""
    from edgert import format as fmt
    from edgert import _load
    kept = _load(qmodel, None, None, None, for_file="portable")
    run = edgert.load(qmodel)
    ops = next(iter(run._plans.values())).plan.ops
    convs = [op for op in ops if op["type"] == "qconv"]
    assert convs and all(op["attrs"]["weight"] is None for op in convs)
    assert next(iter(kept._plans.values())).plan.ops[ops.index(convs[0])]["attrs"]["weight"] is not None
    from edgert.cli import plan_facts
    assert plan_facts(run) == plan_facts(kept)
    x = np.random.default_rng(3).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    for batch in (1, 3):  # a new shape plans (and frees) again
        xb = np.repeat(x, batch, axis=0)
        np.testing.assert_array_equal(run.run(None, {"input": xb})[0],
                                      kept.run(None, {"input": xb})[0])
    with pytest.raises(edgert.EdgertError, match="edgert.compile"):
        fmt.write(run, tmp_path / "m.edgert")
    edgert.compile(qmodel, tmp_path / "m.edgert")
    np.testing.assert_array_equal(edgert.load(tmp_path / "m.edgert").run(None, {"input": x})[0],
                                  run.run(None, {"input": x})[0])


def test_a_model_file_is_let_go_of_layer_by_layer(tmp_path):
    """A static-shape .onnx file loaded to run: the graph owns copies of its tensors (the file's
    bytes are freed at once) and the session empties the graph's constants before it packs,
    so each weight array dies once its layer is packed; a caller's graph without `consume`
    keeps them. The answers are the same bytes either way, and onnxruntime's within a step."""
    from edgert.onnx_import import read_onnx
    from edgert.session import Session
    path = quantize(tiny_cnn(batch=1), tmp_path / "static.onnx", per_channel=False)
    data = open(path, "rb").read()
    x = _x(5)
    kept_graph = read_onnx(data)
    kept = Session(kept_graph)
    weights = [weakref.ref(v) for v in kept_graph.constants.values() if v.ndim == 4]
    assert weights and all(w() is not None for w in weights)
    graph = read_onnx(data, own=True)
    weights = [weakref.ref(v) for v in graph.constants.values() if v.ndim == 4]
    assert weights
    consumed = Session(graph, consume=True)
    assert graph.constants == {} and all(w() is None for w in weights)
    want = kept.run(None, {"input": x})[0]
    np.testing.assert_array_equal(consumed.run(None, {"input": x})[0], want)
    np.testing.assert_array_equal(edgert.load(path).run(None, {"input": x})[0], want)
    ref = ort_session(path).run(None, {"input": x})[0]
    assert np.abs(want.astype(np.int32) - ref.astype(np.int32)).max() <= 1
