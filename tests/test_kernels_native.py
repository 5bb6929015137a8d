"""The C++ kernel test driver (csrc/tests/): every ISA variant of a kernel family bit-exact with
its scalar kernel, built natively, under ASan+UBSan, and for aarch64 under qemu-aarch64.

A missing compiler, cmake or cross toolchain is a pytest skip naming what is missing (CI installs
g++-aarch64-linux-gnu and qemu-user, see .ci/run), never a silent pass.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER_SRC = ROOT / "csrc" / "tests"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("kernel driver: missing " + ", ".join(missing))


def _build(build_dir, *cmake_args, env=None):
    _need("cmake", "ninja")
    gen = ["cmake", "-S", str(DRIVER_SRC), "-B", str(build_dir), "-G", "Ninja", *cmake_args]
    for cmd in (gen, ["cmake", "--build", str(build_dir)]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return build_dir / "edgert_kernel_tests"


def _run(cmd, env_extra, timeout):
    env = dict(os.environ, **env_extra)
    env.pop("EDGERT_ISA", None)  # the driver tests every variant; it must not be restricted
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    out = r.stdout + r.stderr
    print(out)  # shown by pytest -rA / on failure: the per-family lines
    m = SUMMARY.search(r.stdout)
    assert m is not None, f"no summary line (exit {r.returncode}):\n{out[-6000:]}"
    passed, failed = int(m.group(1)), int(m.group(2))
    assert r.returncode == 0 and failed == 0 and passed > 0, out[-6000:]
    return r.stdout


def _families(stdout):
    """{family: variants line} from lines like 'q8-gemm    ok: 10 passed, 0 failed [a, b]'."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S+)\s+ok: .*\[(.*)\]$", stdout, re.M)}


def _cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# The /proc/cpuinfo flags each x86 variant suffix needs (the driver skips a variant whose ISA the CPU
# lacks; a skip on a CPU with all of them is a dispatch bug).
_ISA_FLAGS = {
    "avx2": {"avx2", "fma"},
    "avx512vnni": {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"},
    "amx": {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile", "amx_int8"},
}


@pytest.fixture(scope="module")
def native_build(tmp_path_factory):
    build = tmp_path_factory.mktemp("kt-native")
    _build(build)
    return build


def test_driver_native(native_build):
    exe = native_build / "edgert_kernel_tests"
    out = _run([str(exe)], {}, timeout=120)
    fams = _families(out)
    assert {"q8-gemm", "q8-dwconv"} <= fams.keys(), out
    # Every variant compiled in must have been run on a CPU that has its ISA, not skipped.
    flags = _cpu_flags()
    skipped = re.findall(r"(\w+) \(skipped", out)
    wrongly = [v for v in skipped if _ISA_FLAGS.get(v.rsplit("__", 1)[-1], {"?"}) <= flags]
    assert not wrongly, f"skipped on a CPU that has their ISA: {wrongly}\n{out}"


ISA_OBJECT = re.compile(r"/(avx2|avx512vnni|amx|neon)\.cc\.o$")


def test_isa_files_share_no_inline_code(native_build):
    """An inline function or template instantiated in an ISA file (compiled with -mavx2, AVX-512
    or AMX flags) is a weak symbol: if another file instantiates it too, the linker keeps one
    copy for both, possibly the ISA one, which then runs on CPUs without that ISA. So an ISA
    file's weak symbols must be its own: named after its ISA (its templated entry points) or
    file-local (anonymous namespace, which is not weak)."""
    _need("nm")
    objects = [p for p in native_build.rglob("*.o") if ISA_OBJECT.search(str(p))]
    assert objects, f"no ISA objects under {native_build}"
    shared = []
    for obj in objects:
        isa = ISA_OBJECT.search(str(obj)).group(1)
        r = subprocess.run(["nm", "--defined-only", "-C", str(obj)], capture_output=True,
                           text=True, check=True)
        for line in r.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in ("W", "V", "u") and f"__{isa}" not in parts[2]:
                shared.append(f"{obj.name} ({obj.parent.name}): {parts[2]}")
    assert not shared, "weak symbols in ISA files:\n" + "\n".join(shared)


def test_driver_asan_ubsan(tmp_path_factory):
    exe = _build(tmp_path_factory.mktemp("kt-asan"), "-DEDGERT_TEST_SANITIZE=ON")
    _run([str(exe)], {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
                      "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}, timeout=300)


CROSS = "aarch64-linux-gnu-g++"


def test_driver_aarch64_qemu(tmp_path_factory):
    _need(CROSS, "qemu-aarch64")
    exe = _build(tmp_path_factory.mktemp("kt-aarch64"), "-DCMAKE_SYSTEM_NAME=Linux",
                 "-DCMAKE_SYSTEM_PROCESSOR=aarch64", f"-DCMAKE_CXX_COMPILER={CROSS}",
                 "-DEDGERT_TEST_ARCH_FLAGS=-march=armv8.2-a+dotprod;-static")
    # QEMU_CPU=max emulates every extension qemu knows, the dot product included.
    out = _run(["qemu-aarch64", str(exe)], {"QEMU_CPU": "max"}, timeout=600)
    assert "active ISA neon" in out, out
    fams = _families(out)
    for fam in ("q8-gemm", "q8-dwconv"):
        assert "__neon" in fams.get(fam, ""), f"{fam}: no NEON variant ran\n{out}"
    assert "skipped" not in out, out  # every neon* variant ran, the dot-product ones included
    assert "__neondot" in fams.get("q8-gemm-x8", ""), out
    # A core without the dot product (hwcaps say so): those variants are skipped, not run into
    # SIGILL, and everything else still passes.
    out = _run(["qemu-aarch64", str(exe)], {"QEMU_CPU": "cortex-a72"}, timeout=600)
    assert "__neondot (skipped: CPU lacks it)" in out, out


def test_neon_sources_build_for_the_extension(tmp_path):
    """The extension compiles neon.cc with -O3 and no -march (plain Armv8-A): they must build so."""
    _need(CROSS)
    sources = sorted((ROOT / "csrc" / "kernels").glob("*/neon.cc"))
    assert sources, "no NEON kernels found"
    for src in sources:
        cmd = [CROSS, "-std=c++17", "-O3", "-fno-math-errno", "-ffp-contract=off", "-Wall",
               "-Wextra", "-Werror", "-Wno-unused-parameter", f"-I{ROOT / 'csrc'}", "-c",
               str(src), "-o", str(tmp_path / (src.parent.name + ".o"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f"{src}:\n{r.stderr[-4000:]}"
