// f32-vaffine: per-channel y = x*scale + shift (unfused BatchNormalization), fp32, two roundings.
#pragma once

#include <cstddef>

namespace edgert {

// Channel-last rows: y[i] = x[i]*scale[i] + shift[i] for i < c.
void f32_vaffine_vv__scalar(size_t c, const float* x, const float* scale, const float* shift,
                            float* y);
// One channel over a contiguous run: y[i] = x[i]*scale + shift for i < n.
void f32_vaffine_ss__scalar(size_t n, const float* x, float scale, float shift, float* y);

}  // namespace edgert
