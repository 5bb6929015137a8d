"""_core.crc32c (the .edgert checksum) against a bitwise Python reference and published vectors."""
import functools
import json
import mmap
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from edgert import _core


def _table():
    table = []
    for b in range(256):
        for _ in range(8):
            b = (b >> 1) ^ (0x82F63B78 if b & 1 else 0)
        table.append(b)
    return table


_TABLE = _table()


def ref_crc32c(data, crc=0):
    """Bitwise CRC-32C, reflected polynomial 0x82F63B78, a byte at a time over a 256-entry table."""
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


@pytest.mark.parametrize("portable", [False, True])
def test_known_vectors(portable):
    f = lambda b: _core.crc32c(b, portable=portable)  # noqa: E731
    assert f(b"123456789") == 0xE3069283
    assert f(b"") == 0
    assert f(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert f(b"\xff" * 32) == 0x62A8AB43
    assert f(bytes(range(32))) == 0x46DD794E
    assert f(bytes(range(31, -1, -1))) == 0x113FDB5C


def test_reference_matches_known_vector():
    assert ref_crc32c(b"123456789") == 0xE3069283


# 24576 = three 8 KiB blocks: where the hardware form starts running three chains at once.
@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 1000, 4099, 24575, 24576, 24577, 73733])
def test_random_data_all_forms_agree(n):
    rng = np.random.default_rng(n)
    data = rng.integers(0, 256, n + 3).astype(np.uint8)
    for start in range(3):  # unaligned starts
        view = data[start:start + n]
        want = ref_crc32c(view.tobytes())
        assert _core.crc32c(view) == want
        assert _core.crc32c(view, portable=True) == want
        assert _core.crc32c(view.tobytes()) == want


def test_continuation_and_buffer_types(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 1 << 20).astype(np.uint8).tobytes()
    whole = _core.crc32c(data)
    assert whole == _core.crc32c(data, portable=True)
    for cut in (0, 1, 4095, 1 << 19):
        head = _core.crc32c(data[:cut])
        assert _core.crc32c(data[cut:], head) == whole
        assert _core.crc32c(data[cut:], head, portable=True) == whole
    p = tmp_path / "blob"
    p.write_bytes(data)
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert _core.crc32c(m) == whole
        assert _core.crc32c(memoryview(m)[10:]) == _core.crc32c(data[10:])
    assert _core.crc32c(bytearray(data)) == whole


def test_rejects_non_contiguous_and_non_buffers():
    a = np.arange(100, dtype=np.uint8)
    with pytest.raises((BufferError, ValueError, TypeError)):
        _core.crc32c(a[::2])
    with pytest.raises(TypeError):
        _core.crc32c("text")


@pytest.mark.parametrize("len_b", [0, 1, 7, 8, 8191, 8192, 24577, 98304, 100003])
def test_combine(len_b):
    rng = np.random.default_rng(len_b)
    a, b = (rng.integers(0, 256, n).astype(np.uint8).tobytes() for n in (1000, len_b))
    assert _core.crc32c_combine(_core.crc32c(a), _core.crc32c(b), len_b) == _core.crc32c(a + b)
    assert _core.crc32c_combine(0, _core.crc32c(b), len_b) == _core.crc32c(b)


# The loader's form: chunks claimed by whichever thread is free (a helper from 256 KiB), the
# first one the short one.
@pytest.mark.parametrize("n,chunk", [(0, 64), (1, 64), (64, 64), (65, 64), (1000, 64),
                                     (100003, 8192), (300000, 8192), (300000, 98304),
                                     (98304 * 3, 98304), (1 << 21, 0)])
def test_task_equals_one_pass(n, chunk):
    data = np.random.default_rng(n).integers(0, 256, n + 7).astype(np.uint8).tobytes()
    for off in (0, 7):
        task = _core.Crc32cTask(data, off, n, chunk)
        want = _core.crc32c(data[off:off + n])
        assert task.result() == want
        assert task.result() == want  # once finished, the same again


def test_task_checks_its_range():
    with pytest.raises(ValueError, match="outside the buffer"):
        _core.Crc32cTask(bytes(100), 90, 11)
    with pytest.raises(ValueError, match="outside the buffer"):
        _core.Crc32cTask(bytes(100), 101, 0)


