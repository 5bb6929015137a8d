#include "kernels/f32-lrn/f32-lrn.h"

#include <algorithm>
#include <cmath>

namespace edgert {

void f32_lrn__scalar(size_t c, size_t inner, const float* x, float* y, size_t size, float alpha,
                     float beta, float bias, float* sq) {
  const float a = alpha / static_cast<float>(size);
  const size_t before = (size - 1) / 2, after = size / 2;  // floor and ceil of (size-1)/2
  for (size_t i = 0; i < c; ++i) {
    const size_t lo = i >= before ? i - before : 0;
    const size_t hi = std::min(c, i + after + 1);
    std::fill(sq, sq + inner, 0.0f);
    for (size_t k = lo; k < hi; ++k) {
      const float* xk = x + k * inner;
      for (size_t j = 0; j < inner; ++j) sq[j] += xk[j] * xk[j];
    }
    const float* xi = x + i * inner;
    float* yi = y + i * inner;
    for (size_t j = 0; j < inner; ++j) yi[j] = xi[j] / std::pow(bias + a * sq[j], beta);
  }
}

}  // namespace edgert
