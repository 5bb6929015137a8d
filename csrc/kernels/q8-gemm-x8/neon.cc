// NEON dot-product q8-gemm-x8 for AArch64 (Armv8.2 SDOT; selected only when hwcaps report it):
// 4x16 tile over the shared [k/4][16][4] packing. Both forms multiply the same signed operand
// s = x (i8 input) or x ^ 0x80 (u8 input) by w' with SDOT, every product and sum exact in int32
// for any w' in [−128, 127] (|s|, |w'| <= 128, K <= kQ8GemmMaxK): exact_pairs, so the engine
// never needs the pair test's other forms. pair_u8's sum is over the operand u = s + 128: it
// adds 128·Σw' (one SDOT of w' with ones per quad, once per column block); sign_s8's, over
// u with 128·Σw' subtracted, is Σ s·w' as it is. Both read raw rows (below k only, the last
// < 16 bytes through a copy). Packed W is read for round_up(nc, 16) columns, bias/scale
// padded by the caller.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-gemm-x8/q8-gemm-x8.h"

#define EDGERT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))

namespace edgert {
namespace {

constexpr size_t MR = 4, NR = 16;

// Four column vectors of one row: requantize and store nj (<= 16) values. Byte outputs are
// narrowed by two saturating steps into one vector and stored with one instruction (the
// values are clamped to [qmin, qmax] already, so the narrowing is exact).
template <class Out>
inline void store_row(const int32x4_t acc[4], const int32_t* bias, const float* scale, size_t nj,
                      Out* c, const Q8Requant& rq) {
  Out tmp[NR];
  Out* dst = nj == NR ? c : tmp;
  float32x4_t f[4];
  for (int v = 0; v < 4; ++v)
    f[v] = vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc[v], vld1q_s32(bias + 4 * v))),
                     vld1q_f32(scale + 4 * v));
  if constexpr (std::is_same_v<Out, float>) {
    for (int v = 0; v < 4; ++v) vst1q_f32(dst + 4 * v, f[v]);
  } else {
    int16x4_t h[4];
    for (int v = 0; v < 4; ++v) {
      const float32x4_t cl = vminq_f32(vmaxq_f32(f[v], vdupq_n_f32(rq.lo)), vdupq_n_f32(rq.hi));
      h[v] = vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(cl), vdupq_n_s32(rq.y_zp)));
    }
    const int16x8_t lo = vcombine_s16(h[0], h[1]), hi = vcombine_s16(h[2], h[3]);
    if constexpr (std::is_same_v<Out, uint8_t>)
      vst1q_u8(dst, vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi)));
    else
      vst1q_s8(dst, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
  }
  if (dst == tmp) std::memcpy(c, tmp, nj * sizeof(Out));
}

template <class In>
EDGERT_DOT inline int8x16_t operand(uint8x16_t bytes) {
  return vreinterpretq_s8_u8(std::is_same_v<In, uint8_t> ? veorq_u8(bytes, vdupq_n_u8(0x80))
                                                          : bytes);
}

// acc[r][v] += Σ_q (quad q of row r)·(quad q of columns 4v..4v+3), for quads q < nq of x.
#define EDGERT_QUAD(q)                                                                    \
  if (nq > q) {                                                                           \
    const int8x16_t w0 = vld1q_s8(wq + q * 64), w1 = vld1q_s8(wq + q * 64 + 16);          \
    const int8x16_t w2 = vld1q_s8(wq + q * 64 + 32), w3 = vld1q_s8(wq + q * 64 + 48);     \
    for (size_t r = 0; r < R; ++r) {                                                      \
      acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, x[r], q);                                \
      acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, x[r], q);                                \
      acc[r][2] = vdotq_laneq_s32(acc[r][2], w2, x[r], q);                                \
      acc[r][3] = vdotq_laneq_s32(acc[r][3], w3, x[r], q);                                \
    }                                                                                     \
  }

// R rows (1..4) of one 16-column block whose packed weights start at wb; corr (pair_u8: the
// block's 128·Σw', for the operand s + 128) is added to every row. A short tile computes only
// its rows.
template <size_t R, bool Corr, class In, class Out>
EDGERT_DOT void block_rows(size_t nj, size_t k, const uint8_t* const* ar, const int8_t* wb,
                           const int32x4_t* corr, const int32_t* bias, size_t bias_stride,
                           const int32_t* row_off, const float* scale, Out* c, size_t c_stride,
                           const Q8Requant& rq) {
  const size_t kq = (k + 3) / 4;
  int32x4_t acc[R][4];
  for (size_t v = 0; v < 4; ++v)
    for (size_t r = 0; r < R; ++r) acc[r][v] = Corr ? corr[v] : vdupq_n_s32(0);
  size_t k0 = 0;
  for (; k0 + 16 <= k; k0 += 16) {
    int8x16_t x[R];
    for (size_t r = 0; r < R; ++r) x[r] = operand<In>(vld1q_u8(ar[r] + k0));
    const int8_t* wq = wb + k0 / 4 * NR * 4;
    const size_t nq = 4;
    EDGERT_QUAD(0) EDGERT_QUAD(1) EDGERT_QUAD(2) EDGERT_QUAD(3)
  }
  if (k0 < k) {  // the last 1..15 bytes: a zero-padded copy, only the quads W has
    int8x16_t x[R];
    const size_t nq = kq - k0 / 4;
    for (size_t r = 0; r < R; ++r) {
      alignas(16) uint8_t buf[16] = {};
      std::memcpy(buf, ar[r] + k0, k - k0);
      x[r] = operand<In>(vld1q_u8(buf));  // padding bytes meet zero weights
    }
    const int8_t* wq = wb + k0 / 4 * NR * 4;
    EDGERT_QUAD(0) EDGERT_QUAD(1) EDGERT_QUAD(2) EDGERT_QUAD(3)
  }
  for (size_t r = 0; r < R; ++r) {
    if (row_off)
      for (size_t v = 0; v < 4; ++v) acc[r][v] = vaddq_s32(acc[r][v], vdupq_n_s32(row_off[r]));
    store_row<Out>(acc[r], bias + r * bias_stride, scale, nj, c + r * c_stride, rq);
  }
}
#undef EDGERT_QUAD

