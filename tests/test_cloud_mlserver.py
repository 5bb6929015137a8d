"""The cloud fallback against a real MLServer on 127.0.0.1, serving (a) a quantized bench model
through edgert's runtime class and (b) the float model through the onnxruntime runtime class.

MLServer lives in its own virtual environment (tests/cloud_servers.py: mlserver_venv), created
once and reused; if it cannot be installed (no network) these tests skip with the reason.
EDGERT_SKIP_MLSERVER=1 skips them on purpose.
"""
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edgert
from edgert.cloud import CloudMetadataError
from cloud_servers import MLServer, Unavailable, mlserver_venv, tiny_model_bytes

pytest.importorskip("urllib3")
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.models import build_float, build_quantized, sample_input  # noqa: E402

NAME, VARIANT = "mlp", "qop_au8_ws8_pt"
EDGERT_RT = "edgert.cloud.mlserver_runtime.EdgertRuntime"
ORT_RT = "edgert.cloud.mlserver_runtime.OnnxRuntimeRuntime"


def _model_dir(root, name, implementation, model_bytes, version=None):
    d = Path(root, name)
    d.mkdir()
    (d / "model.onnx").write_bytes(model_bytes)
    params = {"uri": "./model.onnx", "extra": {"threads": 1}}
    if version:
        params["version"] = version
    (d / "model-settings.json").write_text(json.dumps(
        {"name": name, "implementation": implementation, "parameters": params}, indent=2))


@pytest.fixture(scope="session")
def mlserver(tmp_path_factory):
    if os.environ.get("EDGERT_SKIP_MLSERVER"):
        pytest.skip("EDGERT_SKIP_MLSERVER is set")
    t0 = time.monotonic()
    try:
        python = mlserver_venv(log=lambda m: print(f"[mlserver] {m}", file=sys.stderr))
    except Unavailable as e:
        pytest.skip(f"MLServer could not be installed: {e}")
    t_venv = time.monotonic() - t0
    qpath = build_quantized(NAME, VARIANT)
    root = tmp_path_factory.mktemp("mlserver-models")
    _model_dir(root, "mlp-int8", EDGERT_RT, Path(qpath).read_bytes(), version="1")
    _model_dir(root, "mlp-float", ORT_RT, build_float(NAME))
    t1 = time.monotonic()
    try:
        server = MLServer(python, root)
    except Unavailable as e:
        pytest.fail(f"MLServer installed but did not start: {e}")
    print(f"[mlserver] venv {t_venv:.1f}s, start {time.monotonic() - t1:.1f}s", file=sys.stderr)
    yield server, qpath
    server.close()


def _fallback(url, model, **kw):
    return edgert.CloudFallback(url, model, retries=1, connect_timeout_s=5, read_timeout_s=30, **kw)


def test_edgert_runtime_answers_equal_local(mlserver):
    server, qpath = mlserver
    local = edgert.load(qpath)
    sess = edgert.load(qpath, fallback=_fallback(server.url, "mlp-int8", version="1"),
                       policy=edgert.Policy("cloud_only"))
    for seed in range(5):
        x = sample_input(NAME, seed)
        r = sess.infer({"input": x}, deadline_ms=20_000)
        assert (r.served_by, r.reason, r.attempts) == ("cloud", "policy", 1)
        np.testing.assert_array_equal(r.outputs["output"], local.run(None, {"input": x})[0])
    s = sess.stats()
    assert s["metadata"] == "checked"       # MLServer declared the tensors; they matched
    assert sess._cloud._binary is False      # MLServer's REST side has no binary extension
    assert s["served"] == {"cloud": {"policy": 5}} and s["bytes_received"] > 0


def test_onnxruntime_runtime_serves_the_float_model(mlserver):
    import onnxruntime as ort
    server, qpath = mlserver
    fmodel = build_float(NAME)
    ref = ort.InferenceSession(fmodel, providers=["CPUExecutionProvider"])
    local = edgert.load(qpath)
    sess = edgert.load(qpath, fallback=_fallback(server.url, "mlp-float"),
                       policy=edgert.Policy("prefer_cloud", deadline_ms=20_000))
    for seed in range(3):
        x = sample_input(NAME, 100 + seed)
        r = sess.infer({"input": x})
        assert (r.served_by, r.reason) == ("cloud", "policy")
        want = ref.run(None, {"input": x})[0]
        np.testing.assert_allclose(r.outputs["output"], want, rtol=1e-5, atol=1e-5)
        # and it is the float answer, not the int8 one
        assert not np.array_equal(r.outputs["output"], local.run(None, {"input": x})[0])


def test_low_confidence_escalates_to_the_float_model(mlserver):
    server, qpath = mlserver
    sess = edgert.load(qpath, fallback=_fallback(server.url, "mlp-float"),
                       policy=edgert.Policy(min_confidence=1.01))  # always escalate
    r = sess.infer({"input": sample_input(NAME, 7)}, deadline_ms=20_000)
    assert (r.served_by, r.reason, r.attempts) == ("cloud", "low-confidence", 1)
    assert r.confidence is not None and r.confidence <= 1.0


def test_metadata_mismatch_and_unknown_model(mlserver):
    server, _ = mlserver
    tiny = tiny_model_bytes()
    sess = edgert.load(tiny, fallback=_fallback(server.url, "mlp-float"),
                       policy=edgert.Policy("prefer_cloud"))
    with pytest.raises(CloudMetadataError, match="does not match the local model"):
        sess.infer({"input": np.zeros((1, 3, 16, 16), np.float32)}, deadline_ms=20_000)
    sess = edgert.load(tiny, fallback=_fallback(server.url, "no-such-model"),
                       policy=edgert.Policy("cloud_only"))
    with pytest.raises(CloudMetadataError, match="has no model 'no-such-model'"):
        sess.infer({"input": np.zeros((1, 3, 16, 16), np.float32)}, deadline_ms=20_000)


def test_health_and_readiness(mlserver):
    server, _ = mlserver
    assert _fallback(server.url, "mlp-float").server_ready()
    assert _fallback(server.url, "mlp-int8", version="1").model_ready()
    assert not _fallback(server.url, "no-such-model").model_ready()
