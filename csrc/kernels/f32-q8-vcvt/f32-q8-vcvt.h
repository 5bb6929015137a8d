// f32-q8-vcvt: QuantizeLinear as onnxruntime's MLAS computes it (division, not multiplication
// by a reciprocal):
//     v = x / scale;  v = min(max(v, qmin - zp), qmax - zp)  (NaN becomes qmin - zp)
//     y = round_half_even(v) + zp
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// y[i] = quantize(x[i]) for i < n with one scale and zero point; T is uint8_t or int8_t.
template <class T>
void f32_q8_vcvt_ukernel__scalar(size_t n, const float* x, float scale, int32_t zp, T* y);

// The same contract for u8 and i8 outputs, as one table per ISA variant; every variant is
// bit-identical to the scalar kernel for every float (NaN, ±inf, subnormals) and scale > 0.
using F32Q8VCvtU8Fn = void (*)(size_t n, const float* x, float scale, int32_t zp, uint8_t* y);
using F32Q8VCvtI8Fn = void (*)(size_t n, const float* x, float scale, int32_t zp, int8_t* y);
struct F32Q8VCvtUKernel {
  const char* name;
  F32Q8VCvtU8Fn u8;
  F32Q8VCvtI8Fn i8;
};

extern const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x1__scalar;
// AVX2, 32 floats per step: x · (1/scale) rounded onto a 2^-14 grid, and the division itself
// for any 32 floats of which one lands on a half-integer of that grid (where the product may
// round differently from the quotient); never reads x or writes y past n.
extern const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x32__avx2;
// AVX-512 (avx512vnni and amx ISAs), 64 floats per step, the same scheme on 16 lanes.
extern const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x64__avx512vnni;
// AArch64, 16 floats per step, the same reciprocal-then-division-near-ties scheme as AVX2.
extern const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x16__neon;
const F32Q8VCvtUKernel& f32_q8_vcvt_ukernel();  // the variant for the active ISA

}  // namespace edgert
