// f32-im2col: gathers NHWC conv windows into rows a GEMM can multiply by [M, KH*KW*Cg] weights.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// One conv's geometry in NHWC; pads are top/left (bottom/right only shape OH/OW).
struct F32ConvGeometry {
  int64_t h, w, c;      // input height, width, channels
  int64_t oh, ow;       // output height, width
  int64_t kh, kw;       // kernel
  int64_t sh, sw;       // strides
  int64_t pt, pl;       // top, left padding
  int64_t dh, dw;       // dilations
};

// Rows for output pixels [p0, p1) (p = (n*OH + oh)*OW + ow), channels [c0, c0 + cg): each row
// is KH*KW*cg floats in (kh, kw, c) order; taps in the padding read as 0.
void f32_im2col_nhwc__scalar(const F32ConvGeometry& g, size_t p0, size_t p1, size_t c0,
                             size_t cg, const float* x, float* rows);

}  // namespace edgert
