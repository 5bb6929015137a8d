// AVX2 x8-zip: 32 pixels per step. The 256-bit unpacks and shuffles work within 128-bit lanes,
// so each lane interleaves 16 pixels and vperm2i128 puts the lanes' 16-byte pieces in order.
// The last < 32 pixels are one step ending at the last pixel; under 32 pixels run scalar.
#include <immintrin.h>

#include "kernels/x8-zip/x8-zip.h"

namespace edgert {
namespace {

__m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
void store(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

// n = 3: output byte 16k + m of a lane's 48 comes from plane (16k + m) % 3, pixel (16k + m) / 3.
struct Zip3Masks {
  alignas(32) int8_t m[3][3][32];  // [output piece k][plane j][byte], both lanes alike
};
constexpr Zip3Masks zip3_masks() {
  Zip3Masks r{};
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 3; ++j)
      for (int b = 0; b < 16; ++b) {
        const int g = 16 * k + b;
        r.m[k][j][b] = r.m[k][j][b + 16] = static_cast<int8_t>(g % 3 == j ? g / 3 : -1);
      }
  return r;
}
constexpr Zip3Masks kZip3 = zip3_masks();

template <size_t N>
void step(size_t x_stride, const uint8_t* x, uint8_t* y);

template <>
void step<2>(size_t x_stride, const uint8_t* x, uint8_t* y) {
  const __m256i a = load(x), b = load(x + x_stride);
  const __m256i lo = _mm256_unpacklo_epi8(a, b), hi = _mm256_unpackhi_epi8(a, b);
  store(y, _mm256_permute2x128_si256(lo, hi, 0x20));
  store(y + 32, _mm256_permute2x128_si256(lo, hi, 0x31));
}

template <>
void step<3>(size_t x_stride, const uint8_t* x, uint8_t* y) {
  const __m256i p[3] = {load(x), load(x + x_stride), load(x + 2 * x_stride)};
  __m256i o[3];
  for (int k = 0; k < 3; ++k) {
    o[k] = _mm256_setzero_si256();
    for (int j = 0; j < 3; ++j) {
      const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(kZip3.m[k][j]));
      o[k] = _mm256_or_si256(o[k], _mm256_shuffle_epi8(p[j], m));
    }
  }
  // o[k] holds output bytes 16k.. (lane 0) and 48 + 16k.. (lane 1).
  store(y, _mm256_permute2x128_si256(o[0], o[1], 0x20));
  store(y + 32, _mm256_permute2x128_si256(o[2], o[0], 0x30));
  store(y + 64, _mm256_permute2x128_si256(o[1], o[2], 0x31));
}

template <>
void step<4>(size_t x_stride, const uint8_t* x, uint8_t* y) {
  const __m256i a = load(x), b = load(x + x_stride);
  const __m256i c = load(x + 2 * x_stride), d = load(x + 3 * x_stride);
  const __m256i ab_lo = _mm256_unpacklo_epi8(a, b), ab_hi = _mm256_unpackhi_epi8(a, b);
  const __m256i cd_lo = _mm256_unpacklo_epi8(c, d), cd_hi = _mm256_unpackhi_epi8(c, d);
  // Pixels 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27, 12-15 | 28-31.
  const __m256i q0 = _mm256_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm256_unpackhi_epi16(ab_lo, cd_lo);
  const __m256i q2 = _mm256_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm256_unpackhi_epi16(ab_hi, cd_hi);
  store(y, _mm256_permute2x128_si256(q0, q1, 0x20));
  store(y + 32, _mm256_permute2x128_si256(q2, q3, 0x20));
  store(y + 64, _mm256_permute2x128_si256(q0, q1, 0x31));
  store(y + 96, _mm256_permute2x128_si256(q2, q3, 0x31));
}

template <size_t N>
void zip(size_t pixels, size_t x_stride, const uint8_t* x, uint8_t* y) {
  if (pixels < 32) {
    const X8ZipFn scalar[] = {x8_zip_ukernel__scalar.x2, x8_zip_ukernel__scalar.x3,
                              x8_zip_ukernel__scalar.x4};
    return scalar[N - 2](pixels, x_stride, x, y);
  }
  size_t p = 0;
  for (; p + 32 <= pixels; p += 32) step<N>(x_stride, x + p, y + p * N);
  if (p < pixels) step<N>(x_stride, x + pixels - 32, y + (pixels - 32) * N);
}

}  // namespace

const X8ZipUKernel x8_zip_ukernel_x32__avx2 = {"x8_zip_ukernel_x32__avx2", zip<2>, zip<3>, zip<4>};

}  // namespace edgert
