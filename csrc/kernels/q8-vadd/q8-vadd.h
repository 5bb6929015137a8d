// q8-vadd: QLinearAdd arithmetic of onnxruntime's x86 AVX2 MLAS kernel, bit for bit.
//
// onnxruntime calls its kernel with a "first" operand x that varies along the run and a second
// operand s (varying too, or a broadcast scalar): x is A, except when A is the broadcast scalar,
// then x is B. With rx = x_scale / y_scale and rs = s_scale / y_scale (fp32 divisions):
//     fixed = float(y_zp) - fma(rx, float(x_zp), rs * float(s_zp))   (its compiler contracts)
//     v     = fma(x, rx, fma(s, rs, fixed))
//     y     = saturate(round_half_even(v))
// The result depends only on the two 8-bit operands, so edgert tabulates the op at creation
// (65536 bytes) and runs it with x8_lut / x8_lut2; this header is the arithmetic of the table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

struct Q8AddParams {
  float rx, rs;   // x_scale / y_scale, s_scale / y_scale
  float fixed;    // y_zp - fma(rx, x_zp, rs * s_zp)
  int32_t qmin, qmax;
};

Q8AddParams q8_vadd_params(float x_scale, int32_t x_zp, float s_scale, int32_t s_zp,
                           float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax);

// Output value for operand values x, s (integers, not bytes).
int32_t q8_vadd_fp32(int32_t x, int32_t s, const Q8AddParams& p);

// table[r * 256 + c] = output byte (low byte of the value) for operand bytes r and c; the row
// byte r is x when row_is_x, else s. Bytes are read as int8 when the operand is signed.
void q8_vadd_fp32_table(const Q8AddParams& p, bool x_signed, bool s_signed, bool row_is_x,
                        uint8_t* table);

// Direct form (no table): y[i] = low byte of q8_vadd_fp32(x[i], s_i) for i < n, where s_i is
// s[i], or s[0] for every i when s_scalar. Bytes are int8 when the operand's flag says signed.
// Bit-identical to the table, so a SIMD ISA may run the op without building it.
using Q8VaddDirectFn = void (*)(size_t n, const uint8_t* x, const uint8_t* s, bool s_scalar,
                                bool x_signed, bool s_signed, const Q8AddParams& p, uint8_t* y);
void q8_vadd_direct__avx2(size_t n, const uint8_t* x, const uint8_t* s, bool s_scalar,
                          bool x_signed, bool s_signed, const Q8AddParams& p, uint8_t* y);
void q8_vadd_direct__avx512vnni(size_t n, const uint8_t* x, const uint8_t* s, bool s_scalar,
                                bool x_signed, bool s_signed, const Q8AddParams& p, uint8_t* y);
// The direct kernel of the active ISA, or nullptr when the table (scalar) is the faster form.
Q8VaddDirectFn q8_vadd_direct();

}  // namespace edgert
