// f32-vbinary: y = clamp(a op b, lo, hi) over n elements, one operand optionally a scalar.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

enum class F32BinaryKind : uint8_t { add, sub, mul, div, max, min, pow };

// Which operand is broadcast along the run: vv both vectors, vs b[0] for every i, sv a[0].
enum class F32BinaryShape : uint8_t { vv, vs, sv };

using F32VBinaryFn = void (*)(size_t n, const float* a, const float* b, float* y, float lo,
                              float hi);

// max/min follow std::max/std::min argument order (a NaN in a propagates); pow is std::pow.
F32VBinaryFn f32_vbinary_minmax__scalar(F32BinaryKind kind, F32BinaryShape shape);

}  // namespace edgert
