// q8-softmax: onnxruntime's QLinearSoftmax (com.microsoft) arithmetic, bit for bit, on one row
// of d elements along the softmax axis.
//
// Exponentials come from a 256-entry fp32 table built once from x_scale and d:
//     shift = max(0, double(logf(FLT_MAX / float(d))) - 5) / x_scale    (fp32 log, then double)
//     E[i]  = float(exp((double(i) - 255 + shift) * double(x_scale)))   for i in [0, 255]
// (x_zp cancels out). A row's element x (u8 or i8) with row maximum xmax uses E[255 - (xmax - x)].
//     sum = E-values added in fp32 in row order, starting from 0.0f
//     y   = clamp(round_half_even((E * y_mult) / sum) + y_zp, qmin, qmax),
//           y_mult = floorf(1.0f / y_scale)
// Where E * y_mult overflows to inf (d = 1, or floor(1/y_scale) > ~148 * d) onnxruntime's
// float-to-int conversion yields y_zp; edgert saturates to qmax there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// table[i] = E[i] as above.
void q8_softmax_exp_table(float x_scale, size_t d, float* table);

struct Q8SoftmaxParams {
  const float* table;  // 256 entries from q8_softmax_exp_table
  float y_mult;        // floorf(1.0f / y_scale)
  int32_t y_zp, qmin, qmax;
};

// One row: x[k * stride], y[k * stride] for k < d (d >= 1).
template <class T>
void q8_softmax_ukernel__scalar(size_t d, size_t stride, const T* x, const Q8SoftmaxParams& p,
                                T* y);

}  // namespace edgert
