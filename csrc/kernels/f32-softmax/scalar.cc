#include "kernels/f32-softmax/f32-softmax.h"

#include <algorithm>
#include <cmath>

namespace edgert {

void f32_softmax__scalar(size_t n, size_t lanes, size_t stride, const float* x, float* y,
                         bool log, float* fwork, double* dwork) {
  if (n == 0 || lanes == 0) return;
  if (stride == 1) {  // contiguous axis: the common case, no lane bookkeeping
    float m = x[0];
    for (size_t i = 1; i < n; ++i) m = std::max(m, x[i]);
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
      const float e = std::exp(x[i] - m);
      if (!log) y[i] = e;
      s += e;
    }
    if (log) {
      const float ls = static_cast<float>(std::log(s));
      for (size_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;
    } else {
      const float inv = static_cast<float>(1.0 / s);
      for (size_t i = 0; i < n; ++i) y[i] = y[i] * inv;
    }
    return;
  }
  float* m = fwork;
  double* s = dwork;
  std::copy(x, x + lanes, m);
  for (size_t i = 1; i < n; ++i)
    for (size_t j = 0; j < lanes; ++j) m[j] = std::max(m[j], x[i * stride + j]);
  std::fill(s, s + lanes, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < lanes; ++j) {
      const float e = std::exp(x[i * stride + j] - m[j]);
      if (!log) y[i * stride + j] = e;
      s[j] += e;
    }
  }
  float* t = fwork + lanes;  // per-lane 1/s or log(s)
  for (size_t j = 0; j < lanes; ++j)
    t[j] = static_cast<float>(log ? std::log(s[j]) : 1.0 / s[j]);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < lanes; ++j) {
      const size_t k = i * stride + j;
      y[k] = log ? (x[k] - m[j]) - t[j] : y[k] * t[j];
    }
  }
}

}  // namespace edgert
