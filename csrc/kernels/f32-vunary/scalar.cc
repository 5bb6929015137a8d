#include "kernels/f32-vunary/f32-vunary.h"

#include <algorithm>
#include <cmath>

namespace edgert {
namespace {

template <class F>
void map(size_t n, const float* x, float* y, F f) {
  for (size_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

}  // namespace

void f32_vunary__scalar(F32UnaryKind kind, size_t n, const float* x, float* y,
                        const F32UnaryParams& p) {
  const float alpha = p.alpha, beta = p.beta, lo = p.lo, hi = p.hi;
  switch (kind) {
    case F32UnaryKind::relu: return map(n, x, y, [](float v) { return std::max(v, 0.0f); });
    case F32UnaryKind::clip:
      return map(n, x, y, [=](float v) { return std::min(std::max(v, lo), hi); });
    case F32UnaryKind::leaky_relu:
      return map(n, x, y, [=](float v) { return v >= 0.0f ? v : v * alpha; });
    case F32UnaryKind::sigmoid:
      return map(n, x, y, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    case F32UnaryKind::tanh: return map(n, x, y, [](float v) { return std::tanh(v); });
    case F32UnaryKind::hard_sigmoid:
      return map(n, x, y, [=](float v) {
        return std::min(std::max(alpha * v + beta, 0.0f), 1.0f);
      });
    case F32UnaryKind::hard_swish:
      return map(n, x, y, [](float v) {
        return v * std::min(std::max(v * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f);
      });
    case F32UnaryKind::exp: return map(n, x, y, [](float v) { return std::exp(v); });
    case F32UnaryKind::log: return map(n, x, y, [](float v) { return std::log(v); });
    case F32UnaryKind::sqrt: return map(n, x, y, [](float v) { return std::sqrt(v); });
    case F32UnaryKind::neg: return map(n, x, y, [](float v) { return -v; });
    case F32UnaryKind::abs: return map(n, x, y, [](float v) { return std::fabs(v); });
    case F32UnaryKind::erf: return map(n, x, y, [](float v) { return std::erf(v); });
    case F32UnaryKind::gelu:
      return map(n, x, y, [](float v) {
        return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
      });
    case F32UnaryKind::gelu_tanh:
      return map(n, x, y, [](float v) {
        const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        return 0.5f * v * (1.0f + std::tanh(inner));
      });
  }
}

}  // namespace edgert
