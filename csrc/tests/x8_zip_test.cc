// x8-zip: every variant against the scalar kernel, and the scalar kernel against the formula,
// for 2, 3 and 4 planes on pixel counts around the vector steps (fewer than one step, exact
// steps, steps plus an overlapping last one) and plane strides longer than the planes. The
// last plane ends at a fault page: no read past it.
#include "kernels/x8-zip/x8-zip.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  size_t n, pixels, x_stride;
};

std::string describe(const Case& c) {
  return fmt("n=%zu pixels=%zu x_stride=%zu", c.n, c.pixels, c.x_stride);
}

X8ZipFn pick(const X8ZipUKernel& uk, size_t n) { return n == 2 ? uk.x2 : n == 3 ? uk.x3 : uk.x4; }

void check_case(Family& fam, const Case& c, Rng& rng) {
  std::vector<uint8_t> bytes((c.n - 1) * c.x_stride + c.pixels);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.next());
  const Fenced<uint8_t> x(bytes);
  const size_t out = c.n * c.pixels;
  std::vector<uint8_t> ref(out + 1);  // + 1: data() is not null for 0 pixels (memcmp)
  for (size_t p = 0; p < c.pixels; ++p)
    for (size_t ch = 0; ch < c.n; ++ch) ref[p * c.n + ch] = bytes[ch * c.x_stride + p];
  const X8ZipUKernel& scalar = *scalar_variant<X8ZipUKernel>();
  Guarded want(out);
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  pick(scalar, c.n)(c.pixels, c.x_stride, x.data(), want.data());
  const size_t at0 = first_diff(want.data(), ref.data(), out);
  fam.check(at0 == SIZE_MAX && want.guard_intact(),
            fmt("%s vs formula: %s, byte %zu", scalar.name, describe(c).c_str(), at0));
  check_variants<X8ZipUKernel>(fam, want.data(), out, describe(c),
                               [&](const X8ZipUKernel& uk, uint8_t* y) {
                                 pick(uk, c.n)(c.pixels, c.x_stride, x.data(), y);
                               });
}

}  // namespace

Family run_x8_zip(Rng& rng) {
  Family fam("x8-zip");
  if (!begin_family<X8ZipUKernel>(fam, "x8-zip.h")) return fam;
  const size_t pixels[] = {0, 1, 5, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97,
                           100, 1000, 50176};
  for (size_t n = 2; n <= 4; ++n)
    for (size_t p : pixels)
      for (size_t extra : {size_t{0}, rng.below(40)}) check_case(fam, {n, p, p + extra}, rng);
  return fam;
}

}  // namespace test
}  // namespace edgert
