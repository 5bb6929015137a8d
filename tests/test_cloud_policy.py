"""Policy decisions, the circuit breaker under a fake clock, metadata checks, privacy of
local_only, the token, stats, and cloud-only loading of models edgert cannot run."""
import logging
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgert
from edgert.cloud import CloudError, CloudMetadataError
from edgert.cloud.breaker import CircuitBreaker
from edgert.cloud.estimate import CloudEstimator, LocalEstimator
from edgert.cloud.policy import default_confidence
from cloud_servers import FaultServer, free_port, meta_for, serve_session, tiny_model_bytes
from nets import model

pytest.importorskip("urllib3")

MODEL = tiny_model_bytes()
X = np.random.default_rng(3).normal(size=(1, 3, 16, 16)).astype(np.float32)


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def server():
    with serve_session(edgert.load(MODEL)) as s:
        yield s


def load(url, policy=None, model_bytes=MODEL, name="tiny", **kw):
    kw.setdefault("backoff_s", 0.01)
    return edgert.load(model_bytes, fallback=edgert.CloudFallback(url, name, **kw),
                       policy=policy or edgert.Policy())


def local_answer(x=X):
    return edgert.load(MODEL).run(None, {"input": x})[0]


# --- privacy ---------------------------------------------------------------------------------
def test_local_only_sends_nothing_ever(server):
    sess = load(server.url, edgert.Policy("local_only", deadline_ms=1, min_confidence=1.0))
    sess._cloud.local_est.add(10_000.0)  # even when local "cannot" meet the deadline
    for i in range(20):
        r = sess.infer({"input": X}, deadline_ms=1 + i)
        assert (r.served_by, r.reason, r.attempts) == ("local", "policy", 0)
        sess.predict(X, deadline_ms=5)
    assert server.connections == 0 and server.bytes_in == 0 and server.request_log == []
    s = sess.stats()
    assert s["bytes_sent"] == s["bytes_received"] == s["cloud_attempts"] == 0
    assert s["served"] == {"local": {"policy": 40}}


def test_local_only_with_unsupported_model_raises():
    with pytest.raises(edgert.UnsupportedOpError):
        load(f"http://127.0.0.1:{free_port()}", edgert.Policy("local_only"),
             model_bytes=_hardmax_model())


# --- decisions -------------------------------------------------------------------------------
def test_prefer_local_serves_locally(server):
    sess = load(server.url)
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "policy", 0)
    assert server.infer_requests == 0
    np.testing.assert_array_equal(sess.predict(X), local_answer())


def test_deadline_local_too_slow_goes_to_cloud(server):
    sess = load(server.url, edgert.Policy(deadline_ms=500))
    for _ in range(5):
        sess._cloud.local_est.add(2000.0)  # local measured at 2 s: cannot fit 500 ms
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "deadline", 1)
    np.testing.assert_array_equal(r.outputs["prob"], local_answer())
    # without a deadline the same session stays local
    assert sess.infer({"input": X}, deadline_ms=10_000).served_by == "local"


def test_deadline_cloud_failure_still_answers_locally(server):
    sess = load(server.url, edgert.Policy(deadline_ms=300), retries=0)
    for _ in range(5):
        sess._cloud.local_est.add(2000.0)
    server.script("500")
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 1)
    server.script("stall")  # the cloud uses up the deadline: local answers, late, not never
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 1)
    assert 300 <= r.latency_ms < 300 + 250
    np.testing.assert_array_equal(r.outputs["prob"], local_answer())


def test_deadline_cloud_too_slow_stays_local(server):
    sess = load(server.url, edgert.Policy("prefer_cloud", deadline_ms=100), expected_rtt_ms=5000)
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "deadline", 0)
    assert server.infer_requests == 0
    r = sess.infer({"input": X}, deadline_ms=20_000)
    assert (r.served_by, r.reason) == ("cloud", "policy")


