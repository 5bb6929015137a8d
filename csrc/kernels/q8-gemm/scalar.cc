// Scalar q8-gemm: the reference every SIMD variant must match bit for bit.
#include <cstring>

#include "isa.h"
#include "kernels/q8-gemm/q8-gemm.h"
#include "kernels/q8-gemm/requant-scalar.h"

namespace edgert {

void q8_gemm_pack_w__scalar(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                            const int32_t* w_zp, size_t nr, int16_t* out) {
  const size_t kp = q8_gemm_kp(k);
  std::memset(out, 0, q8_gemm_packed_size(n, k, nr) * sizeof(int16_t));
  for (size_t i = 0; i < n; ++i) {
    int16_t* row = out + i * kp;
    if (w_is_u8) {
      const uint8_t* src = static_cast<const uint8_t*>(w) + i * ldw;
      for (size_t j = 0; j < k; ++j) row[j] = static_cast<int16_t>(src[j] - w_zp[i]);
    } else {
      const int8_t* src = static_cast<const int8_t*>(w) + i * ldw;
      for (size_t j = 0; j < k; ++j) row[j] = static_cast<int16_t>(src[j] - w_zp[i]);
    }
  }
}

namespace {

constexpr size_t MR = 2, NR = 4;

// The accumulators are a small fixed array so the compiler keeps them in registers and
// vectorizes the k loop into MR·NR dot products (kp is a multiple of 8, padding is zero).
template <class Out>
void gemm_2x4(size_t mr, size_t nc, size_t kp, const int16_t* a, size_t a_stride,
              const int16_t* w, const int32_t* bias, const float* scale, void* c_out,
              size_t c_stride, const Q8Requant& rq) {
  Out* c = static_cast<Out*>(c_out);
  const int16_t* ar[MR];
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : 0) * a_stride;  // short tile: reuse row 0
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int16_t* wr[NR];
    for (size_t j = 0; j < NR; ++j) wr[j] = w + (n0 + j) * kp;
    int32_t acc[MR][NR] = {};
    for (size_t k = 0; k < kp; ++k) {
      for (size_t i = 0; i < MR; ++i)
        for (size_t j = 0; j < NR; ++j) acc[i][j] += int32_t{ar[i][k]} * int32_t{wr[j][k]};
    }
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    for (size_t i = 0; i < mr; ++i) {
      Out* crow = c + i * c_stride + n0;
      for (size_t j = 0; j < nj; ++j)
        crow[j] = q8_output<Out>(q8_add_wrap(acc[i][j], bias[n0 + j]), scale[n0 + j], rq);
    }
  }
}

}  // namespace

const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_2x4__scalar = {
    "q8_gemm_minmax_fp32_ukernel_2x4__scalar", MR, NR, q8_gemm_pack_w__scalar,
    gemm_2x4<uint8_t>, gemm_2x4<int8_t>, gemm_2x4<float>};

const Q8GemmUKernel& q8_gemm_ukernel() {
#if defined(__aarch64__)
  if (active_isa() == Isa::neon) return q8_gemm_minmax_fp32_ukernel_4x4__neon;
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx2()) return q8_gemm_minmax_fp32_ukernel_2x4__avx2;
#endif
  return q8_gemm_minmax_fp32_ukernel_2x4__scalar;
}

}  // namespace edgert
