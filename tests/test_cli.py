"""The edgert command line, run as a user would: subprocesses, exit codes, tables, JSON."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert import _core
from nets import quantize, tiny_cnn


def edgert_cli(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "edgert", *map(str, args)], capture_output=True,
                       text=True, timeout=600)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def qmodel(tmp_path_factory):
    return quantize(tiny_cnn(), tmp_path_factory.mktemp("cli") / "m.onnx", per_channel=True)


def test_help_everywhere():
    for cmd in ([], ["compile"], ["info"], ["run"], ["bench"], ["profile"], ["demo"]):
        p = edgert_cli(*cmd, "--help")
        assert "usage: edgert" in p.stdout


def test_compile_then_info_and_equal_outputs(qmodel, tmp_path):
    out = tmp_path / "m.edgert"
    p = edgert_cli("compile", qmodel, "-o", out)
    assert "wrote" in p.stdout and "qconv 2" in p.stdout and "arena" in p.stdout
    info = edgert_cli("info", out).stdout
    for word in ("input: float32 [1, 3, 16, 16]", "prob:", "qconv 2", "MACs", "arena", "ISA"):
        assert word in info
    gemm = _core.x8_kernel(1024, 1024, 1024)  # the table this CPU (or EDGERT_VNNI_TILE) picks
    assert f"ISA: {edgert.isa()} (int8 GEMM {gemm or 'int16 form'})" in info
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(edgert.load(str(out)).run(None, {"input": x})[0],
                                  edgert.load(qmodel).run(None, {"input": x})[0])


def test_compile_native(qmodel, tmp_path):
    out = tmp_path / "n.edgert"
    assert "wrote" in edgert_cli("compile", qmodel, "-o", out, "--native").stdout
    x = np.random.default_rng(2).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(edgert.load(str(out)).run(None, {"input": x})[0],
                                  edgert.load(qmodel).run(None, {"input": x})[0])


def test_run_saves_outputs(qmodel, tmp_path):
    x = np.random.default_rng(1).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    edgert_cli("run", qmodel, "--input", f"input={tmp_path / 'x.npy'}", "--output", tmp_path / "o.npz")
    got = np.load(tmp_path / "o.npz")["prob"]
    np.testing.assert_array_equal(got, edgert.load(qmodel).run(None, {"input": x})[0])
    summary = edgert_cli("run", qmodel, "--input", f"input={tmp_path / 'x.npy'}").stdout
    assert "prob: float32 [1, 10]" in summary


def test_bench_json_and_table(qmodel, tmp_path):
    pytest.importorskip("onnxruntime")
    p = edgert_cli("bench", qmodel, "--threads", "1,2", "--runs", "20", "--json", tmp_path / "r.json")
    assert "edgert/onnxruntime" in p.stdout and "median" in p.stdout
    r = json.loads((tmp_path / "r.json").read_text())
    assert [x["threads"] for x in r["results"]] == [1, 2]
    for x in r["results"]:
        assert x["edgert"]["median_ms"] > 0 and x["onnxruntime"]["median_ms"] > 0
        assert x["ratio"] == pytest.approx(x["edgert"]["median_ms"] / x["onnxruntime"]["median_ms"])
        assert x["agreement"]["top1"] == 1.0
    assert r["memory"]["edgert"] > 0 and r["memory"]["onnxruntime"] > 0


def test_bench_default_model():
    p = edgert_cli("bench", "--runs", "10", "--threads", "1", "--no-memory")
    assert "digits_int8.edgert" in p.stdout


def test_demo_accuracy():
    p = edgert_cli("demo")
    line = next(l for l in p.stdout.splitlines() if "edgert int8" in l)
    assert float(line.split()[-1].rstrip("%")) >= 95.0


def test_shipped_edgert_matches_shipped_onnx():
    from edgert.cli import data_path
    x = np.load(data_path("digits_test.npz"))["x"]
    np.testing.assert_array_equal(edgert.load(data_path("digits_int8.edgert")).run(None, {"input": x})[0],
                                  edgert.load(data_path("digits_int8.onnx")).run(None, {"input": x})[0])


@pytest.mark.parametrize("args,msg", [
    (["info", "/nope.onnx"], "no such model file"),
    (["run", "MODEL", "--input", "bad"], "NAME=file.npy"),
    (["bench", "MODEL", "--threads", "0"], "--threads"),
    (["compile", "UNSUPPORTED"], "cannot run"),
])
def test_errors_are_one_line_and_nonzero(args, msg, qmodel, tmp_path):
    import onnx
    from onnx import helper
    from nets import model
    bad = tmp_path / "bad.onnx"
    onnx.save(model([helper.make_node("Hardmax", ["x"], ["y"], name="hm")],
                    [("x", 1, [1, 4])], [("y", 1, [1, 4])]), bad)
    args = [qmodel if a == "MODEL" else bad if a == "UNSUPPORTED" else a for a in args]
    p = edgert_cli(*args, ok=False)
    assert p.returncode != 0
    assert p.stderr.startswith("edgert: error:") and msg in p.stderr
    assert "Traceback" not in p.stderr


def test_profile_lists_ops_by_type_and_time(qmodel):
    out = edgert_cli("profile", qmodel, "--runs", "3", "--top", "0", "--threads", "1").stdout
    assert "by op type:" in out and "qconv" in out and "1 thread(s)" in out
    sess = edgert.load(qmodel)
    op_lines = [ln for ln in out.splitlines()[out.splitlines().index("ops:") + 1:] if " us " in ln]
    assert len(op_lines) == len(sess.plan_info()["ops"])
    assert edgert_cli("profile", "missing.onnx", ok=False).returncode == 1
