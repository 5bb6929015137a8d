"""concat, transpose, pad, copy through the executor, against numpy."""
import itertools

import numpy as np
import pytest

from edgert import _core
from oplib import run_op

DTYPES = [np.uint8, np.int8, np.int32, np.int64, np.float32]


def rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3, 4), (2, 5, 4)], 1),
    ([(3, 4), (3, 1), (3, 7)], 1),
    ([(1, 8), (4, 8)], 0),
    ([(2, 3, 4, 5), (2, 3, 4, 2)], 3),
    ([(6,)], 0),
    ([(2, 0, 3), (2, 4, 3)], 1),
    ([(64, 33, 17), (64, 3, 17)], 1),
])
def test_concat(dtype, threads, shapes, axis):
    xs = [rand(s, dtype, i) for i, s in enumerate(shapes)]
    want = np.concatenate(xs, axis=axis)
    (y,) = run_op("concat", xs, [(want.shape, dtype)], {"axis": axis}, threads=threads)
    np.testing.assert_array_equal(y, want)


def test_concat_rejects_bad_specs():
    a, b = rand((2, 3), np.float32), rand((2, 4), np.float32)
    with pytest.raises(_core.ModelError, match="axis"):
        run_op("concat", [a, b], [((2, 7), np.float32)], {"axis": 2})
    with pytest.raises(_core.ModelError, match="axis"):
        run_op("concat", [a, b], [((2, 7), np.float32)], {"axis": -1})
    with pytest.raises(_core.ModelError, match="does not fit"):
        run_op("concat", [a, b], [((4, 3), np.float32)], {"axis": 0})
    with pytest.raises(_core.ModelError, match="sum"):
        run_op("concat", [a, b], [((2, 8), np.float32)], {"axis": 1})
    with pytest.raises(_core.ModelError, match="dtype"):
        run_op("concat", [a, b.astype(np.int32)], [((2, 7), np.float32)], {"axis": 1})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,perm", [
    ((2, 3), (1, 0)),
    ((1, 8, 9, 3), (0, 3, 1, 2)),      # NHWC -> NCHW
    ((2, 3, 9, 8), (0, 2, 3, 1)),      # NCHW -> NHWC
    ((2, 3, 4, 5, 1, 3), (5, 0, 4, 3, 1, 2)),
    ((4, 1, 5), (2, 1, 0)),
    ((3, 4, 5), (0, 1, 2)),
    ((0, 4, 5), (2, 0, 1)),
    ((7,), (0,)),
    ((1, 1), (1, 0)),
    ((97, 131, 5), (1, 0, 2)),
    ((3, 3, 7, 5), (0, 2, 3, 1)),      # NCHW -> NHWC in 16-row blocks: 35 = 2 * 16 + 3
    ((2, 2, 4, 4), (0, 2, 3, 1)),      # exactly one block per image
    ((1, 4, 50, 11), (0, 2, 3, 1)),
    ((2, 5, 33), (0, 2, 1)),
    ((2, 19, 40), (0, 2, 1)),          # row length without an unrolled form
    ((40, 2, 3), (1, 2, 0)),           # a merged 2-d transpose with C = 6
    ((1, 3, 17, 23), (0, 2, 3, 1)),    # image input: 3 channels, 391 pixels (a partial step)
    ((2, 2, 5, 33), (0, 2, 3, 1)),
    ((1, 4, 64, 65), (0, 2, 3, 1)),    # 4160 pixels: two 4096-pixel ranges for bytes
    ((1, 20, 18, 40), (0, 3, 1, 2)),   # NHWC -> NCHW, 40 channels: 16x16 byte tiles + overlap
    ((2, 70, 9, 9), (0, 2, 3, 1)),     # 81 pixels x 70 channels
    ((1, 64, 20, 20), (0, 2, 3, 1)),   # 400 rows: six 64-row ranges, the last one 80
])
def test_transpose(dtype, threads, shape, perm):
    x = rand(shape, dtype)
    want = np.transpose(x, perm)
    (y,) = run_op("transpose", [x], [(want.shape, dtype)], {"perm": list(perm)}, threads=threads)
    np.testing.assert_array_equal(y, want)


def test_transpose_every_perm_rank4():
    x = rand((2, 3, 4, 5), np.int32)
    for perm in itertools.permutations(range(4)):
        want = np.transpose(x, perm)
        (y,) = run_op("transpose", [x], [(want.shape, np.int32)], {"perm": list(perm)})
        np.testing.assert_array_equal(y, want, err_msg=str(perm))


