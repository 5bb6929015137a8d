// f32-softmax: softmax / log-softmax along an axis of length n whose elements are `inner` apart.
#pragma once

#include <cstddef>

namespace edgert {

// For each of `lanes` adjacent lanes whose n axis elements are `stride` apart: m = max,
// s = sum of exp(x - m) (in double, axis order); y = exp(x - m) * float(1/s), or with log
// y = (x - m) - float(log s). Every lane gets the same arithmetic whatever lanes/stride are.
// stride > 1 needs scratch: fwork 2*lanes floats, dwork lanes doubles.
void f32_softmax__scalar(size_t n, size_t lanes, size_t stride, const float* x, float* y,
                         bool log, float* fwork, double* dwork);

}  // namespace edgert
