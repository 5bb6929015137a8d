// x8-transpose: every variant against the scalar kernel, and the scalar kernel against the
// formula, on row and column counts around the 16x16 tiles (under one tile, exact tiles, tiles
// plus an overlapping last one) with strides longer than the rows; the bytes between output rows
// must stay untouched, and x's last row ends at a fault page.
#include "kernels/x8-transpose/x8-transpose.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  size_t rows, cols, x_stride, y_stride;
};

std::string describe(const Case& c) {
  return fmt("rows=%zu cols=%zu x_stride=%zu y_stride=%zu", c.rows, c.cols, c.x_stride,
             c.y_stride);
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  std::vector<uint8_t> bytes(c.cols ? (c.cols - 1) * c.x_stride + c.rows : 0);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.next());
  const Fenced<uint8_t> x(bytes);
  const size_t out = c.rows ? (c.rows - 1) * c.y_stride + c.cols : 0;
  std::vector<uint8_t> ref(out, kFill);
  for (size_t i = 0; i < c.rows; ++i)
    for (size_t j = 0; j < c.cols; ++j) ref[i * c.y_stride + j] = bytes[j * c.x_stride + i];
  const X8TransposeUKernel& scalar = *scalar_variant<X8TransposeUKernel>();
  Guarded want(out);
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  scalar.fn(c.rows, c.cols, c.x_stride, c.y_stride, x.data(), want.data());
  const size_t at = first_diff(want.data(), ref.data(), out);
  fam.check(at == SIZE_MAX && want.guard_intact(),
            fmt("%s vs formula: %s, byte %zu", scalar.name, describe(c).c_str(), at));
  check_variants<X8TransposeUKernel>(fam, want.data(), out, describe(c),
                                     [&](const X8TransposeUKernel& uk, uint8_t* y) {
                                       uk.fn(c.rows, c.cols, c.x_stride, c.y_stride, x.data(), y);
                                     });
}

}  // namespace

Family run_x8_transpose(Rng& rng) {
  Family fam("x8-transpose");
  if (!begin_family<X8TransposeUKernel>(fam, "x8-transpose.h")) return fam;
  const size_t sizes[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 48, 63, 100};
  for (size_t rows : sizes)
    for (size_t cols : sizes) {
      const bool padded = rng.coin();
      check_case(fam, {rows, cols, rows + (padded ? rng.below(20) : 0),
                       cols + (padded ? rng.below(20) : 0)}, rng);
    }
  check_case(fam, {64, 3136, 64, 3136}, rng);  // 1x56x56x64 NHWC -> NCHW
  check_case(fam, {3136, 64, 3136, 64}, rng);  // and back
  return fam;
}

}  // namespace test
}  // namespace edgert