def test_transpose_rejects_bad_specs():
    x = rand((2, 3, 4), np.float32)
    for perm in ([0, 1], [0, 0, 1], [0, 1, 3], [-1, 0, 1]):
        with pytest.raises(_core.ModelError, match="perm"):
            run_op("transpose", [x], [((2, 3, 4), np.float32)], {"perm": perm})
    with pytest.raises(_core.ModelError, match="output shape"):
        run_op("transpose", [x], [((2, 3, 4), np.float32)], {"perm": [2, 1, 0]})
    with pytest.raises(_core.ModelError, match="rank"):
        run_op("transpose", [rand((1,) * 7, np.float32)], [((1,) * 7, np.float32)],
               {"perm": list(range(7))})


def np_pad(x, pads, mode, value):
    r = x.ndim
    width = [(pads[d], pads[r + d]) for d in range(r)]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode="reflect" if mode == "reflect" else "edge")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,pads", [
    ((3, 4), (1, 2, 2, 1)),
    ((1, 5, 6, 3), (0, 1, 2, 0, 0, 3, 1, 0)),   # NHWC spatial pad
    ((2, 3, 4), (0, 0, 0, 0, 0, 0)),
    ((4,), (3, 2)),
    ((2, 3, 4, 5, 2), (1, 0, 2, 1, 0, 0, 1, 0, 3, 1)),
    ((40, 50, 3), (1, 2, 0, 2, 1, 0)),
])
def test_pad(dtype, mode, threads, shape, pads):
    x = rand(shape, dtype)
    value = 7 if np.dtype(dtype).kind != "f" else -1.5
    want = np_pad(x, pads, mode, value)
    attrs = {"pads": list(pads), "mode": mode, "value": float(value)}
    (y,) = run_op("pad", [x], [(want.shape, dtype)], attrs, threads=threads)
    np.testing.assert_array_equal(y, want)


def test_pad_constant_default_and_empty_input():
    x = rand((2, 0, 3), np.uint8)
    (y,) = run_op("pad", [x], [((2, 2, 3), np.uint8)], {"pads": [0, 1, 0, 0, 1, 0]})
    np.testing.assert_array_equal(y, np.zeros((2, 2, 3), np.uint8))
    (y,) = run_op("pad", [x], [((2, 2, 3), np.uint8)],
                  {"pads": [0, 1, 0, 0, 1, 0], "value": 128.0})
    np.testing.assert_array_equal(y, np.full((2, 2, 3), 128, np.uint8))


def test_pad_rejects_bad_specs():
    x = rand((3, 4), np.int8)
    bad = [
        ({"pads": [1, 1, 1]}, (5, 6), "pads"),
        ({"pads": [-1, 0, 0, 0]}, (2, 4), "non-negative"),
        ({"pads": [3, 0, 0, 0], "mode": "reflect"}, (6, 4), "reflect"),
        ({"pads": [1, 0, 0, 0], "mode": "wrap"}, (4, 4), "mode"),
        ({"pads": [1, 0, 0, 0], "value": 200.0}, (4, 4), "value"),
        ({"pads": [1, 0, 0, 0], "value": 1.5}, (4, 4), "value"),
        ({"pads": [1, 0, 0, 0]}, (5, 4), "output shape"),
    ]
    for attrs, yshape, msg in bad:
        with pytest.raises(_core.ModelError, match=msg):
            run_op("pad", [x], [(yshape, np.int8)], attrs)
    e = np.zeros((0, 4), np.int8)
    with pytest.raises(_core.ModelError, match="edge"):
        run_op("pad", [e], [((1, 4), np.int8)], {"pads": [1, 0, 0, 0], "mode": "edge"})


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_reshapes(dtype):
    x = rand((3, 5, 7), dtype)
    (y,) = run_op("copy", [x], [((7, 15), dtype)], {})
    np.testing.assert_array_equal(y, x.reshape(7, 15))


def test_copy_large_parallel():
    x = rand((1 << 20) + 3, np.uint8)
    (y,) = run_op("copy", [x], [(x.shape, np.uint8)], {}, threads=2)
    np.testing.assert_array_equal(y, x)


def test_copy_rejects_size_mismatch():
    x = rand((3, 5), np.float32)
    with pytest.raises(_core.ModelError, match="bytes"):
        run_op("copy", [x], [((16,), np.float32)], {})