// Both entry points: row_off nullptr, or each row's offset to its accumulators. Columns outer,
// rows inner: a block's weights stay in L1 for all the call's rows, and pair_u8's 128·Σw' (one
// SDOT of w' with ones per quad and column vector) is counted once per block, not per 4 rows.
template <bool Corr, class In, class Out>
EDGERT_DOT void gemm_impl(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                          const int32_t* bias, size_t bias_stride, const int32_t* row_off,
                          const float* scale, void* c_out, size_t c_stride,
                          const Q8Requant& rq) {
  const size_t kq = (k + 3) / 4;
  const int8x16_t ones = vdupq_n_s8(1);
  const uint8_t* const* ar = reinterpret_cast<const uint8_t* const*>(a);
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int8_t* wb = w + n0 * kq * 4;
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    int32x4_t corr[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    if (Corr) {  // operand + 128: add 128·Σw' (wraps like the int32 sum it completes)
      for (size_t q = 0; q < kq; ++q)
        for (size_t v = 0; v < 4; ++v)
          corr[v] = vdotq_s32(corr[v], vld1q_s8(wb + q * 64 + 16 * v), ones);
      for (size_t v = 0; v < 4; ++v) corr[v] = vshlq_n_s32(corr[v], 7);
    }
    for (size_t r = 0; r < mr; r += MR) {
      const int32_t* ro = row_off ? row_off + r : nullptr;
      Out* cr = static_cast<Out*>(c_out) + r * c_stride + n0;
      const int32_t* br = bias + r * bias_stride + n0;
      switch (mr - r) {
#define EDGERT_ROWS(R)                                                                     \
  block_rows<R, Corr, In, Out>(nj, k, ar + r, wb, corr, br, bias_stride, ro, scale + n0, cr, \
                               c_stride, rq)
        case 1: EDGERT_ROWS(1); break;
        case 2: EDGERT_ROWS(2); break;
        case 3: EDGERT_ROWS(3); break;
        default: EDGERT_ROWS(4);
#undef EDGERT_ROWS
      }
    }
  }
}

// fn[form][input][output]: Corr for pair_u8, not for sign_s8.
template <bool Corr, class In, class Out>
EDGERT_DOT void gemm_4x16(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                          const int32_t* bias, size_t bias_stride, const float* scale,
                          void* c_out, size_t c_stride, const Q8Requant& rq) {
  gemm_impl<Corr, In, Out>(mr, nc, k, a, w, bias, bias_stride, nullptr, scale, c_out, c_stride,
                           rq);
}

// pair_u8 with one offset a row (Q8GemmX8RowOffFn).
template <class In, class Out>
EDGERT_DOT void gemm_4x16_off(size_t mr, size_t nc, size_t k, const void* const* a,
                              const int8_t* w, const int32_t* bias, const int32_t* row_off,
                              const float* scale, void* c_out, size_t c_stride,
                              const Q8Requant& rq) {
  gemm_impl<true, In, Out>(mr, nc, k, a, w, bias, 0, row_off, scale, c_out, c_stride, rq);
}

}  // namespace

#define EDGERT_X8_ROW(P, In) \
  {gemm_4x16<P, In, uint8_t>, gemm_4x16<P, In, int8_t>, gemm_4x16<P, In, float>}
const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_4x16c4__neondot = {
    "q8_gemm_x8_minmax_fp32_ukernel_4x16c4__neondot", MR, NR,
    {{EDGERT_X8_ROW(true, uint8_t), EDGERT_X8_ROW(true, int8_t)},
     {EDGERT_X8_ROW(false, uint8_t), EDGERT_X8_ROW(false, int8_t)}},
    nullptr, nullptr, true, {}, nullptr, nullptr, nullptr, 24 << 10, false,
    {{gemm_4x16_off<uint8_t, uint8_t>, gemm_4x16_off<uint8_t, int8_t>,
      gemm_4x16_off<uint8_t, float>},
     {gemm_4x16_off<int8_t, uint8_t>, gemm_4x16_off<int8_t, int8_t>,
      gemm_4x16_off<int8_t, float>}}};
#undef EDGERT_X8_ROW

}  // namespace edgert
#endif  // __aarch64__
