// f32-q8-vcvt: every variant against the scalar kernel, and the scalar kernel against
// nearbyint(clamp(x / scale)), on lengths around the vector blocks, u8/i8 with zero points at
// their extremes, scales whose reciprocal is or is not a normal float, and inputs at, next to
// and a few ulps from exact half-integer quotients (where a product by the reciprocal may round
// differently from the quotient), NaN, ±inf, ±0, subnormals and huge values.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  size_t n;
  float scale;
  int32_t zp;
  bool u8;
};

std::string describe(const Case& c) {
  return fmt("n=%zu scale=%a zp=%d %s", c.n, double(c.scale), c.zp, c.u8 ? "u8" : "i8");
}

// One input: mostly in the quantized range (with a margin past the clamp), a third of them
// near a half-integer quotient, and special values.
float random_input(const Case& c, Rng& rng) {
  const float lim = float(c.u8 ? 260 : 132);
  switch (rng.below(12)) {
    case 0: {
      static const float special[] = {
          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
          std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
          std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
          std::numeric_limits<float>::min(), 0.0f, -0.0f, 1e30f, -1e30f, 3e-39f};
      return special[rng.below(sizeof special / sizeof special[0])];
    }
    case 1: case 2: case 3: case 4: {  // the float nearest (k + 1/2)·scale and its neighbours
      const float h = float(rng.range(-int32_t(lim), int32_t(lim))) + 0.5f;
      float x = h * c.scale;
      for (int32_t steps = rng.range(-3, 3); steps != 0; steps += steps > 0 ? -1 : 1)
        x = std::nextafter(x, steps > 0 ? INFINITY : -INFINITY);
      return x;
    }
    case 5:  // integer quotients
      return float(rng.range(-int32_t(lim), int32_t(lim))) * c.scale;
    default:
      return rng.uniform(-lim, lim) * c.scale;
  }
}

// The contract written independently of the scalar kernel's magic-number rounding.
template <class T>
void reference(const Case& c, const std::vector<float>& x, uint8_t* y) {
  const float lo = float(int32_t(std::numeric_limits<T>::min()) - c.zp);
  const float hi = float(int32_t(std::numeric_limits<T>::max()) - c.zp);
  for (size_t i = 0; i < c.n; ++i) {
    float v = x[i] / c.scale;
    v = std::isnan(v) ? lo : std::min(std::max(v, lo), hi);
    const T q = static_cast<T>(int32_t(std::nearbyint(v)) + c.zp);
    std::memcpy(y + i, &q, 1);
  }
}

void run_variant(const F32Q8VCvtUKernel& uk, const Case& c, const float* x, uint8_t* y) {
  if (c.u8) {
    uk.u8(c.n, x, c.scale, c.zp, y);
  } else {
    uk.i8(c.n, x, c.scale, c.zp, reinterpret_cast<int8_t*>(y));
  }
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  std::vector<float> xs(c.n);
  for (float& v : xs) v = random_input(c, rng);
  const Fenced<float> x(xs);
  const F32Q8VCvtUKernel& scalar = *scalar_variant<F32Q8VCvtUKernel>();
  Guarded want(c.n), ref(c.n);
  c.u8 ? reference<uint8_t>(c, xs, ref.data()) : reference<int8_t>(c, xs, ref.data());
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  run_variant(scalar, c, x.data(), want.data());
  size_t at = first_diff(want.data(), ref.data(), c.n);
  fam.check(at == SIZE_MAX && want.guard_intact(),
            fmt("%s vs nearbyint reference: %s, element %zu", scalar.name, describe(c).c_str(), at));
  check_variants<F32Q8VCvtUKernel>(
      fam, want.data(), c.n, describe(c),
      [&](const F32Q8VCvtUKernel& uk, uint8_t* y) { run_variant(uk, c, x.data(), y); },
      [&](size_t i) { return fmt(" (x = %a)", double(xs[i])); });
}

}  // namespace

Family run_f32_q8_vcvt(Rng& rng) {
  Family fam("f32-q8-vcvt");
  if (!begin_family<F32Q8VCvtUKernel>(fam, "f32-q8-vcvt.h")) return fam;
  auto random_zp = [&](bool u8) {
    const int32_t lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
    const size_t pick = rng.below(4);
    return pick == 0 ? lo : pick == 1 ? hi : rng.range(lo, hi);
  };
  const size_t lengths[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 255,
                            1000, 4099};
  for (size_t n : lengths)
    for (int k = 0; k < 4; ++k) {
      const bool u8 = k & 1;
      check_case(fam, {n, std::exp(rng.uniform(-12.0f, 6.0f)), random_zp(u8), u8}, rng);
    }
  // Scales at and past the reciprocal's normal range, powers of two (exact reciprocals, so
  // ties are exact) and plain values.
  const float scales[] = {1.0f, 0.5f, 3.0f, 0.1f, 1.0f / 255.0f, 0x1p-100f, 0x1p100f,
                          0x1.fffffep-101f, 0x1.000002p100f, 1e-38f, 1e-44f, 3e38f, 0.0078125f};
  for (float s : scales)
    for (bool u8 : {true, false}) check_case(fam, {size_t(rng.range(200, 300)), s, random_zp(u8), u8}, rng);
  return fam;
}

}  // namespace test
}  // namespace edgert
