// f32-vunary: y[i] = f(x[i]) for the fp32 activations and math functions of the `unary` op.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

enum class F32UnaryKind : uint8_t {
  relu, clip, leaky_relu, sigmoid, tanh, hard_sigmoid, hard_swish, exp, log, sqrt, neg, abs,
  erf, gelu, gelu_tanh
};

// alpha/beta: leaky_relu slope; hard_sigmoid max(0, min(1, alpha*x + beta)).
// lo/hi: clip bounds (clip is min(max(x, lo), hi)).
struct F32UnaryParams {
  float alpha = 0, beta = 0, lo = 0, hi = 0;
};

// Formulas (all in fp32 except erf/gelu, which go through float std::erf):
//   sigmoid 1/(1+exp(-x)); hard_swish x*max(0, min(1, x/6 + 1/2)); gelu x/2*(1+erf(x/sqrt 2));
//   gelu_tanh x/2*(1+tanh(sqrt(2/pi)*(x + 0.044715x^3))).
void f32_vunary__scalar(F32UnaryKind kind, size_t n, const float* x, float* y,
                        const F32UnaryParams& p);

}  // namespace edgert
