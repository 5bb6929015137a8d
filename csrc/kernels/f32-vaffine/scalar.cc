#include "kernels/f32-vaffine/f32-vaffine.h"

namespace edgert {

void f32_vaffine_vv__scalar(size_t c, const float* x, const float* scale, const float* shift,
                            float* y) {
  for (size_t i = 0; i < c; ++i) y[i] = x[i] * scale[i] + shift[i];
}

void f32_vaffine_ss__scalar(size_t n, const float* x, float scale, float shift, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

}  // namespace edgert
