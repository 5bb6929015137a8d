// x-maxpool: max pooling of NHWC data for any element type x (u8, i8, f32): one output pixel
// is the elementwise max over the window's input pixels (windows are clipped to the input by
// the caller, never padded). f32 compares with `>` so a NaN input is skipped unless it comes
// first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// y[c] = max over r < rows, s < cols of x[r * row_step + s * col_step + c], c < channels;
// rows, cols >= 1.
template <class T>
void x_maxpool_ukernel__scalar(size_t rows, size_t cols, size_t row_step, size_t col_step,
                               size_t channels, const T* x, T* y);

}  // namespace edgert
