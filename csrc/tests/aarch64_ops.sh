#!/usr/bin/env bash
# The op tests' cases again on an aarch64 build of the extension, under qemu-aarch64: the NEON
# engine paths (form choice, packing, the dot-product and the int16 kernels, row offsets, the
# depthwise rows), which the kernel driver (tests/test_kernels_native.py) checks kernel by
# kernel only.
#   csrc/tests/aarch64_ops.sh
# 1. a sysroot of Debian's arm64 python3.11 (apt-get download, unpacked; needs root once for
#    `dpkg --add-architecture arm64`) and numpy's aarch64 wheel, the host's numpy version;
# 2. _core cross-built with aarch64-linux-gnu-g++ against it;
# 3. the x86 op tests run once with tests/op_capture.py recording every case and its output
#    (which those tests check against onnxruntime and numpy);
# 4. tests/replay_ops.py under qemu-aarch64 as a CPU with the dot product (max) and one
#    without (cortex-a72): every output must be the same bytes.
# onnxruntime cannot be the oracle there (its import crashes under qemu-user). A missing tool
# or no root is a visible skip (exit 0 with SKIPPED), not a silent pass.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${EDGERT_AARCH64_WORK:-$root/build/aarch64}"
py="${PYTHON:-python3}"

skip() { echo "aarch64_ops: SKIPPED: $*"; exit 0; }
for t in aarch64-linux-gnu-g++ qemu-aarch64 dpkg-deb apt-get; do
  command -v "$t" >/dev/null || skip "$t not found"
done
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  "$py" -m pip install -q cmake ninja
fi

sysroot="$work/sysroot"
if [ ! -x "$sysroot/usr/bin/python3.11" ]; then
  if ! apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || skip "not root: cannot add the arm64 architecture to apt"
    dpkg --add-architecture arm64
    apt-get update -qq >/dev/null
  fi
  mkdir -p "$work/debs"
  (cd "$work/debs" && apt-get download -qq \
    python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64 \
    libpython3.11:arm64 libpython3.11-dev:arm64 libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 \
    gcc-12-base:arm64 libbz2-1.0:arm64 libcrypt1:arm64 libdb5.3:arm64 libexpat1:arm64 \
    libffi8:arm64 liblzma5:arm64 libncursesw6:arm64 libnsl2:arm64 libreadline8:arm64 \
    libsqlite3-0:arm64 libssl3:arm64 libtinfo6:arm64 libtirpc3:arm64 libuuid1:arm64 \
    libzstd1:arm64 zlib1g:arm64 libgssapi-krb5-2:arm64 libk5crypto3:arm64 libkrb5-3:arm64 \
    libkrb5support0:arm64 libkeyutils1:arm64 libcom-err2:arm64 2>&1 | grep -v "unsandboxed" || true)
  rm -rf "$sysroot" && mkdir -p "$sysroot"
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$sysroot"; done
  # The generic pyconfig.h includes the multiarch one by a path only the sysroot's root finds.
  cp "$sysroot/usr/include/aarch64-linux-gnu/python3.11/pyconfig.h" \
     "$sysroot/usr/include/python3.11/pyconfig.h"
fi
[ -x "$sysroot/usr/bin/python3.11" ] || skip "no arm64 python3.11 could be fetched"

site="$work/site"
npv="$("$py" -c 'import numpy; print(numpy.__version__)')"
if [ ! -f "$site/numpy/version.py" ] || ! grep -q "\"$npv\"\|'$npv'" "$site/numpy/version.py"; then
  rm -rf "$work/wheels" "$site" && mkdir -p "$work/wheels" "$site"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    -d "$work/wheels" "numpy==$npv"
  for w in "$work"/wheels/*.whl; do "$py" -m zipfile -e "$w" "$site"; done
fi

"$py" -c "import pybind11" 2>/dev/null || "$py" -m pip install -q pybind11
cmake -S "$root" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
      -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
      -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$py")" \
      -DPython_INCLUDE_DIR="$sysroot/usr/include/python3.11" \
      -DPython_SOABI=cpython-311-aarch64-linux-gnu \
      -DPYTHON_MODULE_EXTENSION=.cpython-311-aarch64-linux-gnu.so >/dev/null
cmake --build "$work/build" >/dev/null

cd "$root"
cases="$work/op_cases.pkl"
EDGERT_OP_CAPTURE="$cases" PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" \
  "$py" -m pytest -q -p no:cacheprovider -p op_capture tests/test_op_qconv.py \
  tests/test_op_qgemm.py tests/test_op_qbinary.py tests/test_op_qpool.py tests/test_op_qmisc.py \
  tests/test_op_movement.py | tail -1

status=0
for cpu in max cortex-a72; do
  QEMU_CPU="$cpu" QEMU_LD_PREFIX="$sysroot" \
    PYTHONPATH="$root/src:$work/build/pkg:$site" PYTHONNOUSERSITE=1 \
    qemu-aarch64 "$sysroot/usr/bin/python3.11" tests/replay_ops.py "$cases" || status=1
done
exit $status
