// AVX2 f32-q8-vcvt, 32 floats per step, bit-identical to the scalar kernel (x / scale, clamp,
// round half to even, + zp) at multiplication speed; never reads x or writes y past n.
//
// Division throughput limits the scalar kernel, so each lane first computes
//     s = clamp(fma(x, 1/scale, M), M + lo, M + hi),   M = 2^9 + 256 + zp + 1/2,
// which rounds x·(1/scale) + zp + 1/2 to a multiple of 2^-14 (s stays in [2^9, 2^10), where
// that is the float spacing): bits 14-21 of s's encoding are floor(quotient + zp + 1/2) mod
// 256, the output byte, and bits 0-13 the fraction. That is the quotient's rounding unless the
// quotient lies within 2^-14 of a half-integer: s differs from the exact x/scale + M by at
// most 2^-15 (its own rounding) + 2^-24·|x/scale| (the reciprocal's), the rounded quotient
// from x/scale by 2^-24·|x/scale|, and |x/scale| < 2^8 wherever the clamp does not decide, so
// the two differ by less than 2^-14. Such a lane shows as a zero fraction; any 32 floats with
// one are redone with the division itself (about 2^-14 of the lanes). Lanes clamped at M + lo
// or M + hi have a fraction of 1/2, and clamp-then-round agrees with round-then-clamp there
// because lo and hi are integers. NaN clamps to M + lo, as in scalar. A scale whose reciprocal
// is not a normal float always divides.
#include <immintrin.h>

#include <cstring>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"

namespace edgert {
namespace {

struct Consts {
  __m256 recip, magic, smin, smax;  // the fast path
  __m256 scale, lo, hi;             // the division path
  __m256i zp;
  bool always_divide;
};

Consts consts(float scale, int32_t zp, int32_t tmin, int32_t tmax) {
  Consts k;
  const float magic = 512.0f + 256.0f + static_cast<float>(zp) + 0.5f;  // exact
  k.recip = _mm256_set1_ps(1.0f / scale);
  k.magic = _mm256_set1_ps(magic);
  k.smin = _mm256_set1_ps(magic + static_cast<float>(tmin - zp));
  k.smax = _mm256_set1_ps(magic + static_cast<float>(tmax - zp));
  k.scale = _mm256_set1_ps(scale);
  k.lo = _mm256_set1_ps(static_cast<float>(tmin - zp));
  k.hi = _mm256_set1_ps(static_cast<float>(tmax - zp));
  k.zp = _mm256_set1_epi32(zp);
  k.always_divide = !(scale >= 0x1p-100f && scale <= 0x1p100f);
  return k;
}

// max_ps(v, lo) is v > lo ? v : lo (NaN gives lo), min_ps(v, hi) is v < hi ? v : hi: the
// scalar kernel's clamp.
__m256 clamp(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }

// The scalar steps, 8 lanes at a time (cvtps2dq rounds half to even).
template <class T>
void divide32(const float* x, const Consts& k, T* y) {
  __m256i q[4];
  for (int j = 0; j < 4; ++j) {
    const __m256 v = clamp(_mm256_div_ps(_mm256_loadu_ps(x + 8 * j), k.scale), k.lo, k.hi);
    q[j] = _mm256_add_epi32(_mm256_cvtps_epi32(v), k.zp);
  }
  // T's range is [lo + zp, hi + zp]: the packs never saturate. They interleave 128-bit lanes
  // (dwords a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 ...), which the permutation undoes.
  const __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
  const __m256i bytes = T(-1) < T(0) ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), _mm256_permutevar8x32_epi32(bytes, order));
}

template <class T>
void block32(const float* x, const Consts& k, T* y) {
  __m256i s[4];
  for (int j = 0; j < 4; ++j) {
    const __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * j), k.recip, k.magic);
    s[j] = _mm256_castps_si256(clamp(v, k.smin, k.smax));
  }
  // Shifted left by 2, each dword holds the fraction in its low 16 bits (zero: a tie; the
  // mask keeps those bytes' bits) and the output byte in byte 2.
  for (int j = 0; j < 4; ++j) s[j] = _mm256_slli_epi32(s[j], 2);
  const __m256i low = _mm256_min_epu16(_mm256_min_epu16(s[0], s[1]), _mm256_min_epu16(s[2], s[3]));
  const int zero_bytes = _mm256_movemask_epi8(_mm256_cmpeq_epi16(low, _mm256_setzero_si256()));
  if (k.always_divide || (zero_bytes & 0x33333333) != 0) return divide32(x, k, y);
  // Per 128-bit lane, s[j]'s four output bytes go to dword j; the permutation then joins lanes.
  __m256i bytes = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const char z = -1, a = 2, b = 6, c = 10, d = 14;
    const __m256i pick = _mm256_setr_epi8(
        j == 0 ? a : z, j == 0 ? b : z, j == 0 ? c : z, j == 0 ? d : z,
        j == 1 ? a : z, j == 1 ? b : z, j == 1 ? c : z, j == 1 ? d : z,
        j == 2 ? a : z, j == 2 ? b : z, j == 2 ? c : z, j == 2 ? d : z,
        j == 3 ? a : z, j == 3 ? b : z, j == 3 ? c : z, j == 3 ? d : z,
        j == 0 ? a : z, j == 0 ? b : z, j == 0 ? c : z, j == 0 ? d : z,
        j == 1 ? a : z, j == 1 ? b : z, j == 1 ? c : z, j == 1 ? d : z,
        j == 2 ? a : z, j == 2 ? b : z, j == 2 ? c : z, j == 2 ? d : z,
        j == 3 ? a : z, j == 3 ? b : z, j == 3 ? c : z, j == 3 ? d : z);
    bytes = _mm256_or_si256(bytes, _mm256_shuffle_epi8(s[j], pick));
  }
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), _mm256_permutevar8x32_epi32(bytes, order));
}

template <class T>
void vcvt(size_t n, const float* x, float scale, int32_t zp, T* y) {
  // No std::numeric_limits here: an inline function emitted from this -mavx2 file could be
  // the copy the linker keeps for the generic code.
  const Consts k = T(-1) < T(0) ? consts(scale, zp, -128, 127) : consts(scale, zp, 0, 255);
  for (; n >= 32; n -= 32, x += 32, y += 32) block32(x, k, y);
  if (n) {  // the tail through a zero-padded copy
    float in[32] = {};
    T out[32];
    std::memcpy(in, x, n * sizeof(float));
    block32(in, k, out);
    std::memcpy(y, out, n * sizeof(T));
  }
}

}  // namespace

const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x32__avx2 = {
    "f32_q8_vcvt_ukernel_x32__avx2", vcvt<uint8_t>, vcvt<int8_t>};

}  // namespace edgert