def test_cloud_estimate_learns_rtt_and_throughput():
    est = CloudEstimator(prior_rtt_ms=None, prior_throughput_Bps=1e6)
    assert est.estimate(1000) is None  # unknown: assume it fits
    for b in (1e3, 1e5, 2e5, 4e5, 8e5, 1e3, 4e5):
        est.add(b, 20.0 + b / 1e4)  # 20 ms RTT, 10 MB/s
    rtt, bps = est.model()
    assert abs(rtt - 20.0) < 1.0 and abs(bps - 1e7) / 1e7 < 0.05
    assert abs(est.estimate(5e5) - 70.0) < 2.0
    local = LocalEstimator()
    assert local.estimate() is None
    local.add(1000.0)  # the cold first run counts only until there is another
    assert local.estimate() == 1000.0
    for ms in range(1, 11):
        local.add(ms)
    assert 9.0 <= local.estimate() <= 10.0


def test_low_confidence_escalates(server):
    sess = load(server.url, edgert.Policy(min_confidence=0.99))
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "low-confidence", 1)
    assert r.confidence < 0.99 and r.confidence == pytest.approx(local_answer().max(), abs=1e-6)
    sess = load(server.url, edgert.Policy(min_confidence=0.01))
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.low_confidence) == ("local", "policy", False)


def test_low_confidence_cloud_failure_returns_local_marked(server):
    sess = load(server.url, edgert.Policy(min_confidence=0.99))
    server.script("500")
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts, r.low_confidence) == ("local", "cloud-error", 1, True)
    np.testing.assert_array_equal(r.outputs["prob"], local_answer())
    # custom confidence callable
    sess = load(server.url, edgert.Policy(min_confidence=0.5, confidence=lambda o: 0.9))
    assert sess.infer({"input": X}).served_by == "local"


def test_default_confidence():
    assert default_confidence({"p": np.array([[0.1, 0.7, 0.2]])}) == pytest.approx(0.7)
    logits = np.array([[0.0, 0.0], [0.0, np.log(3.0)]])
    assert default_confidence({"y": logits}) == pytest.approx(0.5)  # min over the batch


def test_local_error_goes_to_cloud(server):
    sess = load(server.url)

    def broken(*a, **k):
        raise RuntimeError("local kernel failure")
    sess.run = broken
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "local-error", 1)
    server.script("400")
    with pytest.raises(RuntimeError, match="local kernel failure") as e:
        sess.infer({"input": X})
    assert isinstance(e.value.__cause__, CloudError)


def test_input_errors_are_raised_before_any_path(server):
    sess = load(server.url, edgert.Policy("cloud_only"))
    with pytest.raises(edgert.InputError):
        sess.infer({"input": X.astype(np.float64)})
    with pytest.raises(edgert.InputError):
        sess.infer({"input": X}, deadline_ms=-5)
    assert server.infer_requests == 0


# --- the circuit breaker ---------------------------------------------------------------------
def test_breaker_transitions_under_fake_clock(server):
    clock = FakeClock()
    sess = load(server.url, edgert.Policy("prefer_cloud", deadline_ms=2000), failure_threshold=3,
                cooldown_s=10.0, clock=clock, retries=0)
    breaker = sess._cloud.fallback.breaker
    server.script("500", "500", "500")
    for i in range(3):
        assert sess.stats()["breaker"]["state"] == "closed"
        r = sess.infer({"input": X})
        assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 1)
    assert sess.stats()["breaker"]["state"] == "open"
    n = server.infer_requests
    r = sess.infer({"input": X})  # open: fail fast to local, nothing sent
    assert (r.served_by, r.reason, r.attempts) == ("local", "circuit-open", 0)
    assert server.infer_requests == n
    clock.t += 9.9
    assert sess.infer({"input": X}).reason == "circuit-open"
    clock.t += 0.2  # cool-down over: half-open, one probe decides
    assert breaker.state == "half-open"
    server.script("503")
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "cloud-error", 1)
    assert breaker.state == "open"  # the probe failed: open for another cool-down
    assert sess.infer({"input": X}).reason == "circuit-open"
    clock.t += 10.0
    r = sess.infer({"input": X})  # the probe succeeds: closed
    assert (r.served_by, r.reason) == ("cloud", "policy")
    assert sess.stats()["breaker"]["state"] == "closed"
    assert sess.stats()["breaker"]["opened"] == 2


