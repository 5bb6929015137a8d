// Creation-time helpers shared by the fp32 op wrappers (conv, gemm, elementwise, softmax, pool,
// lrn): dtype checks, the fused activation clamp, checked size arithmetic.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runtime/op.h"

namespace edgert {

inline void expect_all_f32(const OpSpec& spec) {
  for (const auto& t : spec.inputs) EDGERT_EXPECT(spec, t.dtype == DType::f32, "inputs must be f32");
  for (const auto& t : spec.outputs) EDGERT_EXPECT(spec, t.dtype == DType::f32, "outputs must be f32");
}

// act_min / act_max, defaulting to the identity clamp; NaN or lo > hi is a model error.
struct F32Clamp {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};
inline F32Clamp parse_clamp(const OpSpec& spec) {
  F32Clamp c;
  c.lo = static_cast<float>(spec.attrs.f("act_min", c.lo));
  c.hi = static_cast<float>(spec.attrs.f("act_max", c.hi));
  EDGERT_EXPECT(spec, c.lo <= c.hi, "act_min must be <= act_max (and not NaN)");
  return c;
}

// a * b for sizes, failing instead of wrapping; the executor already caps tensor sizes.
inline int64_t mul_checked(const OpSpec& spec, int64_t a, int64_t b) {
  EDGERT_EXPECT(spec, a >= 0 && b >= 0, "negative size");
  if (a != 0 && b > (int64_t(1) << 48) / a) spec.fail("size overflow");
  return a * b;
}

inline std::string shape_to_string(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// A list attribute of exactly n ints each >= min_value.
inline std::vector<int64_t> ints_n(const OpSpec& spec, const char* name, size_t n,
                                   int64_t min_value, std::vector<int64_t> def = {}) {
  std::vector<int64_t> v = spec.attrs.has(name) || def.empty() ? spec.attrs.ints(name) : def;
  EDGERT_EXPECT(spec, v.size() == n, std::string(name) + " must have " + std::to_string(n) + " values");
  for (int64_t x : v) {
    EDGERT_EXPECT(spec, x >= min_value && x <= (int64_t(1) << 30),
                std::string(name) + " value out of range: " + std::to_string(x));
  }
  return v;
}

}  // namespace edgert
