// q8-avgpool: onnxruntime's QLinearAveragePool / QLinearGlobalAveragePool arithmetic on NHWC
// data, bit for bit. Two different formulas, as in onnxruntime:
//
// Global (the window is the whole image and there is no padding; onnxruntime routes such an
// AveragePool to its global kernel too): exact int32 sum, one fp32 requantization
//     acc = sum(x) - x_zp * pixels;  scale = x_scale / (y_scale * float(pixels))
//     v = clamp(float(acc) * scale, qmin - y_zp, qmax - y_zp);  y = round_half_even(v) + y_zp
//
// Windowed: every input is dequantized to fp32 (x_scale * float(x - x_zp)), summed in fp32 in
// window order (rows, then columns, from 0.0f), divided by float(divisor), then
//     y = clamp(round_half_even(sum / divisor / y_scale + float(y_zp)), qmin, qmax)
// (the zero point is added in fp32 before rounding here, unlike the global formula).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

struct Q8GAvgPoolParams {
  int32_t bias;   // -x_zp * pixels
  float scale;    // x_scale / (y_scale * float(pixels))
  float vmin, vmax;  // qmin - y_zp, qmax - y_zp
  int32_t y_zp;
};
Q8GAvgPoolParams q8_gavgpool_params(size_t pixels, float x_scale, int32_t x_zp, float y_scale,
                                    int32_t y_zp, int32_t qmin, int32_t qmax);

// One image, some channels: pixel i's channels are x[i * pixel_stride + c] for c < channels;
// y gets `channels` values; acc is scratch for `channels` int32. pixels must be < 2^23 so the
// int32 sum cannot overflow.
template <class T>
void q8_gavgpool_ukernel__scalar(size_t pixels, size_t channels, size_t pixel_stride,
                                 const T* x, int32_t* acc, const Q8GAvgPoolParams& p, T* y);

struct Q8AvgPoolParams {
  float dq[256];  // dequantized value of each input byte: x_scale * float(x - x_zp)
  float x_scale;  // SIMD kernels compute dq instead of looking it up: the same one rounding
  int32_t x_zp;
  float y_scale, y_zp;
  int32_t qmin, qmax;
};
void q8_avgpool_params(float x_scale, int32_t x_zp, bool x_signed, float y_scale, int32_t y_zp,
                       int32_t qmin, int32_t qmax, Q8AvgPoolParams* p);

// One output pixel: a window of rows x cols input pixels starting at x, rows row_stride
// elements apart, pixels `channels` apart; y gets `channels` values; acc is fp32 scratch.
template <class T>
void q8_avgpool_f32acc_ukernel__scalar(size_t rows, size_t cols, size_t row_stride,
                                       size_t channels, const T* x, float divisor,
                                       const Q8AvgPoolParams& p, float* acc, T* y);
// AVX2: 8 channels per vector, each channel summed in the same order: bit-identical.
template <class T>
void q8_avgpool_f32acc_ukernel__avx2(size_t rows, size_t cols, size_t row_stride,
                                     size_t channels, const T* x, float divisor,
                                     const Q8AvgPoolParams& p, float* acc, T* y);

// AVX2 global kernel: 32 channels a step summed in int32 registers, the same requantization
// (cvtps2dq rounds half to even as the scalar kernel does): bit-identical.
template <class T>
void q8_gavgpool_ukernel__avx2(size_t pixels, size_t channels, size_t pixel_stride,
                               const T* x, int32_t* acc, const Q8GAvgPoolParams& p, T* y);

template <class T>
using Q8AvgPoolF32AccFn = void (*)(size_t rows, size_t cols, size_t row_stride, size_t channels,
                                   const T* x, float divisor, const Q8AvgPoolParams& p,
                                   float* acc, T* y);
template <class T>
using Q8GAvgPoolFn = void (*)(size_t pixels, size_t channels, size_t pixel_stride, const T* x,
                              int32_t* acc, const Q8GAvgPoolParams& p, T* y);

// One ISA's kernels (the kernel test driver checks each against the scalar one).
struct Q8AvgPoolUKernel {
  const char* name;
  Q8GAvgPoolFn<uint8_t> global_u8;
  Q8GAvgPoolFn<int8_t> global_i8;
  Q8AvgPoolF32AccFn<uint8_t> window_u8;
  Q8AvgPoolF32AccFn<int8_t> window_i8;
};
extern const Q8AvgPoolUKernel q8_avgpool_ukernel__scalar;
extern const Q8AvgPoolUKernel q8_avgpool_ukernel__avx2;
const Q8AvgPoolUKernel& q8_avgpool_ukernel();  // the active ISA's

// The windowed kernel of the active ISA.
template <class T>
Q8AvgPoolF32AccFn<T> q8_avgpool_f32acc_ukernel();

}  // namespace edgert
