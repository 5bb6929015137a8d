// q8-dwconv: depthwise conv (group == C == M) on NHWC u8/i8, one output pixel per call,
// exact int32 accumulation and the q8-gemm output stage (see q8-gemm.h for the formulas).
//
// The caller passes one input pointer per tap (indirection): the tap's input pixel, or a row of
// `channels` copies of x_zp where the tap falls in the padding. Packed weights: int16
// [taps][channels], w[t][c] = W[c][kh][kw] − w_zp[c] with t = kh·KW + kw. taps·255·255 < 2^31 is
// the caller's to guarantee (taps <= kQ8GemmMaxK).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {

// y[c] = out(Σ_t in[t][c]·w[t][c] + bias[c], scale[c]) for c < channels.
using Q8DwConvFn = void (*)(size_t channels, size_t taps, const void* const* in,
                            const int16_t* w, const int32_t* bias, const float* scale, void* y,
                            const Q8Requant& rq);

// Whether every w' = W − w_zp of W [channels][taps] lies in int8 (the byte-form kernels').
bool q8_dwconv_fits_i8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                       const int32_t* w_zp);

// Writes int16 [taps][channels] from W [channels][taps] (u8 if w_is_u8 else i8).
void q8_dwconv_pack_w(size_t channels, size_t taps, const void* w, bool w_is_u8,
                      const int32_t* w_zp, int16_t* out);

// A variant's own packing (same contract as q8_dwconv_pack_w, its own layout); out holds
// q8_dwconv_packed_size(channels, taps) int16, enough for every variant.
using Q8DwConvPackFn = void (*)(size_t channels, size_t taps, const void* w, bool w_is_u8,
                                const int32_t* w_zp, int16_t* out);
inline size_t q8_dwconv_packed_size(size_t channels, size_t taps) {
  return (taps + 1) / 2 * 2 * ((channels + 15) / 16 * 16);
}

// 3x3 (dilation 1) over npix output pixels of one output row whose taps all lie inside the
// image, the same sums and output stage as Q8DwConvFn: rows[ky] points at the input pixel of
// output 0's tap (ky, 0), the taps of output p are stride·p pixels (of `channels` bytes) further;
// y[p·y_stride + c]. Stepping along the row, each input column is widened once for the 3 (stride
// 1) outputs that read it. channels a multiple of 16; weights packed by the variant's pack3x3.
using Q8DwConvRowFn = void (*)(size_t channels, size_t npix, const uint8_t* const* rows,
                               const int16_t* w, const int32_t* bias, const float* scale,
                               void* y, size_t y_stride, const Q8Requant& rq);

// The optional byte-form per-pixel kernel's packing (Q8DwConvUKernel::pack_b8): the weights in
// the variant's own layout together with each channel's starting sum (bias, less 128·Σw' when
// x_is_i8: such kernels flip i8 inputs to x + 128) and scale, so the kernel ignores its bias and
// scale arguments. Writes q8_dwconv_packed_size_b8(channels, taps) bytes; false (the output
// unspecified) when a w' = W − w_zp does not fit int8.
using Q8DwConvPackB8Fn = bool (*)(size_t channels, size_t taps, const void* w, bool w_is_u8,
                                  const int32_t* w_zp, const int32_t* bias, const float* scale,
                                  bool x_is_i8, int8_t* out);
// Bytes of pack_b8's output: per 64-channel block, 4 · 64 bytes for each group of 4 taps and
// 64 sums and 64 scales.
inline size_t q8_dwconv_packed_size_b8(size_t channels, size_t taps) {
  return (channels + 63) / 64 * ((taps + 3) / 4 * 256 + 512);
}
// Bytes of a 5x5 byte-form row packing (pack5x5b8): per 64-channel block, 5 + 3 sets of 4 · 64
// bytes and 64 starting sums and scales.
inline size_t q8_dwconv_packed_size_5x5b8(size_t channels) { return (channels + 63) / 64 * 2560; }

struct Q8DwConvUKernel {
  const char* name;
  Q8DwConvFn fn[2][3];  // [input u8, i8][output u8, i8, f32]
  Q8DwConvPackFn pack = nullptr;  // nullptr: q8_dwconv_pack_w
  // Optional row kernels (nullptr: the engine calls fn per pixel): [stride 1, 2][in][out].
  Q8DwConvRowFn row3x3[2][2][3] = {};
  Q8DwConvPackFn pack3x3 = nullptr;  // writes q8_dwconv_packed_size_3x3(channels) int16
  // Optional byte-form row kernels (u8/i8 out; nullptr: none), for weights whose w' all fit in
  // int8: packed by pack3x3b8 (which returns false, its output unspecified, when one does not),
  // the same size as pack3x3's. [stride 1, 2][in u8, i8][out u8, i8].
  Q8DwConvRowFn row3x3b8[2][2][2] = {};
  bool (*pack3x3b8)(size_t channels, size_t taps, const void* w, bool w_is_u8,
                    const int32_t* w_zp, int16_t* out) = nullptr;
  // Optional byte-form per-pixel kernels (u8/i8 out; nullptr: none) for any tap count, on
  // weights packed by pack_b8 (passed as w; bias and scale unused): [in u8, i8][out u8, i8].
  Q8DwConvFn fnb8[2][2] = {};
  Q8DwConvPackB8Fn pack_b8 = nullptr;
  // Optional 5x5 byte-form row kernels (u8/i8 out), the same contract as row3x3 with 5 rows
  // (rows[ky], output p's taps S·p .. S·p + 4 pixels further), on weights packed by pack5x5b8
  // (taps 25; bias and scale come from the packing): [stride 1, 2][in u8, i8][out u8, i8].
  Q8DwConvRowFn row5x5b8[2][2][2] = {};
  Q8DwConvPackB8Fn pack5x5b8 = nullptr;
};
// (At least 32 channels' worth: the byte form's 16-channel block takes as much as 32.)
inline size_t q8_dwconv_packed_size_3x3(size_t channels) {
  const size_t cp = (channels + 15) / 16 * 16;
  return 12 * (cp < 32 ? 32 : cp);
}

