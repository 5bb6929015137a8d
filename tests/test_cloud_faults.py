"""The cloud client against a fault-injecting v2 server on 127.0.0.1: for each fault, the path
taken, the reason, the attempts, and that the call returns within its deadline."""
import time

import numpy as np
import pytest

import edgert
from edgert.cloud import CloudError
from cloud_servers import free_port, self_signed_cert, serve_session, tiny_model_bytes

pytest.importorskip("urllib3")

MARGIN_MS = 250  # scheduling slack on a loaded 2-core machine
DEADLINE_MS = 600
MODEL = tiny_model_bytes()
X = np.random.default_rng(7).normal(size=(1, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def oracle():
    return edgert.load(MODEL)


@pytest.fixture
def server(oracle):
    with serve_session(edgert.load(MODEL)) as s:
        yield s


def session(url, mode="prefer_cloud", deadline_ms=DEADLINE_MS, model="tiny", **kw):
    kw.setdefault("retries", 2)
    kw.setdefault("backoff_s", 0.02)
    fb = edgert.CloudFallback(url, model, **kw)
    return edgert.load(MODEL, fallback=fb, policy=edgert.Policy(mode, deadline_ms=deadline_ms))


def timed(sess, **kw):
    t = time.monotonic()
    r = sess.infer({"input": X}, **kw)
    return r, (time.monotonic() - t) * 1000.0


@pytest.mark.parametrize("binary", [False, True])
def test_healthy_server_answers_like_local(server, oracle, binary):
    server.binary = binary
    sess = session(server.url)
    r, ms = timed(sess)
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "policy", 1)
    np.testing.assert_array_equal(r.outputs["prob"], oracle.run(None, {"input": X})[0])
    assert list(r.outputs) == ["prob"]
    posts = [log for log in server.request_log if log[0] == "POST"]
    assert posts[0][2] == ("application/octet-stream" if binary else "application/json")
    assert ms < DEADLINE_MS + MARGIN_MS


# fault script, served_by, reason, attempts, substring of the cloud error
CASES = {
    "stall after accept": (["stall"], "local", "cloud-error", 1, "no answer in time"),
    "500 is not retried": (["500"], "local", "cloud-error", 1, "HTTP 500"),
    "400 is not retried": (["400"], "local", "cloud-error", 1, "HTTP 400"),
    "503 Retry-After 0 then ok": (["503:0"], "cloud", "policy", 2, None),
    "429 then ok": (["429:0"], "cloud", "policy", 2, None),
    "502, 504 then ok": (["502", "504"], "cloud", "policy", 3, None),
    "503 three times": (["503:0.1"] * 3, "local", "cloud-error", 3, "HTTP 503"),
    "503 Retry-After longer than the deadline": (["503:5"], "local", "cloud-error", 1, "HTTP 503"),
    "reset mid-response then ok": (["reset"], "cloud", "policy", 2, None),
    "reset every time": (["reset"] * 3, "local", "cloud-error", 3, "connection broken"),
    "closed before answering then ok": (["close"], "cloud", "policy", 2, None),
    "body shorter than Content-Length then ok": (["short"], "cloud", "policy", 2, None),
    "body shorter than Content-Length every time": (["short"] * 3, "local", "cloud-error", 3,
                                                    "connection broken"),
    "slow trickle": (["trickle"], "local", "cloud-error", 1, "in time"),
    "malformed JSON": (["badjson"], "local", "cloud-error", 1, "malformed JSON"),
    "wrong id": (["wrong_id"], "local", "cloud-error", 1, "does not match request id"),
    "wrong shape": (["wrong_shape"], "local", "cloud-error", 1, "shape [1, 11], expected [1, 10]"),
    "wrong datatype": (["wrong_dtype"], "local", "cloud-error", 1, "datatype FP64, expected FP32"),
}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("case", list(CASES))
def test_fault(server, oracle, case, binary):
    script, served_by, reason, attempts, message = CASES[case]
    server.binary = binary
    sess = session(server.url)
    server.script(*script)
    r, ms = timed(sess)
    assert (r.served_by, r.reason, r.attempts) == (served_by, reason, attempts), r.cloud_error
    assert server.infer_requests == attempts  # no hidden retries, none missing
    np.testing.assert_array_equal(r.outputs["prob"], oracle.run(None, {"input": X})[0])
    if message:
        assert message in r.cloud_error
    assert ms < DEADLINE_MS + MARGIN_MS, f"{case}: {ms:.0f} ms"
    assert abs(r.latency_ms - ms) < 100
    if case == "503 three times":  # each Retry-After (0.1 s) was waited
        assert ms >= 200
    if case == "503 Retry-After longer than the deadline":  # gave up at once instead of waiting
        assert ms < 300


@pytest.mark.parametrize("fault,reason", [("stall", "timeout"), ("500", "http-500"),
                                          ("400", "http-400"), ("badjson", "bad-response"),
                                          ("trickle", "timeout"), ("wrong_shape", "bad-response")])
def test_cloud_only_raises_one_clear_error(server, fault, reason):
    sess = session(server.url, mode="cloud_only")
    server.script(fault)
    t = time.monotonic()
    with pytest.raises(CloudError) as e:
        sess.infer({"input": X})
    assert (time.monotonic() - t) * 1000 < DEADLINE_MS + MARGIN_MS
    assert e.value.reason == reason and e.value.attempts == 1
    assert isinstance(e.value, edgert.EdgertError)
    assert sess.stats()["errors"] == {reason: 1}


def test_connection_refused_is_retried_then_local(oracle):
    sess = session(f"http://127.0.0.1:{free_port()}")
    r, ms = timed(sess)
    assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 3)
    assert "cannot connect" in r.cloud_error
    assert ms < DEADLINE_MS + MARGIN_MS
    np.testing.assert_array_equal(r.outputs["prob"], oracle.run(None, {"input": X})[0])


