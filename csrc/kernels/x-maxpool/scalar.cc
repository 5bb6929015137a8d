#include "kernels/x-maxpool/x-maxpool.h"

namespace edgert {

template <class T>
void x_maxpool_ukernel__scalar(size_t rows, size_t cols, size_t row_step, size_t col_step,
                               size_t channels, const T* x, T* y) {
  for (size_t c = 0; c < channels; ++c) y[c] = x[c];
  for (size_t r = 0; r < rows; ++r) {
    for (size_t s = (r == 0 ? 1 : 0); s < cols; ++s) {
      const T* px = x + r * row_step + s * col_step;
      for (size_t c = 0; c < channels; ++c) y[c] = px[c] > y[c] ? px[c] : y[c];
    }
  }
}

template void x_maxpool_ukernel__scalar<uint8_t>(size_t, size_t, size_t, size_t, size_t,
                                                 const uint8_t*, uint8_t*);
template void x_maxpool_ukernel__scalar<int8_t>(size_t, size_t, size_t, size_t, size_t,
                                                const int8_t*, int8_t*);
template void x_maxpool_ukernel__scalar<float>(size_t, size_t, size_t, size_t, size_t,
                                               const float*, float*);

}  // namespace edgert