extern const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel__scalar;
// AVX2: 16 channels per vector step, tap pairs interleaved for vpmaddwd (exact int16 products);
// packing [round_up(taps, 2) / 2][round_up(channels, 16)][2], zeros past taps and channels.
extern const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel_c16__avx2;
// The 3x3 row kernels' layout: per 16-channel block (192 int16), int16 pair vectors for channels
// 0-7 then 8-15: (W[c][0][kx], W[c][1][kx]) for kx 0-2, then (W[c][2][0], W[c][2][1]) and
// (0, W[c][2][2]) (w' = W − w_zp), zeros after.
void q8_dwconv_pack_w_3x3r(size_t channels, size_t taps, const void* w, bool w_is_u8,
                           const int32_t* w_zp, int16_t* out);
void q8_dwconv_pack_w_c16x2(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out);
// AVX-512 VNNI: 32 channels per step, vpdpwssd on tap pairs. Packing [round_up(taps, 2) / 2]
// [round_up(channels, 16)][2] as c16x2's, but inside each whole 32-channel block the channels run
// 0-7, 16-23, 8-15, 24-31 (the order vpunpck{l,h}bw + vpmovzxbw leave them in); a last block of
// 16 in order. 3x3 rows: per block, same channel order, pair vectors (W[c][0][kx], W[c][1][kx])
// for kx 0-2, then (W[c][2][0], W[c][2][1]), (0, W[c][2][2]) and (W[c][2][2], 0).
// Byte-form 3x3 rows (row3x3b8): vpdpbusd on (row 0, row 1, row 2, 0) byte quads of one input
// column, 64 channels a vector step. Packing (pack3x3b8 = q8_dwconv_pack_w_3x3b8): with cp =
// round_up(channels, 16) and c64 = cp rounded down to 64, per 64-channel block [kx 0-2][vector
// j 0-3][64 bytes], vector j's int32 lane (l, i) the quad (w'[c][0][kx], w'[c][1][kx],
// w'[c][2][kx], 0) of channel c = 16·l + 4·j + i of the block; then at byte 12·c64 the
// channels from c64 on packed by q8_dwconv_pack_w_3x3c32 (the int16 row kernel runs them);
// zeros after. cp == 32 (17-32 channels): one such block whose lanes 2-3 repeat lanes 0-1, cp ==
// 16: one whose four lanes are the same 16 channels (the kernel multiplies two or four output
// pixels a vector).
// Byte-form per-pixel kernel (fnb8, pack_b8 = q8_dwconv_pack_w_b8): the taps in groups of four,
// one vpdpbusd per 16 channels and group on (tap 4g .. 4g + 3) byte quads of a channel, 64
// channels a block (masked at the end). Per block: for each group 4 vectors of 64 bytes, vector
// j's int32 lane (l, i) the quad of channel 16·l + 4·j + i (zeros past taps and channels); then
// the 64 starting sums and the 64 scales as 4 vectors each in that lane order.
extern const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel_c32__avx512vnni;
bool q8_dwconv_pack_w_b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                         const int32_t* w_zp, const int32_t* bias, const float* scale,
                         bool x_is_i8, int8_t* out);
// 5x5 byte-form rows (row5x5b8, pack5x5b8 = q8_dwconv_pack_w_5x5b8): an input column's rows 0-3
// as (row 0, 1, 2, 3) quads, and row 4 of two adjacent columns as (col i, col i + 1, 0, 0)
// quads, so an output of 64 channels costs 5 + 3 vpdpbusd per vector of 16 channels. Per block:
// for kx 0-4 the 4 vectors of (W[c][0][kx] .. W[c][3][kx]) quads, then for s 0-2 the 4 vectors
// of (W[c][4][2s], W[c][4][2s + 1], 0, 0) quads (W[c][4][5] = 0), in the b8 lane order, then the
// starting sums and scales as in q8_dwconv_pack_w_b8.
bool q8_dwconv_pack_w_5x5b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, const int32_t* bias, const float* scale,
                            bool x_is_i8, int8_t* out);
bool q8_dwconv_pack_w_3x3b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out);
void q8_dwconv_pack_w_c32x2(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out);
void q8_dwconv_pack_w_3x3c32(size_t channels, size_t taps, const void* w, bool w_is_u8,
                             const int32_t* w_zp, int16_t* out);
// AArch64: 16-channel blocks, SMLAL on inputs widened to int16.
extern const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel__neon;
const Q8DwConvUKernel& q8_dwconv_ukernel();  // the variant for the active ISA

}  // namespace edgert
