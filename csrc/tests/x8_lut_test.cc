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

// rows: `rows` rows of n bytes, x_stride / y_stride apart (in place: the same buffer), against
// the formula; the bytes between output rows must stay as they were.
void check_rows(Family& fam, size_t rows, size_t n, size_t stride, bool in_place, Rng& rng) {
  std::vector<uint8_t> table(256), bytes(rows ? (rows - 1) * stride + n : 0);
  for (auto& t : table) t = static_cast<uint8_t>(rng.next());
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.next());
  const Fenced<uint8_t> x(bytes);
  const std::string what = fmt("rows=%zu n=%zu stride=%zu%s", rows, n, stride,
                               in_place ? " in place" : "");
  const size_t len = bytes.size();
  std::vector<uint8_t> want(len + 1, kFill);  // untouched bytes keep Guarded's fill
  if (in_place && len) std::memcpy(want.data(), bytes.data(), len);
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) want[r * stride + i] = table[bytes[r * stride + i]];
  check_variants<X8LutUKernel>(fam, want.data(), len, what,
                               [&](const X8LutUKernel& uk, uint8_t* y) {
                                 if (in_place) {
                                   if (len) std::memcpy(y, bytes.data(), len);
                                   uk.rows(rows, n, y, stride, table.data(), y, stride);
                                 } else {
                                   uk.rows(rows, n, x.data(), stride, table.data(), y, stride);
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
  // Column parts of wider rows (a qconv's output table on its thread's columns).
  const size_t shapes[][3] = {{1, 0, 8},    {3, 5, 16},   {4, 16, 16}, {7, 33, 96},
                              {5, 48, 96},  {9, 64, 240}, {2, 65, 65}, {3, 130, 576}};
  for (const auto& s : shapes)
    for (bool in_place : {false, true}) check_rows(fam, s[0], s[1], s[2], in_place, rng);
  return fam;
}

}  // namespace test
}  // namespace edgert