def test_breaker_half_open_allows_one_probe():
    clock = FakeClock()
    b = CircuitBreaker(threshold=2, cooldown_s=5, clock=clock)
    b.failure()
    assert b.allow() and b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t += 5
    assert b.allow() and not b.allow()  # one probe only
    b.release()  # the probe never reached the server: the next caller may probe
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


# --- metadata --------------------------------------------------------------------------------
@pytest.mark.parametrize("change,message", [
    (lambda m: m["inputs"][0].update(datatype="FP64"), "input 'input': cloud datatype FP64"),
    (lambda m: m["inputs"][0].update(shape=[1, 3, 32, 32]), "cloud shape [1, 3, 32, 32]"),
    (lambda m: m["outputs"][0].update(name="logits"), "output 'prob' is not in the cloud model"),
    (lambda m: m["inputs"].append({"name": "mask", "datatype": "FP32", "shape": [1]}),
     "also needs input(s) ['mask']"),
])
def test_metadata_mismatch_is_a_clear_error(change, message):
    local = edgert.load(MODEL)
    meta = meta_for(local, "tiny")
    change(meta)
    names = [o.name for o in local.get_outputs()]
    with FaultServer(lambda f: dict(zip(names, local.run(None, f))), "tiny", meta) as srv:
        sess = load(srv.url, edgert.Policy("prefer_cloud"))
        with pytest.raises(CloudMetadataError, match="does not match the local model") as e:
            sess.infer({"input": X})
        assert message in str(e.value)
        assert srv.infer_requests == 0
        assert isinstance(e.value, edgert.EdgertError)


def test_unknown_model_is_a_metadata_error(server):
    sess = load(server.url, edgert.Policy("cloud_only"), name="nosuch")
    with pytest.raises(CloudMetadataError, match="has no model 'nosuch'"):
        sess.infer({"input": X})


def test_metadata_checked_once(server):
    sess = load(server.url, edgert.Policy("cloud_only"))
    for _ in range(3):
        sess.infer({"input": X})
    gets = [p for m, p, *_ in server.request_log if m == "GET"]
    assert gets == ["/v2/models/tiny", "/v2"]
    assert sess.stats()["metadata"] == "checked"


# --- cloud-only loading --------------------------------------------------------------------
def _hardmax_model():
    m = model([helper.make_node("Mul", ["x", "two"], ["y"]),
               helper.make_node("Hardmax", ["y"], ["out"], axis=-1)],
              [("x", TensorProto.FLOAT, [1, 6])], [("out", TensorProto.FLOAT, [1, 6])],
              {"two": np.array(2.0, np.float32)})
    return m.SerializeToString()


def test_unsupported_model_loads_cloud_only():
    ort = pytest.importorskip("onnxruntime")
    data = _hardmax_model()
    with pytest.raises(edgert.UnsupportedOpError):
        edgert.load(data)
    o = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    meta = {"name": "hm", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 6]}],
            "outputs": [{"name": "out", "datatype": "FP32", "shape": [1, 6]}]}
    with FaultServer(lambda f: {"out": o.run(None, f)[0]}, "hm", meta) as srv:
        sess = load(srv.url, model_bytes=data, name="hm")
        x = np.array([[0.1, 3.0, -1.0, 2.0, 0.0, 1.0]], np.float32)
        r = sess.infer({"x": x})
        assert (r.served_by, r.reason, r.attempts) == ("cloud", "unsupported-op", 1)
        np.testing.assert_array_equal(r.outputs["out"], [[0, 1, 0, 0, 0, 0]])
        np.testing.assert_array_equal(sess.predict(x), [[0, 1, 0, 0, 0, 0]])
        assert [a.name for a in sess.get_inputs()] == ["x"]
        with pytest.raises(edgert.UnsupportedOpError):
            sess.run(None, {"x": x})  # run stays local-only
        s = sess.stats()
        assert s["mode"] == "cloud_only" and s["cloud_only_reason"] == "unsupported-op"
        srv.script("500")
        with pytest.raises(CloudError, match="HTTP 500"):
            sess.infer({"x": x})


