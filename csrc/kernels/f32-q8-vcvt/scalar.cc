#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"

#include <limits>

namespace edgert {

template <class T>
void f32_q8_vcvt_ukernel__scalar(size_t n, const float* x, float scale, int32_t zp, T* y) {
  const float lo = static_cast<float>(int32_t(std::numeric_limits<T>::min()) - zp);
  const float hi = static_cast<float>(int32_t(std::numeric_limits<T>::max()) - zp);
  // After the clamp |v| <= 510, where adding 1.5 * 2^23 rounds half to even exactly.
  const float magic = 12582912.0f;
  for (size_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    y[i] = static_cast<T>(static_cast<int32_t>((v + magic) - magic) + zp);
  }
}

template void f32_q8_vcvt_ukernel__scalar<uint8_t>(size_t, const float*, float, int32_t,
                                                   uint8_t*);
template void f32_q8_vcvt_ukernel__scalar<int8_t>(size_t, const float*, float, int32_t, int8_t*);

}  // namespace edgert
