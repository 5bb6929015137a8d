#include "kernels/f32-vbinary/f32-vbinary.h"

#include <algorithm>
#include <cmath>

namespace edgert {
namespace {

struct Add { static float f(float a, float b) { return a + b; } };
struct Sub { static float f(float a, float b) { return a - b; } };
struct Mul { static float f(float a, float b) { return a * b; } };
struct Div { static float f(float a, float b) { return a / b; } };
struct Max { static float f(float a, float b) { return std::max(a, b); } };
struct Min { static float f(float a, float b) { return std::min(a, b); } };
struct Pow { static float f(float a, float b) { return std::pow(a, b); } };

inline float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

template <class Op>
void vv(size_t n, const float* a, const float* b, float* y, float lo, float hi) {
  for (size_t i = 0; i < n; ++i) y[i] = clampf(Op::f(a[i], b[i]), lo, hi);
}
template <class Op>
void vs(size_t n, const float* a, const float* b, float* y, float lo, float hi) {
  const float s = b[0];
  for (size_t i = 0; i < n; ++i) y[i] = clampf(Op::f(a[i], s), lo, hi);
}
template <class Op>
void sv(size_t n, const float* a, const float* b, float* y, float lo, float hi) {
  const float s = a[0];
  for (size_t i = 0; i < n; ++i) y[i] = clampf(Op::f(s, b[i]), lo, hi);
}

template <class Op>
F32VBinaryFn pick(F32BinaryShape shape) {
  switch (shape) {
    case F32BinaryShape::vv: return vv<Op>;
    case F32BinaryShape::vs: return vs<Op>;
    case F32BinaryShape::sv: return sv<Op>;
  }
  return nullptr;
}

}  // namespace

F32VBinaryFn f32_vbinary_minmax__scalar(F32BinaryKind kind, F32BinaryShape shape) {
  switch (kind) {
    case F32BinaryKind::add: return pick<Add>(shape);
    case F32BinaryKind::sub: return pick<Sub>(shape);
    case F32BinaryKind::mul: return pick<Mul>(shape);
    case F32BinaryKind::div: return pick<Div>(shape);
    case F32BinaryKind::max: return pick<Max>(shape);
    case F32BinaryKind::min: return pick<Min>(shape);
    case F32BinaryKind::pow: return pick<Pow>(shape);
  }
  return nullptr;
}

}  // namespace edgert
