// x-maxpool: every variant against the scalar kernel (and the scalar kernel's integer results
// against an order-free max) for u8, i8 and f32 on channel counts around every vector width
// (1-7 fall back to scalar; 8-15, 16-31 and 32+ with remainders take the overlapping vectors),
// clipped and dilated windows, several pixels per call with their stride, and f32 inputs
// holding NaN, ±inf and ±0 where the scalar compare order decides the result. The input is an
// exactly sized image whose last element ends at a fault page: no read past the window.
#include <cmath>
#include <limits>

#include "kernels/x-maxpool/x-maxpool.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  int type;  // 0 u8, 1 i8, 2 f32
  size_t pixels, rows, cols, channels, dil_h, dil_w, stride;
  // The image the calls read: rows_in x cols_in pixels of `channels`.
  size_t rows_in() const { return (rows - 1) * dil_h + 1; }
  size_t cols_in() const { return (pixels - 1) * stride + (cols - 1) * dil_w + 1; }
  size_t elems() const { return rows_in() * cols_in() * channels; }
  size_t esize() const { return type == 2 ? 4 : 1; }
};

std::string describe(const Case& c) {
  static const char* const t[] = {"u8", "i8", "f32"};
  return fmt("%s pixels=%zu window=%zux%zu channels=%zu dilation=%zux%zu stride=%zu", t[c.type],
             c.pixels, c.rows, c.cols, c.channels, c.dil_h, c.dil_w, c.stride);
}

// Bytes of the image: integers spread over the whole range with repeats at the extremes;
// floats small enough to collide, with NaN, ±inf and ±0 mixed in.
std::vector<uint8_t> make_input(const Case& c, Rng& rng) {
  std::vector<uint8_t> b(c.elems() * c.esize());
  if (c.type != 2) {
    for (auto& v : b) v = static_cast<uint8_t>(rng.below(5) ? rng.range(0, 255) : (rng.coin() ? 0 : 255));
    if (c.type == 1) for (auto& v : b) v = rng.below(7) ? v : 0x80;  // int8 lowest
    return b;
  }
  static const float special[] = {std::numeric_limits<float>::quiet_NaN(),
                                  -std::numeric_limits<float>::quiet_NaN(),
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(), 0.0f, -0.0f};
  for (size_t i = 0; i < c.elems(); ++i) {
    const float f = rng.below(6) ? float(rng.range(-4, 4)) * 0.5f : special[rng.below(6)];
    std::memcpy(&b[i * 4], &f, 4);
  }
  return b;
}

void call(const XMaxPoolUKernel& uk, const Case& c, const uint8_t* x, uint8_t* y) {
  const size_t rs = c.dil_h * c.cols_in() * c.channels, cs = c.dil_w * c.channels;
  const size_t ps = c.stride * c.channels;
  switch (c.type) {
    case 0: return uk.u8(c.pixels, c.rows, c.cols, rs, cs, ps, c.channels, x, y);
    case 1:
      return uk.i8(c.pixels, c.rows, c.cols, rs, cs, ps, c.channels,
                   reinterpret_cast<const int8_t*>(x), reinterpret_cast<int8_t*>(y));
    default:
      return uk.f32(c.pixels, c.rows, c.cols, rs, cs, ps, c.channels,
                    reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y));
  }
}

// Integer maxima computed per output element, independent of the kernel's loop order.
bool integer_reference_agrees(const Case& c, const std::vector<uint8_t>& x, const uint8_t* y) {
  for (size_t p = 0; p < c.pixels; ++p)
    for (size_t ch = 0; ch < c.channels; ++ch) {
      int32_t m = INT32_MIN;
      for (size_t r = 0; r < c.rows; ++r)
        for (size_t s = 0; s < c.cols; ++s) {
          const uint8_t b = x[(r * c.dil_h * c.cols_in() + p * c.stride + s * c.dil_w) * c.channels + ch];
          m = std::max(m, c.type == 0 ? int32_t(b) : int32_t(int8_t(b)));
        }
      if (uint8_t(m) != y[p * c.channels + ch]) return false;
    }
  return true;
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  const std::vector<uint8_t> bytes = make_input(c, rng);
  const Fenced<uint8_t> x(bytes);
  const size_t out = c.pixels * c.channels * c.esize();
  const XMaxPoolUKernel& scalar = *scalar_variant<XMaxPoolUKernel>();
  Guarded want(out);
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  call(scalar, c, x.data(), want.data());
  fam.check(want.guard_intact() && (c.type == 2 || integer_reference_agrees(c, bytes, want.data())),
            fmt("%s vs reference: %s", scalar.name, describe(c).c_str()));
  check_variants<XMaxPoolUKernel>(
      fam, want.data(), out, describe(c),
      [&](const XMaxPoolUKernel& uk, uint8_t* y) { call(uk, c, x.data(), y); });
}

}  // namespace

Family run_x_maxpool(Rng& rng) {
  Family fam("x-maxpool");
  if (!begin_family<XMaxPoolUKernel>(fam, "x-maxpool.h")) return fam;
  const size_t channels[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48,
                             63, 64, 65, 95, 96, 97, 100, 129};
  for (int type = 0; type < 3; ++type)
    for (size_t ch : channels)
      for (int k = 0; k < 3; ++k) {
        Case c{type, 1 + rng.below(5), 1 + rng.below(4), 1 + rng.below(4), ch, 1, 1, 1 + rng.below(3)};
        if (k == 1) c.dil_h = 1 + rng.below(3), c.dil_w = 1 + rng.below(3);
        if (k == 2) c.rows = c.cols = 3, c.stride = 2;  // the conv nets' 3x3 stride 2
        check_case(fam, c, rng);
      }
  // One tap, one pixel: the copy path; and a whole-image window (global max pooling).
  for (int type = 0; type < 3; ++type) {
    check_case(fam, {type, 1, 1, 1, 64, 1, 1, 1}, rng);
    check_case(fam, {type, 1, 7, 7, 67, 1, 1, 1}, rng);
  }
  return fam;
}

}  // namespace test
}  // namespace edgert
