// AVX2 x-maxpool: NHWC max pooling, 32 bytes of channels per vector, bit-identical to scalar
// (integer max is exact; f32 uses max_ps(px, acc) = px > acc ? px : acc, the scalar compare, in
// the scalar window order). Channel remainders take a vector ending at the last channel, which
// recomputes a few channels with the same result, so nothing outside the window or the output
// row is touched; rows narrower than 16 bytes run the scalar kernel.
#include <immintrin.h>

#include "kernels/x-maxpool/x-maxpool.h"

namespace edgert {
namespace {

// One vector of channels: 256 or 128 bits. vmax(px, acc) is the scalar kernel's
// px > acc ? px : acc (max_ps keeps its second operand unless the first is greater).
template <class V>
V vload(const void* p);
template <>
__m256i vload(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
template <>
__m128i vload(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
template <>
__m256 vload(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
template <>
__m128 vload(const void* p) { return _mm_loadu_ps(static_cast<const float*>(p)); }
void vstore(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
void vstore(void* p, __m128i v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }
void vstore(void* p, __m256 v) { _mm256_storeu_ps(static_cast<float*>(p), v); }
void vstore(void* p, __m128 v) { _mm_storeu_ps(static_cast<float*>(p), v); }
__m256i vmax(uint8_t, __m256i px, __m256i acc) { return _mm256_max_epu8(px, acc); }
__m128i vmax(uint8_t, __m128i px, __m128i acc) { return _mm_max_epu8(px, acc); }
__m256i vmax(int8_t, __m256i px, __m256i acc) { return _mm256_max_epi8(px, acc); }
__m128i vmax(int8_t, __m128i px, __m128i acc) { return _mm_max_epi8(px, acc); }
__m256 vmax(float, __m256 px, __m256 acc) { return _mm256_max_ps(px, acc); }
__m128 vmax(float, __m128 px, __m128 acc) { return _mm_max_ps(px, acc); }

// The 256- and 128-bit vector types holding T.
template <class T>
struct Vectors {
  using Wide = __m256i;
  using Half = __m128i;
};
template <>
struct Vectors<float> {
  using Wide = __m256;
  using Half = __m128;
};

// y[0, N vectors) = max over the window at x, in scalar order: (0, 0) first, then rows, columns.
template <class V, int N, class T>
void window(size_t rows, size_t cols, size_t row_step, size_t col_step, const T* x, T* y) {
  constexpr size_t lanes = sizeof(V) / sizeof(T);
  V acc[N];
  for (int j = 0; j < N; ++j) acc[j] = vload<V>(x + j * lanes);
  for (size_t r = 0; r < rows; ++r) {
    const T* row = x + r * row_step;
    for (size_t s = r == 0 ? 1 : 0; s < cols; ++s) {
      const T* px = row + s * col_step;
      for (int j = 0; j < N; ++j) acc[j] = vmax(T(), vload<V>(px + j * lanes), acc[j]);
    }
  }
  for (int j = 0; j < N; ++j) vstore(y + j * lanes, acc[j]);
}

XMaxPoolFn<uint8_t> scalar_fn(const uint8_t*) { return x_maxpool_ukernel__scalar.u8; }
XMaxPoolFn<int8_t> scalar_fn(const int8_t*) { return x_maxpool_ukernel__scalar.i8; }
XMaxPoolFn<float> scalar_fn(const float*) { return x_maxpool_ukernel__scalar.f32; }

template <class T>
void maxpool(size_t pixels, size_t rows, size_t cols, size_t row_step, size_t col_step,
             size_t pixel_step, size_t channels, const T* x, T* y) {
  using W = typename Vectors<T>::Wide;
  using H = typename Vectors<T>::Half;
  constexpr size_t L = sizeof(W) / sizeof(T), HL = sizeof(H) / sizeof(T);
  if (channels < HL) {
    return scalar_fn(x)(pixels, rows, cols, row_step, col_step, pixel_step, channels, x, y);
  }
  for (size_t p = 0; p < pixels; ++p, x += pixel_step, y += channels) {
    if (channels < L) {
      window<H, 1>(rows, cols, row_step, col_step, x, y);
      window<H, 1>(rows, cols, row_step, col_step, x + channels - HL, y + channels - HL);
      continue;
    }
    size_t c = 0;
    for (; c + 2 * L <= channels; c += 2 * L) window<W, 2>(rows, cols, row_step, col_step, x + c, y + c);
    if (c + L <= channels) {
      window<W, 1>(rows, cols, row_step, col_step, x + c, y + c);
      c += L;
    }
    if (c < channels) {
      window<W, 1>(rows, cols, row_step, col_step, x + channels - L, y + channels - L);
    }
  }
}

}  // namespace

const XMaxPoolUKernel x_maxpool_ukernel_c32__avx2 = {
    "x_maxpool_ukernel_c32__avx2", maxpool<uint8_t>, maxpool<int8_t>, maxpool<float>};

}  // namespace edgert
