// q8-gemm: int8/uint8 C = requant(A·(W − w_zp)ᵀ + bias), exact int32 accumulation.
//
// Operands. A is int16: rows of quantized activations (u8 or i8) widened by the caller (see
// q8-im2col), K padded with zeros to kp = round_up(K, kQ8GemmKR). W is packed once per layer by
// q8_gemm_pack_w: int16 [round_up(N, nr)][kp], row n = W[n][k] − w_zp[n] (in [−255, 255] for u8
// or i8 weights, so int16 is exact), zeros in padded rows and in columns k >= K. Products fit in
// int32 and |Σ| <= K·255·255, so K <= kQ8GemmMaxK keeps the sum exact; bias is then added with
// two's-complement wraparound (as onnxruntime's int32 accumulator would).
//
// Output stage (the op catalog's requantization, bit-exact with onnxruntime's MLAS):
//   u8/i8:  v = clamp(float(acc)·scale[n], lo, hi);  y = round_half_even(v) + y_zp
//   f32:    y = float(acc)·scale[n]
// Any tile or thread split gives identical results: each element is one exact integer sum.
//
// A new ISA variant (avx2.cc, neon.cc) adds a Q8GemmUKernel with its own tile and, if it wants
// another layout, its own pack function; ops only go through the table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

constexpr size_t kQ8GemmKR = 8;         // K padding of A rows and packed W rows
constexpr size_t kQ8GemmMaxK = 32768;   // 32768·255·255 < 2^31: the int32 sum cannot overflow

// Requantization parameters shared by every output column (the per-column scale is separate).
struct Q8Requant {
  float lo, hi;   // qmin − y_zp, qmax − y_zp
  int32_t y_zp;
  // false when the layer proves |float(acc)·scale| < 2^31 for every accumulator it can produce
  // (q8_requant_needs_guard): a kernel that rounds before it clamps (cvtps2dq, whose overflow is
  // 0x80000000) may then skip its clamp of huge products. Kernels that clamp first ignore it.
  bool guard = true;
};

// Whether a layer's products can reach 2^31: each accumulator is bias[n] + Σ_k (x − x_zp)·w'
// exactly, with |x − x_zp| <= 255 and |w'| <= 255, so |acc| <= |bias[n]| + 65025·k; the float
// conversion and multiply each round by at most 2^-24 relatively.
inline bool q8_requant_needs_guard(size_t m, size_t k, const int32_t* bias, const float* scale) {
  for (size_t n = 0; n < m; ++n) {
    const double b = bias[n] < 0 ? -double(bias[n]) : double(bias[n]);
    const double s = scale[n] < 0 ? -double(scale[n]) : double(scale[n]);
    if (!((b + 65025.0 * double(k)) * s * (1.0 + 1.0 / (1 << 20)) < 2147483520.0)) return true;
  }
  return false;
}

// C[i][n] for i < mr (<= MR), n < nc: A rows a_stride int16 apart, w points at packed row 0 of
// this column range (nc columns, so round_up(nc, NR) packed rows may be read), bias/scale at
// element 0 of it, C rows c_stride elements apart. Reads no A row at or past mr.
using Q8GemmFn = void (*)(size_t mr, size_t nc, size_t kp, const int16_t* a, size_t a_stride,
                          const int16_t* w, const int32_t* bias, const float* scale, void* c,
                          size_t c_stride, const Q8Requant& rq);

// Writes the packed form of W [n][k] (u8 if w_is_u8 else i8, row stride ldw) to out, which holds
// q8_gemm_packed_size(n, k, nr) int16.
using Q8GemmPackFn = void (*)(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                              const int32_t* w_zp, size_t nr, int16_t* out);

struct Q8GemmUKernel {
  const char* name;
  size_t mr, nr;
  Q8GemmPackFn pack;
  Q8GemmFn out_u8, out_i8, out_f32;
};

inline size_t q8_gemm_kp(size_t k) { return (k + kQ8GemmKR - 1) / kQ8GemmKR * kQ8GemmKR; }
inline size_t q8_gemm_packed_size(size_t n, size_t k, size_t nr) {
  return (n + nr - 1) / nr * nr * q8_gemm_kp(k);
}

void q8_gemm_pack_w__scalar(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                            const int32_t* w_zp, size_t nr, int16_t* out);

// 2 rows x 4 columns of int32 accumulators, K innermost: -O3 turns it into pmaddwd dot products.
extern const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_2x4__scalar;

// AArch64: 4x4 tile, SMLAL on the int16 operands (exact for every layer).
extern const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_4x4__neon;

// x86-64 AVX2: 2x4 tile, vpmaddwd along K on the same packing (byte-form layers use q8-gemm-x8).
extern const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_2x4__avx2;

// The variant for the active ISA (scalar until SIMD variants land).
const Q8GemmUKernel& q8_gemm_ukernel();
}  // namespace edgert
