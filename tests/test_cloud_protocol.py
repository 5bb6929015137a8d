"""The v2 codec and the retry helpers on their own: edgert.cloud.protocol against hand-written
JSON and binary bodies, Retry-After parsing, backoff bounds."""
import email.utils
import json
import time

import numpy as np
import pytest

from edgert.cloud import CloudError
from edgert.cloud.client import _retry_after
from edgert.cloud.protocol import decode_response, encode_request

EXPECTED = [("y", np.dtype(np.float32), [None, 3]), ("k", np.dtype(np.int64), [2])]


def test_json_request_layout():
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    body, headers = encode_request("r1", [("x", x)], ["y"], binary=False)
    doc = json.loads(body)
    assert headers["Content-Type"] == "application/json"
    assert doc["id"] == "r1" and doc["outputs"] == [{"name": "y"}]
    t = doc["inputs"][0]
    assert (t["name"], t["shape"], t["datatype"]) == ("x", [2, 3], "FP32")
    np.testing.assert_array_equal(np.asarray(t["data"], np.float32).reshape(2, 3), x)  # exact


def test_binary_request_layout():
    x = np.array([[1, -2], [3, 4]], np.int8)
    body, headers = encode_request("r2", [("x", x)], ["y"], binary=True)
    n = int(headers["Inference-Header-Content-Length"])
    doc = json.loads(body[:n])
    assert doc["inputs"][0]["parameters"] == {"binary_data_size": 4}
    assert "data" not in doc["inputs"][0]
    assert doc["outputs"] == [{"name": "y", "parameters": {"binary_data": True}}]
    assert body[n:] == x.tobytes()


def _response(rid="r", y=None, k=None, binary=False):
    y = np.array([[0.5, 0.25, 0.125]], np.float32) if y is None else y
    k = np.array([7, 8], np.int64) if k is None else k
    outs, blobs = [], []
    for name, a, dt in (("y", y, "FP32"), ("k", k, "INT64")):
        t = {"name": name, "shape": list(a.shape), "datatype": dt}
        if binary:
            t["parameters"] = {"binary_data_size": a.nbytes}
            blobs.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
        else:
            t["data"] = a.ravel().tolist()
        outs.append(t)
    head = json.dumps({"id": rid, "outputs": outs}).encode()
    return head + b"".join(blobs), ({"Inference-Header-Content-Length": str(len(head))} if binary else {})


@pytest.mark.parametrize("binary", [False, True])
def test_decode_good(binary):
    body, headers = _response(binary=binary)
    out = decode_response(body, headers, "r", EXPECTED)
    np.testing.assert_array_equal(out["y"], [[0.5, 0.25, 0.125]])
    assert out["k"].dtype == np.int64 and out["k"].tolist() == [7, 8]


@pytest.mark.parametrize("mutate,message", [
    (lambda b, h: (b[:-3], h), "malformed JSON"),
    (lambda b, h: (b"[1, 2]", h), "expected a JSON object"),
    (lambda b, h: (b.replace(b'"id": "r"', b'"id": "q"'), h), "does not match request id"),
    (lambda b, h: (b.replace(b'"shape": [2]', b'"shape": [3]'), h), "2 values for shape [3]"),
    (lambda b, h: (b.replace(b'"shape": [1, 3]', b'"shape": [3, 1]'), h), "expected [?, 3]"),
    (lambda b, h: (b.replace(b'"INT64"', b'"INT32"'), h), "datatype INT32, expected INT64"),
    (lambda b, h: (b.replace(b'"INT64"', b'"STRING"'), h), "unknown datatype"),
    (lambda b, h: (b.replace(b'"name": "k"', b'"name": "z"'), h), "output 'k' is missing"),
    (lambda b, h: (b.replace(b'"data": [7, 8]', b'"data": ["a", "b"]'), h), "data is not INT64"),
    (lambda b, h: (b.replace(b'"shape": [2]', b'"shape": [-2]'), h), "invalid shape"),
])
def test_decode_rejects(mutate, message):
    body, headers = mutate(*_response())
    with pytest.raises(CloudError, match="invalid response") as e:
        decode_response(body, headers, "r", EXPECTED)
    assert message in str(e.value) and e.value.reason == "bad-response"


def test_decode_rejects_bad_binary():
    body, headers = _response(binary=True)
    with pytest.raises(CloudError, match="binary_data_size"):
        decode_response(body[:-4], headers, "r", EXPECTED)  # a blob cut short
    with pytest.raises(CloudError, match="exceeds"):
        decode_response(body, {"Inference-Header-Content-Length": str(len(body) + 1)}, "r", EXPECTED)
    with pytest.raises(CloudError, match="not an integer"):
        decode_response(body, {"Inference-Header-Content-Length": "x"}, "r", EXPECTED)


def test_retry_after_forms():
    assert _retry_after(None) is None and _retry_after("") is None
    assert _retry_after("2") == 2.0 and _retry_after("0") == 0.0 and _retry_after("-3") == 0.0
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _retry_after(when) <= 31
    assert _retry_after("soon") is None


def test_backoff_is_jittered_and_bounded():
    import random

    import edgert
    fb = edgert.CloudFallback("http://127.0.0.1:1", "m", backoff_s=0.1, max_backoff_s=0.3,
                              rng=random.Random(0))
    delays = [fb._backoff(a) for a in (1, 2, 3, 4, 5) for _ in range(20)]
    assert all(0.05 <= d <= 0.3 for d in delays)
    assert len({round(d, 6) for d in delays}) > 50  # jittered, not a fixed schedule
