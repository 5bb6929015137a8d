// f32-gemm: fp32 C = clamp(A·W + bias) on weights packed into NR-column panels.
//
// Packed layout of a [N,K] operand: ceil(N/NR) panels; panel p holds NR bias values, then K rows
// of NR weights (row k, lane j = W[p*NR + j][k]); lanes past N are zero. Every output element is
// summed over k in increasing order starting from 0, then the bias is added, then the clamp, so a
// result never depends on which tile or thread computed it.
#pragma once

#include <cstddef>

namespace edgert {

constexpr size_t kF32GemmMR = 4;
constexpr size_t kF32GemmNR = 16;

// Number of floats f32_gemm_pack_* writes for an [N,K] operand.
size_t f32_gemm_packed_size(size_t n, size_t k);

// W is [N,K] row-major (Gemm weights, conv weights [M, KH*KW*C/group]); bias may be null (zeros).
void f32_gemm_pack_nk(size_t n, size_t k, const float* w, size_t ldw, const float* bias,
                      float* packed);
// B is [K,N] with row stride ldb (MatMul right operand); bias is zero.
void f32_gemm_pack_kn(size_t n, size_t k, const float* b, size_t ldb, float* packed);

// One tile over one block of k: acc = (accumulate ? C : 0) + A[mr x kc]·w[kc x NR], k in order;
// then C = bias ? clamp(acc + bias, lo, hi) : acc. mr <= MR, nc <= NR; A rows lda apart, C rows
// ldc apart. Storing the fp32 partial and reloading it is exact, so splitting k into blocks
// gives the same bits as one pass.
void f32_gemm_minmax_ukernel_4x16__scalar(size_t mr, size_t nc, size_t kc, const float* a,
                                          size_t lda, const float* w, float* c, size_t ldc,
                                          bool accumulate, const float* bias, float lo,
                                          float hi);

// Rows [m0, m1) and panels [p0, p1) of C[M,N] = clamp(A·W + bias): tiles the ukernel, blocking M
// and K so a block of A stays in L2 and a block of a panel in L1.
void f32_gemm_minmax_rows(size_t m0, size_t m1, size_t p0, size_t p1, size_t n, size_t k,
                          const float* a, size_t lda, const float* packed, float* c, size_t ldc,
                          float lo, float hi);

}  // namespace edgert
