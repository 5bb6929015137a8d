// NEON q8-gemm for AArch64: 4x4 tile over the shared int16 packing (q8_gemm_pack_w__scalar).
// SMLAL widens int16·int16 into int32 lanes, so every product and partial sum is exact (each
// lane holds a sub-sum of one output's terms, bounded like the whole sum); the output stage
// is the scalar one in vector form: float convert, multiply (no FMA), clamp, FCVTNS (round half
// to even, as nearbyintf), + y_zp. Reads round_up(nc, 4) packed rows, never A rows >= mr, and
// bias/scale only below nc.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {
namespace {

constexpr size_t MR = 4, NR = 4;

// Four columns of one row: y = requant(acc + bias), written as Out; nj <= 4 values stored.
template <class Out>
inline void store_row(int32x4_t acc, const int32_t* bias, const float* scale, size_t nj, Out* c,
                      const Q8Requant& rq) {
  int32_t b[NR] = {};
  float s[NR] = {};
  if (nj < NR) {  // a short tile reads its bias and scale through a copy, never past nc
    for (size_t j = 0; j < nj; ++j) b[j] = bias[j], s[j] = scale[j];
    bias = b, scale = s;
  }
  // Integer add wraps like the scalar q8_add_wrap.
  const float32x4_t v =
      vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc, vld1q_s32(bias))), vld1q_f32(scale));
  if constexpr (sizeof(Out) == 4) {
    float out[NR];
    vst1q_f32(out, v);
    for (size_t j = 0; j < nj; ++j) c[j] = out[j];
  } else {
    const float32x4_t cl = vminq_f32(vmaxq_f32(v, vdupq_n_f32(rq.lo)), vdupq_n_f32(rq.hi));
    const int32x4_t q = vaddq_s32(vcvtnq_s32_f32(cl), vdupq_n_s32(rq.y_zp));
    int32_t out[NR];
    vst1q_s32(out, q);
    for (size_t j = 0; j < nj; ++j) c[j] = static_cast<Out>(out[j]);
  }
}

template <class Out>
void gemm_4x4(size_t mr, size_t nc, size_t kp, const int16_t* a, size_t a_stride,
              const int16_t* w, const int32_t* bias, const float* scale, void* c_out,
              size_t c_stride, const Q8Requant& rq) {
  Out* c = static_cast<Out*>(c_out);
  const int16_t* a0 = a;
  const int16_t* a1 = mr > 1 ? a + a_stride : a0;  // short tile: recompute row 0, store less
  const int16_t* a2 = mr > 2 ? a + 2 * a_stride : a0;
  const int16_t* a3 = mr > 3 ? a + 3 * a_stride : a0;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int16_t* w0 = w + n0 * kp;
    int32x4_t acc[MR][NR];
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) acc[i][j] = vdupq_n_s32(0);
    for (size_t k = 0; k < kp; k += 8) {
      const int16x8_t x[MR] = {vld1q_s16(a0 + k), vld1q_s16(a1 + k), vld1q_s16(a2 + k),
                               vld1q_s16(a3 + k)};
      const int16x8_t y[NR] = {vld1q_s16(w0 + k), vld1q_s16(w0 + kp + k),
                               vld1q_s16(w0 + 2 * kp + k), vld1q_s16(w0 + 3 * kp + k)};
      for (size_t i = 0; i < MR; ++i)
        for (size_t j = 0; j < NR; ++j) {
          acc[i][j] = vmlal_s16(acc[i][j], vget_low_s16(x[i]), vget_low_s16(y[j]));
          acc[i][j] = vmlal_high_s16(acc[i][j], x[i], y[j]);
        }
    }
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    for (size_t i = 0; i < mr; ++i) {
      // Pairwise adds fold the 4 lanes of each column into one lane per column.
      const int32x4_t s = vpaddq_s32(vpaddq_s32(acc[i][0], acc[i][1]),
                                     vpaddq_s32(acc[i][2], acc[i][3]));
      store_row<Out>(s, bias + n0, scale + n0, nj, c + i * c_stride + n0, rq);
    }
  }
}

}  // namespace

const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_4x4__neon = {
    "q8_gemm_minmax_fp32_ukernel_4x4__neon", MR, NR, q8_gemm_pack_w__scalar,
    gemm_4x4<uint8_t>, gemm_4x4<int8_t>, gemm_4x4<float>};

}  // namespace edgert
#endif  // __aarch64__