# --- token, repr, stats, dependency ----------------------------------------------------------
def test_token_is_sent_and_never_shown(server, caplog):
    secret = "s3cr3t-token-value"
    calls = []

    def token():
        calls.append(1)
        return secret
    caplog.set_level(logging.DEBUG)
    fb = edgert.CloudFallback(server.url, "tiny", token=token, retries=1, backoff_s=0.01)
    sess = edgert.load(MODEL, fallback=fb, policy=edgert.Policy("prefer_cloud"))
    server.script("503:0")
    assert sess.infer({"input": X}).attempts == 2
    server.script("500")
    r = sess.infer({"input": X})
    assert r.reason == "cloud-error"
    assert {a for *_, a in server.request_log} == {"Bearer " + secret}
    assert len(calls) == len(server.request_log)  # asked per request: it may refresh
    for text in (repr(fb), str(fb), caplog.text, r.cloud_error, str(sess.stats()), repr(r)):
        assert secret not in text
    fb2 = edgert.CloudFallback(server.url, "tiny", token=secret)
    assert secret not in repr(fb2) and secret not in str(vars(fb2))


def test_stats_counts_paths_reasons_bytes(server):
    sess = load(server.url, edgert.Policy("prefer_cloud"), retries=0)
    sess.infer({"input": X})
    server.script("500")
    sess.infer({"input": X})
    s = sess.stats()
    assert s["calls"] == 2
    assert s["served"] == {"cloud": {"policy": 1}, "local": {"cloud-error": 1}}
    assert s["latency_ms"]["cloud"]["n"] == 1 and s["latency_ms"]["local"]["n"] == 1
    assert s["latency_ms"]["cloud"]["p50"] > 0
    assert s["bytes_sent"] >= 2 * X.size * 4 and s["bytes_received"] > 0
    assert s["bytes_sent"] <= server.bytes_in
    assert s["cloud_attempts"] == 2
    assert s["breaker"]["state"] == "closed" and s["breaker"]["consecutive_failures"] == 1


def test_plain_session_infer_is_local():
    sess = edgert.load(MODEL)
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("local", "policy", 0)
    np.testing.assert_array_equal(r.outputs["prob"], sess.predict(X))
    assert sess.stats()["served"] == {"local": {"policy": 1}}


def test_policy_validation():
    with pytest.raises(edgert.EdgertError, match="mode"):
        edgert.Policy("sometimes")
    with pytest.raises(edgert.EdgertError, match="needs a fallback"):
        edgert.load(MODEL, policy=edgert.Policy("cloud_only"))
    with pytest.raises(edgert.EdgertError, match="http"):
        edgert.CloudFallback("ftp://x", "m")


def test_missing_urllib3_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "urllib3", None)
    with pytest.raises(edgert.MissingDependencyError, match=r"pip install 'edgert\[cloud\]'"):
        edgert.CloudFallback("http://127.0.0.1:1", "m")


def test_no_retry_on_400(server):
    sess = load(server.url, edgert.Policy("cloud_only"), retries=5)
    server.script("400", "400")
    with pytest.raises(CloudError) as e:
        sess.infer({"input": X})
    assert e.value.status == 400 and e.value.attempts == 1 and server.infer_requests == 1


def test_compiled_edgert_file_with_fallback(server, tmp_path):
    path = tmp_path / "tiny.edgert"
    edgert.compile(MODEL, str(path))
    sess = load(server.url, edgert.Policy("prefer_cloud"), model_bytes=str(path))
    r = sess.infer({"input": X})
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "policy", 1)
    np.testing.assert_array_equal(r.outputs["prob"], local_answer())
    local = edgert.load(str(path), policy=edgert.Policy("local_only"))
    assert local.infer({"input": X}).served_by == "local"
