#!/usr/bin/env bash
# The Python op tests against an AddressSanitizer + UBSan build of the extension.
#   csrc/tests/asan_op_tests.sh [pytest args...]
# (no test paths given: tests/test_op_*.py and tests/test_format.py, whose hostile and randomly
# mutated .edgert plans exercise the C++ plan reader)
# Builds _core with -DEDGERT_SANITIZE=ON out of tree (EDGERT_ASAN_BUILD, default build/asan in
# this checkout, so two checkouts never share a CMake cache) and runs pytest with libasan
# preloaded (python itself is not instrumented, so the runtime must come first). Leak checking is off: CPython and numpy keep
# allocations alive until exit by design. Any ASan report or UB aborts the test that hit it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${EDGERT_ASAN_BUILD:-$root/build/asan}"
# A cache generated from another source tree makes cmake refuse; start that build afresh.
if [ -f "$build/CMakeCache.txt" ] && \
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
py="${PYTHON:-python3}"

if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  "$py" -m pip install -q cmake ninja
fi
"$py" -c "import pybind11" 2>/dev/null || "$py" -m pip install -q pybind11
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGERT_SANITIZE=ON \
      -DPython_EXECUTABLE="$(command -v "$py")" >/dev/null
cmake --build "$build" >/dev/null

# libstdc++ is preloaded too: python does not link it, and ASan's __cxa_throw interceptor must
# find the real one when it starts, or the first C++ exception (a ModelError) aborts.
libasan="$(g++ -print-file-name=libasan.so)"
libstdcxx="$(g++ -print-file-name=libstdc++.so)"
for f in "$libasan" "$libstdcxx"; do
  [ -f "$f" ] || { echo "asan_op_tests: $f not found" >&2; exit 1; }
done
preload="$libasan $libstdcxx"
export PYTHONPATH="$root/src:$build/pkg${PYTHONPATH:+:$PYTHONPATH}"
# allocator_may_return_null: tests that provoke absurd allocations expect std::bad_alloc.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

# The sanitized module must be the one imported (not an installed edgert's).
core="$(LD_PRELOAD="$preload" "$py" -c 'from edgert import _core; print(_core.__file__)')"
case "$core" in
  "$build"/*) ;;
  *) echo "asan_op_tests: imported $core, not the sanitized build in $build" >&2; exit 1 ;;
esac

cd "$root"
paths=0
for a in "$@"; do case "$a" in -*) ;; *) paths=1 ;; esac; done
[ "$paths" = 1 ] || set -- "$@" tests/test_op_*.py tests/test_format.py
LD_PRELOAD="$preload" "$py" -m pytest -q -p no:cacheprovider "$@"