def test_deadline_bounds_retries(server):
    """503 with a Retry-After that fits once but not twice: the second wait is not started."""
    # Wide enough that a slow first attempt on a loaded machine still leaves room for one wait.
    sess = session(server.url, deadline_ms=2000, retries=5)
    server.script(*["503:1.2"] * 6)
    r, ms = timed(sess)
    assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 2)
    assert 1200 <= ms < 2000 + MARGIN_MS


def test_tls_untrusted_certificate(tmp_path, oracle):
    pair = self_signed_cert(str(tmp_path))
    if pair is None:
        pytest.skip("no way to make a certificate here: neither `cryptography` nor the openssl CLI")
    with serve_session(edgert.load(MODEL), tls=pair) as srv:
        assert srv.url.startswith("https://")
        sess = session(srv.url)
        r, ms = timed(sess)
        assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 1)
        assert "TLS" in r.cloud_error and "CERTIFICATE_VERIFY_FAILED" in r.cloud_error
        assert srv.infer_requests == 0 and ms < DEADLINE_MS + MARGIN_MS
        # the same server, trusted through ca_bundle: served by the cloud
        trusted = session(srv.url, ca_bundle=pair[0])
        r = trusted.infer({"input": X})
        assert (r.served_by, r.reason, r.attempts) == ("cloud", "policy", 1)
        np.testing.assert_array_equal(r.outputs["prob"], oracle.run(None, {"input": X})[0])


@pytest.mark.parametrize("fault", ["trickle", "stall", "reset", "short", "badjson"])
def test_next_call_after_a_fault_is_clean(server, oracle, fault):
    """A connection left half-read by a fault is not reused for the next call."""
    sess = session(server.url, deadline_ms=400, retries=0)
    server.script(fault)
    assert sess.infer({"input": X}).served_by == "local"
    for _ in range(3):
        r = sess.infer({"input": X})
        assert (r.served_by, r.reason, r.attempts) == ("cloud", "policy", 1), r.cloud_error
        np.testing.assert_array_equal(r.outputs["prob"], oracle.run(None, {"input": X})[0])
