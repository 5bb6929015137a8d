"""qgemm vs onnxruntime's com.microsoft QGemm (single-node models) and a numpy int64 oracle.

As for qconv: onnxruntime's AVX2 u8 x s8 path sums adjacent products in saturating int16 (no
reduce_range), so u8 x i8 is compared with onnxruntime on activations <= 127 and with the exact
numpy oracle on full-range data.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from oplib import run_op

U8, I8, F32 = np.uint8, np.int8, np.float32
ONNX_T = {np.dtype(U8): TensorProto.UINT8, np.dtype(I8): TensorProto.INT8,
          np.dtype(F32): TensorProto.FLOAT}
COMBOS = {"u8u8": (U8, U8), "u8i8": (U8, I8), "i8i8": (I8, I8), "i8u8": (I8, U8)}


def trange(dt):
    i = np.iinfo(dt)
    return int(i.min), int(i.max)


def make_case(seed, a_shape, n, at=U8, wt=I8, yt=None, per_channel=False, a_hi=None,
              a_zp=None, w_zp=None, y_zp=None, relu=False, distinct_wzp=False):
    rng = np.random.default_rng(seed)
    yt = at if yt is None else yt
    k = a_shape[-1]
    alo, ahi = trange(at)
    ahi = ahi if a_hi is None else a_hi
    wlo, whi = trange(wt)
    a = rng.integers(alo, ahi + 1, a_shape).astype(at)
    w = rng.integers(wlo, whi + 1, (n, k)).astype(wt)
    a_zp = int(rng.integers(alo, ahi + 1)) if a_zp is None else a_zp
    wzp = (rng.integers(wlo, whi + 1, n) if distinct_wzp else
           np.full(n, int(rng.integers(wlo, whi + 1)) if w_zp is None else w_zp)).astype(np.int32)
    a_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = (rng.uniform(0.001, 0.02, n) if per_channel else
               np.full(n, rng.uniform(0.001, 0.02))).astype(np.float32)
    a2 = a.reshape(-1, k).astype(np.int64) - a_zp
    wz = w.astype(np.int64) - wzp[:, None]
    acc0 = a2 @ wz.T
    bias = (rng.integers(-100 * k, 100 * k, n) - (acc0.mean(0) if relu else 0)).astype(np.int32)
    acc = acc0 + bias  # exact int64 oracle
    assert np.abs(acc).max() < 2**31
    y_scale = np.float32(float(np.std(acc)) * float(a_scale) * float(w_scale.mean()) / 50 + 1e-6)
    if yt == F32:
        scale = a_scale * w_scale
        y_zp, qmin, qmax = 0, 0, 0
        expect = acc.astype(F32) * scale
    else:
        scale = a_scale * w_scale / y_scale  # float32 ops, as onnxruntime computes them
        ylo, yhi = trange(yt)
        y_zp = int(rng.integers(ylo, yhi + 1)) if y_zp is None else y_zp
        qmin, qmax = (max(ylo, y_zp), yhi) if relu else (ylo, yhi)
        v = np.clip(acc.astype(F32) * scale, F32(qmin - y_zp), F32(qmax - y_zp))
        expect = (np.rint(v).astype(np.int64) + y_zp).astype(yt)
    expect = expect.reshape(tuple(a_shape[:-1]) + (n,))
    folded = bias.astype(np.int64) - a_zp * wz.sum(1)
    attrs = {"weight": w, "w_zp": wzp, "bias": folded.astype(np.int32),
             "scale": scale.astype(F32)}
    if yt != F32:
        attrs.update(y_zp=y_zp, qmin=qmin, qmax=qmax)
    return dict(a=a, w=w, wzp=wzp, bias=bias, a_zp=a_zp, a_scale=a_scale, w_scale=w_scale,
                y_scale=y_scale, y_zp=y_zp, qmin=qmin, qmax=qmax, yt=yt, attrs=attrs,
                expect=expect, per_channel=per_channel, acc=acc)


def run_edgert(cs, threads=1):
    return run_op("qgemm", [cs["a"]], [(cs["expect"].shape, cs["yt"])], cs["attrs"],
                  threads=threads)[0]


def ort_qgemm(cs):
    """com.microsoft QGemm with transB=1 on A flattened to 2-D; Relu narrowing as a clip."""
    a, w, yt = cs["a"], cs["w"], cs["yt"]
    pc = cs["per_channel"]
    T = onnx.numpy_helper.from_array
    inits = [T(np.array(cs["a_scale"], F32), "as"), T(np.array(cs["a_zp"], a.dtype), "az"),
             T(w, "b"),
             T(cs["w_scale"] if pc else np.array(cs["w_scale"][0], F32), "bs"),
             T(cs["wzp"].astype(w.dtype) if pc else np.array(cs["wzp"][0], w.dtype), "bz"),
             T(cs["bias"], "c")]
    ins = ["a", "as", "az", "b", "bs", "bz", "c"]
    if yt != F32:
        inits += [T(np.array(cs["y_scale"], F32), "ys"), T(np.array(cs["y_zp"], yt), "yz")]
        ins += ["ys", "yz"]
    node = helper.make_node("QGemm", ins, ["y"], domain="com.microsoft", transB=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", ONNX_T[a.dtype],
                                                                         None)],
                              [helper.make_tensor_value_info("y", ONNX_T[np.dtype(yt)], None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    y = sess.run(None, {"a": a.reshape(-1, a.shape[-1])})[0]
    if yt != F32:
        y = np.clip(y, cs["qmin"], cs["qmax"]).astype(yt)
    return y.reshape(cs["expect"].shape)


SHAPES = {
    "fc_m1": ((1, 1280), 1000),        # M=1: the work is split over columns
    "odd": ((37, 50), 19),
    "pointwise": ((3136, 96), 24),
    "rank4": ((2, 3, 5, 33), 7),
    "large_k": ((5, 4608), 24),
    "k1": ((64, 1), 3),
    "n1": ((7, 8), 1),
}


def ort_applies(cs):
    return cs["a"].dtype != I8 or cs["w"].dtype != U8  # no i8 x u8 QGemm kernel


@pytest.mark.parametrize("yt", ["same", "f32"])
@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("name", list(SHAPES))
def test_qgemm_matches_onnxruntime_and_numpy(name, combo, yt):
    at, wt = COMBOS[combo]
    a_shape, n = SHAPES[name]
    for seed, pc in ((1, False), (2, True)):
        a_hi = 127 if combo == "u8i8" else None  # below onnxruntime's int16 saturation
        kw = dict(yt=F32 if yt == "f32" else None, per_channel=pc, distinct_wzp=pc)
        cs = make_case(seed, a_shape, n, at, wt, a_hi=a_hi, **kw)
        y = run_edgert(cs)
        np.testing.assert_array_equal(y, cs["expect"])
        if ort_applies(cs):
            np.testing.assert_array_equal(y, ort_qgemm(cs))
        if a_hi is not None:  # full range: exact numpy oracle only
            cs = make_case(seed + 10, a_shape, n, at, wt, **kw)
            np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("end", [0, 1])
def test_qgemm_extreme_zero_points(combo, end):
    at, wt = COMBOS[combo]
    za, zw = trange(at)[end], trange(wt)[end]
    cs = make_case(3, (29, 70), 13, at, wt, a_zp=za, w_zp=zw, y_zp=za,
                   a_hi=127 if combo == "u8i8" else None)
    y = run_edgert(cs)
    np.testing.assert_array_equal(y, cs["expect"])
    if ort_applies(cs):
        np.testing.assert_array_equal(y, ort_qgemm(cs))
    # w - w_zp = ±255 (u8) / ±255 (i8 with the opposite end as zero point)
    cs = make_case(4, (29, 70), 13, at, wt, a_zp=za, w_zp=trange(wt)[1 - end], y_zp=za)
    np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("combo", ["u8u8", "i8i8"])
def test_qgemm_relu_narrowed_clamp(combo):
    at, wt = COMBOS[combo]
    mid = sum(trange(at)) // 2
    cs = make_case(5, (40, 64), 21, at, wt, relu=True, y_zp=mid, per_channel=True)
    y = run_edgert(cs)
    assert cs["qmin"] == mid and (y == mid).any() and (y >= mid).all()
    np.testing.assert_array_equal(y, cs["expect"])
    np.testing.assert_array_equal(y, ort_qgemm(cs))


@pytest.mark.parametrize("yt", [U8, I8])
def test_qgemm_mixed_output_type(yt):
    for at, wt in COMBOS.values():  # y typed unlike A: no onnxruntime kernel, numpy only
        cs = make_case(6, (17, 45), 11, at, wt, yt=yt, per_channel=True, distinct_wzp=True)
        np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("name", ["fc_m1", "pointwise", "large_k", "odd"])
def test_qgemm_threads_identical(name):
    a_shape, n = SHAPES[name]
    cs = make_case(7, a_shape, n, per_channel=True)
    y1 = run_edgert(cs, threads=1)
    np.testing.assert_array_equal(y1, cs["expect"])
    np.testing.assert_array_equal(run_edgert(cs, threads=2), y1)


def test_qgemm_rejects_bad_specs():
    from edgert import _core
    cs = make_case(8, (6, 10), 4)

    def bad(out_shape=None, a=None, **changes):
        attrs = dict(cs["attrs"], **changes)
        for k in [k for k, v in changes.items() if v is None]:
            del attrs[k]
        with pytest.raises(_core.ModelError):
            run_op("qgemm", [cs["a"] if a is None else a],
                   [(cs["expect"].shape if out_shape is None else out_shape, cs["yt"])], attrs)

    bad(weight=np.zeros((4, 9), np.int8))          # K mismatch
    bad(weight=np.zeros((4, 10), np.float32))
    bad(weight=np.zeros(40, np.int8))
    bad(weight=None)
    bad(out_shape=(6, 5))
    bad(out_shape=(3, 4))
    bad(a=np.zeros(10, np.uint8), out_shape=(4,))  # rank 1
    bad(a=np.zeros((6, 10), np.int32))
    bad(w_zp=np.zeros(3, np.int32))
    bad(w_zp=np.full(4, -129, np.int32))
    bad(bias=np.zeros(5, np.int32))
    bad(scale=np.array([1, 2, np.nan, 4], np.float32))
    bad(y_zp=256)
    bad(qmin=10, qmax=9)
    bad(qmin=-1)
    with pytest.raises(_core.ModelError, match="32768"):
        run_op("qgemm", [np.zeros((1, 40000), np.uint8)], [((1, 1), np.uint8)],
               dict(cs["attrs"], weight=np.zeros((1, 40000), np.int8), w_zp=np.zeros(1, np.int32),
                    bias=np.zeros(1, np.int32), scale=np.ones(1, np.float32)))


# ---- every ISA this machine runs, bit for bit (see test_op_qconv.run_under_isa) --------------
from test_op_qconv import other_isas, run_under_isa  # noqa: E402

ISA_SHAPES = [(1, 1, 1), (3, 3, 5), (4, 4, 16), (5, 5, 17), (7, 8, 31), (37, 50, 19),
              (64, 1, 3), (9, 4099, 20), (130, 96, 24), (3, 1280, 1000), (260, 36, 70)]


def _isa_case(seed, m, k, n, at, form, yt):
    rng = np.random.default_rng(seed)
    a = rng.integers(*trange(at), size=(m, k), endpoint=True).astype(at)
    lim = {"full": 127, "rr": 63, "m128": 128}[form]
    w = rng.integers(-lim, min(lim, 127) + 1, (n, k)).astype(I8)
    if form == "m128":
        w[:, 0] = -128
    wzp = np.zeros(n, np.int32)
    acc = a.astype(np.int64) @ w.astype(np.int64).T
    bias = rng.integers(-2**20, 2**20, n).astype(np.int32)
    scale = (rng.uniform(0.5, 2, n) / (np.abs(acc).max() / 100 + 1)).astype(F32)
    v = (acc + bias).astype(F32) * scale
    attrs = {"weight": w, "w_zp": wzp, "bias": bias, "scale": scale}
    if yt == F32:
        expect = v
    else:
        lo, hi = trange(yt)
        y_zp = [lo, hi, (lo + hi) // 2][seed % 3]
        attrs.update(y_zp=y_zp)
        expect = (np.rint(np.clip(v, F32(lo - y_zp), F32(hi - y_zp))).astype(np.int64)
                  + y_zp).astype(yt)
    return ("qgemm", [a], [((m, n), yt)], attrs, 1 + seed % 2), expect


@pytest.mark.skipif(not other_isas(), reason="this machine runs only one ISA")
def test_qgemm_every_isa_bit_exact():
    cases, expects = [], []
    for i, (m, k, n) in enumerate(ISA_SHAPES):
        for j, at in enumerate((U8, I8)):
            for f, form in enumerate(("full", "rr", "m128")):
                yt = (U8, I8, F32)[(i + j + f) % 3]
                c, e = _isa_case(1000 * i + 10 * j + f, m, k, n, at, form, yt)
                cases.append(c)
                expects.append(e)
    here = [run_op(*c)[0] for c in cases]
    for y, e, c in zip(here, expects, cases):
        np.testing.assert_array_equal(y, e, err_msg=str(c[1][0].shape))
    for isa in other_isas():
        for y, o, c in zip(here, run_under_isa(isa, cases), cases):
            np.testing.assert_array_equal(y, o[0], err_msg=f"{isa}: {c[1][0].shape}")