# Every form crc32c can take (EDGERT_CRC picks one, read once, so each runs in a child process),
# against the bitwise reference. The forms fold 128, 256 or 512 bytes a step from 256 bytes on
# (shorter inputs take the crc32 instruction); the 128- and 256-bit ones also run crc32 chains in
# blocks of 11536 and 15632 bytes; the wide ones first reach a 64-byte boundary.
FORMS = ["portable", "sse42", "pclmul", "vpclmul256", "vpclmul512"]
BOUNDARIES = [15, 16, 17, 127, 128, 129, 255, 256, 257, 383, 384, 385, 511, 512, 513, 767, 768,
              769, 1023, 1024, 1025, 1087, 1088, 1089, 1535, 1536, 1537, 2047, 2048, 2049, 4095,
              4096, 4097, 11535, 11536, 11537, 11663, 11664, 11665, 15631, 15632, 15633, 15887,
              15888, 15889, 23072, 23073, 31264, 31265]


def cpu_runs(form):
    """Whether this CPU runs `form` (Linux /proc/cpuinfo flags; x86-64 only but the table)."""
    if form == "portable":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(ln for ln in f if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags")
    need = {"sse42": ["sse4_2"], "pclmul": ["sse4_2", "pclmulqdq"],
            "vpclmul256": ["sse4_2", "pclmulqdq", "avx2", "vpclmulqdq"],
            "vpclmul512": ["sse4_2", "pclmulqdq", "avx2", "vpclmulqdq", "avx512f"]}[form]
    return all(x in flags for x in need)


# The child: the CRCs of the cases over the data file, the whole of it as a Crc32cTask, and any
# complaint about EDGERT_CRC on stderr.
CHILD = """
import json, mmap, sys
from edgert import _core
spec = json.load(sys.stdin)
with open(spec["path"], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    v = memoryview(m)
    out = [_core.crc32c(v[o:o + n], c) for o, n, c in spec["cases"]]
    out.append(_core.Crc32cTask(m, 3, len(m) - 3).result())
    del v
out.append(_core.crc32c(b"123456789"))
variant = getattr(_core, "crc32c_variant", lambda: None)()
print(json.dumps({"out": out, "hardware": _core.crc32c_hardware(), "variant": variant}))
"""


@functools.lru_cache(maxsize=None)
def _forms_data(tmp):
    """The data file, its cases (offset, length, starting crc) and their reference values."""
    rng = np.random.default_rng(2024)
    data = rng.integers(0, 256, 3 << 20).astype(np.uint8).tobytes()
    path = os.path.join(tmp, "forms.bin")
    with open(path, "wb") as f:
        f.write(data)
    seeds = iter(rng.integers(0, 1 << 32, 100000).tolist())
    cases = [(n % 64, n, next(seeds) if n % 2 else 0) for n in range(601)]  # every length to 600
    cases += [(off, n, next(seeds)) for off in range(64) for n in BOUNDARIES]
    cases += [(5, len(data) - 5, 0), (0, len(data), next(seeds))]  # a few MiB
    want = [ref_crc32c(data[o:o + n], c) for o, n, c in cases]
    # Continuation: B from A's CRC is the CRC of A + B, cut around the step and block sizes.
    whole = ref_crc32c(data[1:100001])
    for cut in (1, 255, 256, 4096, 15632, 50001):
        cases.append((1 + cut, 100000 - cut, ref_crc32c(data[1:1 + cut])))
        want.append(whole)
    want += [ref_crc32c(data[3:]), 0xE3069283]  # the child's Crc32cTask and check value
    return path, cases, want


@pytest.fixture(scope="module")
def forms_data(tmp_path_factory):
    return _forms_data(str(tmp_path_factory.mktemp("crc_forms")))


@pytest.mark.parametrize("form", FORMS)
def test_every_form(form, forms_data):
    if not cpu_runs(form):
        pytest.skip(f"this CPU does not run {form}")
    path, cases, want = forms_data
    env = dict(os.environ, EDGERT_CRC=form)
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                       input=json.dumps({"path": path, "cases": cases}), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "EDGERT_CRC" not in r.stderr and "disagrees" not in r.stderr, r.stderr
    got = json.loads(r.stdout)
    assert got["hardware"] == (form != "portable")
    if got["variant"] is not None:  # _core.crc32c_variant, where the module binds it
        assert got["variant"] == form
    assert len(got["out"]) == len(want)
    for case, g, w in zip(cases + ["task", "123456789"], got["out"], want):
        assert g == w, (form, case)


def test_unknown_form_is_said_and_ignored():
    env = dict(os.environ, EDGERT_CRC="no-such-form")
    code = "from edgert import _core; print(_core.crc32c(b'123456789'))"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 0xE3069283
    assert "EDGERT_CRC=no-such-form" in r.stderr
