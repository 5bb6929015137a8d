#!/usr/bin/env bash
# Builds the extension as the wheel does but unstripped and without LTO (EDGERT_ISA_CHECK_BUILD, default
# build/isa-check in this checkout) and checks that its AVX2, AVX-512 and AMX code stays in the
# ISA files (csrc/tests/isa_isolation.py), so that it imports and runs on an x86-64 CPU without
# AVX2. Skips, visibly, on other architectures or without objdump.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${EDGERT_ISA_CHECK_BUILD:-$root/build/isa-check}"
py="${PYTHON:-python3}"
case "$(uname -m)" in
  x86_64|amd64) ;;
  *) echo "isa_isolation: SKIPPED (not an x86-64 machine)"; exit 0 ;;
esac
for tool in objdump nm c++filt; do
  command -v "$tool" >/dev/null || { echo "isa_isolation: SKIPPED ($tool not found)"; exit 0; }
done
if [ -f "$build/CMakeCache.txt" ] && \
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  "$py" -m pip install -q cmake ninja
fi
"$py" -c "import pybind11" 2>/dev/null || "$py" -m pip install -q pybind11
# pybind11 strips Release modules with CMAKE_STRIP (/bin/true keeps the symbols) and builds them
# with LTO, whose objects hold no machine code to check (see isa_isolation.py); otherwise the
# same flags and link order as the wheel.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_STRIP=/bin/true \
      -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
      -DPython_EXECUTABLE="$(command -v "$py")" >/dev/null
cmake --build "$build" >/dev/null
"$py" "$root/csrc/tests/isa_isolation.py" "$build/CMakeFiles/_core.dir" "$build"/pkg/edgert/_core*.so "$root"
