// x8-lut: every variant against the scalar kernel, and the scalar kernel against the formula,
// on lengths around the vector steps (none, less than one, exact steps, steps plus a tail), with
// random tables and bytes that take every index, in place (x == y) too. The input ends at a
// fault page: no read past it.
#include <cstring>

#include "kernels/x8-lut/x8-lut.h"
#include "tests/variant_check.h"

namespace edgert {
namespace test {
namespace {

void check_case(Family& fam, size_t n, bool in_place, Rng& rng) {
  std::vector<uint8_t> table(256), bytes(n);
  for (auto& t : table) t = static_cast<uint8_t>(rng.next());
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i < 256 ? i * 167 : rng.next());
  const Fenced<uint8_t> x(bytes);
  const std::string what = fmt("n=%zu%s", n, in_place ? " in place" : "");
  std::vector<uint8_t> ref(n + 1);
  for (size_t i = 0; i < n; ++i) ref[i] = table[bytes[i]];
  const X8LutUKernel& scalar = *scalar_variant<X8LutUKernel>();
  Guarded want(n);
  set_running(fmt("%s: %s", scalar.name, what.c_str()));
  scalar.fn(n, x.data(), table.data(), want.data());
  const size_t at0 = first_diff(want.data(), ref.data(), n);
  fam.check(at0 == SIZE_MAX && want.guard_intact(),
            fmt("%s vs formula: %s, byte %zu", scalar.name, what.c_str(), at0));
  check_variants<X8LutUKernel>(fam, want.data(), n, what,
                               [&](const X8LutUKernel& uk, uint8_t* y) {
                                 if (in_place) {
                                   if (n) std::memcpy(y, bytes.data(), n);
                                   uk.fn(n, y, table.data(), y);
                                 } else {
                                   uk.fn(n, x.data(), table.data(), y);
                                 }
                               });
}

}  // namespace

Family run_x8_lut(Rng& rng) {
  Family fam("x8-lut");
  if (!begin_family<X8LutUKernel>(fam, "x8-lut.h")) return fam;
  const size_t lengths[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255,
                            256, 257, 1000, 50176};
  for (size_t n : lengths)
    for (bool in_place : {false, true}) check_case(fam, n, in_place, rng);
  return fam;
}

}  // namespace test
}  // namespace edgert
