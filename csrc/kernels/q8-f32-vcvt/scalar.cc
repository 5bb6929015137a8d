#include "kernels/q8-f32-vcvt/q8-f32-vcvt.h"

namespace edgert {

template <class T>
void q8_f32_vcvt_ukernel__scalar(size_t n, const T* x, float scale, int32_t zp, float* y) {
  for (size_t i = 0; i < n; ++i) {
    y[i] = static_cast<float>(static_cast<int64_t>(x[i]) - zp) * scale;
  }
}

template void q8_f32_vcvt_ukernel__scalar<uint8_t>(size_t, const uint8_t*, float, int32_t,
                                                   float*);
template void q8_f32_vcvt_ukernel__scalar<int8_t>(size_t, const int8_t*, float, int32_t, float*);
template void q8_f32_vcvt_ukernel__scalar<int32_t>(size_t, const int32_t*, float, int32_t,
                                                   float*);

}  // namespace edgert
