// q8-avgpool: every variant against the scalar kernels, global and windowed, u8 and i8, on
// channel counts around the vector widths (1-7 scalar only, 8-31 the 8-channel steps, 32+ the
// 32-channel ones with remainders), 1 to 200 pixels with a pixel stride past the channels, zero
// points and scales at their extremes (outputs clamped at both ends, and a narrowed [qmin,
// qmax]). The scalar global kernel is checked against the formula in q8-avgpool.h on its own
// first. Inputs end at a fault page: no read past the last pixel's channels.
#include <cmath>

#include "kernels/q8-avgpool/q8-avgpool.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  bool i8;
  size_t pixels, channels, stride;  // global: pixels; windowed: rows x cols = pixels x 1
  float x_scale, y_scale;
  int32_t x_zp, y_zp, qmin, qmax;
};

std::string describe(const Case& c) {
  return fmt("%s pixels=%zu channels=%zu stride=%zu x=(%g, %d) y=(%g, %d) [%d, %d]",
             c.i8 ? "i8" : "u8", c.pixels, c.channels, c.stride, c.x_scale, c.x_zp, c.y_scale,
             c.y_zp, c.qmin, c.qmax);
}

// The global formula, element by element in double where it is exact and in float where the
// kernels round: acc exact, float(acc) · scale once, clamp, round half to even, + y_zp.
bool global_formula_agrees(const Case& c, const Q8GAvgPoolParams& p, const uint8_t* x,
                           const uint8_t* y) {
  for (size_t ch = 0; ch < c.channels; ++ch) {
    int64_t acc = p.bias;
    for (size_t i = 0; i < c.pixels; ++i) {
      const uint8_t b = x[i * c.stride + ch];
      acc += c.i8 ? int32_t(int8_t(b)) : int32_t(b);
    }
    float v = static_cast<float>(static_cast<int32_t>(acc)) * p.scale;
    v = std::fmin(std::fmax(v, p.vmin), p.vmax);
    const int32_t q = static_cast<int32_t>(std::nearbyint(v)) + p.y_zp;
    if (uint8_t(q) != y[ch]) return false;
  }
  return true;
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  std::vector<uint8_t> bytes((c.pixels - 1) * c.stride + c.channels);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.below(6) ? rng.range(0, 255) : (rng.coin() ? 0 : 255));
  const Fenced<uint8_t> x(bytes);
  const Q8AvgPoolUKernel& scalar = *scalar_variant<Q8AvgPoolUKernel>();
  const std::string what = describe(c);
  // Global.
  const Q8GAvgPoolParams gp = q8_gavgpool_params(c.pixels, c.x_scale, c.x_zp, c.y_scale, c.y_zp,
                                                 c.qmin, c.qmax);
  std::vector<int32_t> acc(c.channels);
  auto global = [&](const Q8AvgPoolUKernel& uk, uint8_t* y) {
    if (c.i8)
      uk.global_i8(c.pixels, c.channels, c.stride, reinterpret_cast<const int8_t*>(x.data()),
                   acc.data(), gp, reinterpret_cast<int8_t*>(y));
    else
      uk.global_u8(c.pixels, c.channels, c.stride, x.data(), acc.data(), gp, y);
  };
  Guarded want(c.channels);
  set_running(fmt("%s global: %s", scalar.name, what.c_str()));
  global(scalar, want.data());
  fam.check(want.guard_intact() && global_formula_agrees(c, gp, bytes.data(), want.data()),
            fmt("%s global vs the formula: %s", scalar.name, what.c_str()));
  check_variants<Q8AvgPoolUKernel>(fam, want.data(), c.channels, "global " + what, global);
  // Windowed: the pixels as a window of rows (row stride c.stride) of one column each.
  Q8AvgPoolParams wp;
  q8_avgpool_params(c.x_scale, c.x_zp, c.i8, c.y_scale, c.y_zp, c.qmin, c.qmax, &wp);
  std::vector<float> facc(c.channels);
  const float divisor = static_cast<float>(c.pixels + rng.below(3));  // padding counted or not
  auto window = [&](const Q8AvgPoolUKernel& uk, uint8_t* y) {
    if (c.i8)
      uk.window_i8(c.pixels, 1, c.stride, c.channels, reinterpret_cast<const int8_t*>(x.data()),
                   divisor, wp, facc.data(), reinterpret_cast<int8_t*>(y));
    else
      uk.window_u8(c.pixels, 1, c.stride, c.channels, x.data(), divisor, wp, facc.data(), y);
  };
  Guarded wwant(c.channels);
  set_running(fmt("%s window: %s", scalar.name, what.c_str()));
  window(scalar, wwant.data());
  fam.check(wwant.guard_intact(), fmt("%s window: %s", scalar.name, what.c_str()));
  check_variants<Q8AvgPoolUKernel>(fam, wwant.data(), c.channels, "window " + what, window);
}

}  // namespace

Family run_q8_avgpool(Rng& rng) {
  Family fam("q8-avgpool");
  if (!begin_family<Q8AvgPoolUKernel>(fam, "q8-avgpool.h")) return fam;
  const size_t channels[] = {1, 3, 7, 8, 9, 15, 16, 24, 31, 32, 33, 40, 63, 64, 65, 96, 100, 129};
  for (int i8 = 0; i8 < 2; ++i8)
    for (size_t ch : channels)
      for (size_t pixels : {size_t{1}, size_t{2}, size_t{9}, size_t{49}, size_t{200}}) {
        const int32_t lo = i8 ? -128 : 0, hi = i8 ? 127 : 255;
        Case c{bool(i8), pixels, ch, ch + rng.below(3) * 5, rng.uniform(0.001f, 0.1f),
               rng.uniform(0.001f, 0.1f), rng.range(lo, hi), rng.range(lo, hi), lo, hi};
        const int kind = int(rng.below(4));
        if (kind == 1) c.y_scale *= 0.02f;           // outputs clamped at both ends
        if (kind == 2) c.qmin = lo + 30, c.qmax = hi - 40;  // a narrowed range (fused clip)
        if (kind == 3) c.x_zp = lo, c.y_zp = hi;     // zero points at the extremes
        check_case(fam, c, rng);
      }
  return fam;
}

}  // namespace test
}  // namespace edgert
