#include "kernels/q8-softmax/q8-softmax.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace edgert {

void q8_softmax_exp_table(float x_scale, size_t d, float* table) {
  // onnxruntime keeps the sum of d exponentials below FLT_MAX with 5 bits (e^5) to spare. Its
  // log takes the fp32 quotient and resolves to the fp32 overload (logf); the rest is double.
  const float limit = FLT_MAX / static_cast<float>(d);
  double shift = static_cast<double>(std::log(limit));
  shift = std::max(0.0, shift - 5.0) / static_cast<double>(x_scale);
  for (int i = 0; i < 256; ++i) {
    const double e = std::exp((static_cast<double>(i) - 255 + shift) * static_cast<double>(x_scale));
    table[i] = static_cast<float>(e);
  }
}

template <class T>
void q8_softmax_ukernel__scalar(size_t d, size_t stride, const T* x, const Q8SoftmaxParams& p,
                                T* y) {
  int32_t xmax = x[0];
  for (size_t k = 1; k < d; ++k) xmax = std::max<int32_t>(xmax, x[k * stride]);
  auto e = [&](size_t k) { return p.table[255 - (xmax - int32_t(x[k * stride]))]; };
  float sum = 0.0f;
  for (size_t k = 0; k < d; ++k) sum += e(k);
  // Quotients lie in [0, y_mult]; capping at 2^22 keeps the magic-number rounding exact and
  // changes nothing after the clamp to [qmin, qmax].
  const float magic = 12582912.0f, cap = 4194304.0f;
  for (size_t k = 0; k < d; ++k) {
    float v = (e(k) * p.y_mult) / sum;
    v = v < cap ? v : cap;
    int32_t q = static_cast<int32_t>((v + magic) - magic) + p.y_zp;
    q = q < p.qmin ? p.qmin : (q > p.qmax ? p.qmax : q);
    y[k * stride] = static_cast<T>(q);
  }
}

template void q8_softmax_ukernel__scalar<uint8_t>(size_t, size_t, const uint8_t*,
                                                  const Q8SoftmaxParams&, uint8_t*);
template void q8_softmax_ukernel__scalar<int8_t>(size_t, size_t, const int8_t*,
                                                 const Q8SoftmaxParams&, int8_t*);

}  // namespace edgert
