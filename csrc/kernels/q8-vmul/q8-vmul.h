// q8-vmul: QLinearMul arithmetic of onnxruntime's x86 MLAS kernel, bit for bit.
//
//     scale = (a_scale * b_scale) / y_scale                       (fp32, left to right)
//     v     = float((a - a_zp) * (b - b_zp)) * scale + float(y_zp)  (exact int product; the
//                                                                  zero point is added in fp32
//                                                                  before rounding)
//     y     = saturate(round_half_even(v))
// Broadcasting does not change the arithmetic. Like q8-vadd the op is tabulated at creation and
// run with x8_lut / x8_lut2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

struct Q8MulParams {
  float scale;       // (a_scale * b_scale) / y_scale
  float y_zp;        // float(y_zp)
  int32_t a_zp, b_zp;
  int32_t qmin, qmax;
};

Q8MulParams q8_vmul_params(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                           float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax);

// Output value for operand values a, b (integers, not bytes).
int32_t q8_vmul_fp32(int32_t a, int32_t b, const Q8MulParams& p);

// table[r * 256 + c] = output byte for operand bytes r and c; the row byte is a when row_is_a.
void q8_vmul_fp32_table(const Q8MulParams& p, bool a_signed, bool b_signed, bool row_is_a,
                        uint8_t* table);

// Direct form (no table): y[i] = low byte of q8_vmul_fp32(a[i], b_i) for i < n, where b_i is
// b[i], or b[0] for every i when b_scalar. Bit-identical to the table.
using Q8VmulDirectFn = void (*)(size_t n, const uint8_t* a, const uint8_t* b, bool b_scalar,
                                bool a_signed, bool b_signed, const Q8MulParams& p, uint8_t* y);
void q8_vmul_direct__avx2(size_t n, const uint8_t* a, const uint8_t* b, bool b_scalar,
                          bool a_signed, bool b_signed, const Q8MulParams& p, uint8_t* y);
// AVX-512 (avx512vnni and amx ISAs): 16 lanes a vector, 64 bytes a step, masked tails.
void q8_vmul_direct__avx512vnni(size_t n, const uint8_t* a, const uint8_t* b, bool b_scalar,
                                bool a_signed, bool b_signed, const Q8MulParams& p, uint8_t* y);
// The direct kernel of the active ISA, or nullptr when the table (scalar) is the faster form.
Q8VmulDirectFn q8_vmul_direct();

}  // namespace edgert
