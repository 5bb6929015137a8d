"""Many threads calling infer on one Session against a flaky server: every call is answered
exactly once, with the answer for its own input, and the books (stats, server counts) balance."""
import threading
from collections import Counter

import numpy as np
import pytest

import edgert
from cloud_servers import serve_session, tiny_model_bytes

pytest.importorskip("urllib3")

THREADS, CALLS = 16, 8
FLAKY = ["ok", "ok", "ok", "503:0", "reset", "500", "short", "close", "badjson", "429:0"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_many_threads_one_session_flaky_server(binary):
    model = tiny_model_bytes()
    local = edgert.load(model)
    with serve_session(edgert.load(model), binary=binary, default="flaky", flaky=FLAKY,
                       seed=1) as srv:
        fb = edgert.CloudFallback(srv.url, "tiny", retries=2, backoff_s=0.005,
                                  failure_threshold=10_000)
        sess = edgert.load(model, fallback=fb,
                           policy=edgert.Policy("prefer_cloud", deadline_ms=10_000))
        results = {}
        errors = []
        lock = threading.Lock()

        def worker(t):
            for i in range(CALLS):
                x = np.random.default_rng(1000 * t + i).normal(size=(1, 3, 16, 16)).astype(np.float32)
                try:
                    r = sess.infer({"input": x})
                except Exception as e:  # noqa: BLE001 - every failure is a test failure
                    with lock:
                        errors.append(repr(e))
                    continue
                with lock:
                    assert (t, i) not in results
                    results[(t, i)] = (x, r)

        threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not any(th.is_alive() for th in threads), "a call never returned"
        assert errors == []
        assert len(results) == THREADS * CALLS
        for x, r in results.values():  # each answer is the one for its own input
            np.testing.assert_array_equal(r.outputs["prob"], local.run(None, {"input": x})[0])
            assert (r.served_by, r.reason) in {("cloud", "policy"), ("local", "cloud-error")}
        served = {p: sum(v.values()) for p, v in sess.stats()["served"].items()}
        assert sum(served.values()) == THREADS * CALLS
        assert served.get("cloud", 0) > 0 and served.get("local", 0) > 0  # both paths exercised
        attempts = sum(r.attempts for _, r in results.values())
        assert attempts == srv.infer_requests == sess.stats()["cloud_attempts"]
        seen = Counter(srv.infer_ids)  # a retried request keeps its id; 1 + retries at most
        assert seen and max(seen.values()) <= 3
