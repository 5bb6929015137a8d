"""_core.crc32c (the .edgert checksum) against a bitwise Python reference and published vectors."""
import mmap

import numpy as np
import pytest

from edgert import _core


def ref_crc32c(data, crc=0):
    """Bitwise CRC-32C, reflected polynomial 0x82F63B78, vectorised over a 256-entry table."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    c = ~np.uint32(crc)
    for b in bytes(data):
        c = (c >> np.uint32(8)) ^ table[(c ^ np.uint32(b)) & np.uint32(0xFF)]
    return int(~c & np.uint32(0xFFFFFFFF))


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
