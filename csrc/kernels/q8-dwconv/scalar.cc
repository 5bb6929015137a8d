// Scalar q8-dwconv: the reference for SIMD variants.
#include <algorithm>
#include <cstring>

#include "isa.h"
#include "kernels/q8-dwconv/q8-dwconv.h"
#include "kernels/q8-gemm/requant-scalar.h"

namespace edgert {

// w' = W[i] − zp of the raw weights (u8 or i8), exact in int16.
static int16_t w_prime(const void* w, bool w_is_u8, size_t i, int32_t zp) {
  const int32_t v = w_is_u8 ? int32_t{static_cast<const uint8_t*>(w)[i]}
                            : int32_t{static_cast<const int8_t*>(w)[i]};
  return static_cast<int16_t>(v - zp);
}

void q8_dwconv_pack_w(size_t channels, size_t taps, const void* w, bool w_is_u8,
                      const int32_t* w_zp, int16_t* out) {
  for (size_t c = 0; c < channels; ++c)
    for (size_t t = 0; t < taps; ++t)
      out[t * channels + c] = w_prime(w, w_is_u8, c * taps + t, w_zp[c]);
}

// Position of channel c among the cp = round_up(channels, 16) packed channels for c32x2 and
// 3x3c32: whole 32-channel blocks in the order of the AVX-512 kernel's byte unpacks, a last 16
// in order (c16x2 keeps every channel in order).
static size_t pos_c32(size_t c, size_t cp) {
  const size_t c0 = c / 32 * 32, k = c % 32;
  return c0 + (c0 + 32 <= cp ? k / 8 % 2 * 16 + k / 16 * 8 + k % 8 : k);
}

// [round_up(taps, 2) / 2][cp][2], zeros past taps and channels.
static void pack_tap_pairs(size_t channels, size_t taps, const void* w, bool w_is_u8,
                           const int32_t* w_zp, bool c32, int16_t* out) {
  const size_t cp = (channels + 15) / 16 * 16;
  std::fill(out, out + q8_dwconv_packed_size(channels, taps), int16_t{0});
  for (size_t c = 0; c < channels; ++c)
    for (size_t t = 0; t < taps; ++t)
      out[(t / 2 * cp + (c32 ? pos_c32(c, cp) : c)) * 2 + t % 2] =
          w_prime(w, w_is_u8, c * taps + t, w_zp[c]);
}

void q8_dwconv_pack_w_c16x2(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out) {
  pack_tap_pairs(channels, taps, w, w_is_u8, w_zp, false, out);
}

void q8_dwconv_pack_w_c32x2(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out) {
  pack_tap_pairs(channels, taps, w, w_is_u8, w_zp, true, out);
}

void q8_dwconv_pack_w_3x3r(size_t channels, size_t taps, const void* w, bool w_is_u8,
                           const int32_t* w_zp, int16_t* out) {
  if (taps != 9) return;
  std::fill(out, out + q8_dwconv_packed_size_3x3(channels), int16_t{0});
  for (size_t c = 0; c < channels; ++c) {
    int16_t* blk = out + c / 16 * 192 + c % 16 / 8 * 16 + c % 8 * 2;
    auto wp = [&](size_t ky, size_t kx) { return w_prime(w, w_is_u8, c * 9 + ky * 3 + kx, w_zp[c]); };
    // rows 0-1 pair vectors at kx·32 (+16 for channels 8-15); row 2: (W20, W21) at 96,
    // (0, W22) at 128
    for (size_t kx = 0; kx < 3; ++kx) blk[kx * 32] = wp(0, kx), blk[kx * 32 + 1] = wp(1, kx);
    blk[96] = wp(2, 0), blk[97] = wp(2, 1);
    blk[129] = wp(2, 2);
  }
}

void q8_dwconv_pack_w_3x3c32(size_t channels, size_t taps, const void* w, bool w_is_u8,
                             const int32_t* w_zp, int16_t* out) {
  if (taps != 9) return;
  const size_t cp = (channels + 15) / 16 * 16;
  std::fill(out, out + q8_dwconv_packed_size_3x3(channels), int16_t{0});
  // Per block 6 sets of int16 pairs, (first, second) tap: (W[c][0][kx], W[c][1][kx]) for kx 0-2,
  // (W[c][2][0], W[c][2][1]), (0, W[c][2][2]), (W[c][2][2], 0).
  static const int8_t kSet[9][2] = {{0, 0}, {1, 0}, {2, 0}, {0, 1}, {1, 1},
                                    {2, 1}, {3, 0}, {3, 1}, {4, 1}};  // [tap] = (set, member)
  for (size_t c = 0; c < channels; ++c) {
    const size_t c0 = c / 32 * 32, bw = c0 + 32 <= cp ? 32 : 16;  // block width
    const size_t j = pos_c32(c, cp) - c0;  // int32 lane in the block: vector j / 16, lane j % 16
    int16_t* blk = out + c0 * 12 + j * 2;
    for (size_t t = 0; t < 9; ++t) {
      const int16_t v = w_prime(w, w_is_u8, c * 9 + t, w_zp[c]);
      blk[kSet[t][0] * 2 * bw + kSet[t][1]] = v;
      if (t == 8) blk[5 * 2 * bw] = v;
    }
  }
}

bool q8_dwconv_fits_i8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                       const int32_t* w_zp) {
  bool fits = true;
  for (size_t c = 0; c < channels; ++c)
    for (size_t t = 0; t < taps; ++t) {
      const int16_t v = w_prime(w, w_is_u8, c * taps + t, w_zp[c]);
      fits &= v >= -128 && v <= 127;
    }
  return fits;
}

bool q8_dwconv_pack_w_3x3b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, int16_t* out) {
  if (taps != 9 || !q8_dwconv_fits_i8(channels, taps, w, w_is_u8, w_zp)) return false;
  const size_t cp = (channels + 15) / 16 * 16, c64 = cp / 64 * 64;
  std::fill(out, out + q8_dwconv_packed_size_3x3(channels), int16_t{0});
  int8_t* const o = reinterpret_cast<int8_t*>(out);
  // 32 channels (cp == 32): one block for two pixels, lanes 2-3 repeating lanes 0-1; 16: one for
  // four pixels, every lane the same.
  const bool pixels = cp == 16 || cp == 32;
  const size_t blocked = pixels ? channels : std::min(channels, c64);
  for (size_t c = 0; c < blocked; ++c) {
    const size_t k = c % 64, lane = k / 16, j = k % 16 / 4, i = k % 4;
    for (size_t kx = 0; kx < 3; ++kx)
      for (size_t l = lane; l < 4; l += pixels ? cp / 16 : 4) {
        int8_t* q = o + c / 64 * 768 + (kx * 4 + j) * 64 + (l * 4 + i) * 4;
        for (size_t ky = 0; ky < 3; ++ky)
          q[ky] = static_cast<int8_t>(w_prime(w, w_is_u8, c * 9 + ky * 3 + kx, w_zp[c]));
      }
  }
  if (pixels) return true;
  if (channels > c64) {
    const size_t esize = 1;  // u8 or i8 weights
    q8_dwconv_pack_w_3x3c32(channels - c64, 9, static_cast<const uint8_t*>(w) + c64 * 9 * esize,
                            w_is_u8, w_zp + c64, reinterpret_cast<int16_t*>(o + 12 * c64));
  }
  return true;
}

namespace {

// Channel c's place in a 64-channel byte-form block: vector j (of 4) and int32 lane (of 16),
// lane (l, i) holding channel 16·l + 4·j + i.
struct B8Lane {
  size_t j, lane;
  explicit B8Lane(size_t c) : j(c % 64 % 16 / 4), lane(c % 64 / 16 * 4 + c % 4) {}
};

// Channel c's starting sum (bias, less 128·Σw' when x_is_i8: wrapping, as the kernels' sums
// wrap, the exact total an int32) and scale, at the lane of vectors of 16 at `sums` and
// `sums` + 256.
void store_start_scale(int8_t* sums, const B8Lane& at, int32_t bias, uint32_t wsum, float scale,
                       bool x_is_i8) {
  const int32_t start =
      static_cast<int32_t>(static_cast<uint32_t>(bias) - (x_is_i8 ? 128u * wsum : 0u));
  std::memcpy(sums + (at.j * 16 + at.lane) * 4, &start, 4);
  std::memcpy(sums + 256 + (at.j * 16 + at.lane) * 4, &scale, 4);
}

}  // namespace

bool q8_dwconv_pack_w_b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                         const int32_t* w_zp, const int32_t* bias, const float* scale,
                         bool x_is_i8, int8_t* out) {
  if (!q8_dwconv_fits_i8(channels, taps, w, w_is_u8, w_zp)) return false;
  const size_t groups = (taps + 3) / 4, block = groups * 256 + 512;
  std::fill(out, out + q8_dwconv_packed_size_b8(channels, taps), int8_t{0});
  for (size_t c = 0; c < channels; ++c) {
    const B8Lane at(c);
    int8_t* const blk = out + c / 64 * block;
    uint32_t sum = 0;
    for (size_t t = 0; t < taps; ++t) {
      const int16_t v = w_prime(w, w_is_u8, c * taps + t, w_zp[c]);
      blk[(t / 4 * 4 + at.j) * 64 + at.lane * 4 + t % 4] = static_cast<int8_t>(v);
      sum += static_cast<uint32_t>(int32_t{v});
    }
    store_start_scale(blk + groups * 256, at, bias[c], sum, scale[c], x_is_i8);
  }
  return true;
}

bool q8_dwconv_pack_w_5x5b8(size_t channels, size_t taps, const void* w, bool w_is_u8,
                            const int32_t* w_zp, const int32_t* bias, const float* scale,
                            bool x_is_i8, int8_t* out) {
  if (taps != 25 || !q8_dwconv_fits_i8(channels, taps, w, w_is_u8, w_zp)) return false;
  std::fill(out, out + q8_dwconv_packed_size_5x5b8(channels), int8_t{0});
  for (size_t c = 0; c < channels; ++c) {
    const B8Lane at(c);
    int8_t* const blk = out + c / 64 * 2560;
    uint32_t sum = 0;
    for (size_t t = 0; t < 25; ++t) {
      const size_t ky = t / 5, kx = t % 5;
      const int16_t v = w_prime(w, w_is_u8, c * 25 + t, w_zp[c]);
      // rows 0-3 as one quad per kx; row 4 in pairs of adjacent columns
      const size_t q = ky < 4 ? (kx * 4 + at.j) * 64 + at.lane * 4 + ky
                              : 1280 + (kx / 2 * 4 + at.j) * 64 + at.lane * 4 + kx % 2;
      blk[q] = static_cast<int8_t>(v);
      sum += static_cast<uint32_t>(int32_t{v});
    }
    store_start_scale(blk + 2048, at, bias[c], sum, scale[c], x_is_i8);
  }
  return true;
}

namespace {

constexpr size_t kBlock = 16;  // channels per block: 4 SSE registers of accumulators

// Channels [c0, c0 + nb) of one pixel. With nb == kBlock the trip counts are constants, so the
// compiler keeps acc in registers and needs no aliasing checks; the tail block takes nb < kBlock.
template <class In, class Out>
inline void dw_block(size_t c0, size_t nb, size_t channels, size_t taps, const void* const* in,
                     const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                     const Q8Requant& rq) {
  int32_t acc[kBlock] = {};
  for (size_t t = 0; t < taps; ++t) {
    const In* x = static_cast<const In*>(in[t]) + c0;
    const int16_t* wt = w + t * channels + c0;
    // int16 x int16 -> int32 maps onto pmullw/pmulhw; an int32 multiply has no SSE2 form.
    for (size_t c = 0; c < nb; ++c) acc[c] += int32_t{int16_t{x[c]}} * int32_t{wt[c]};
  }
  for (size_t c = 0; c < nb; ++c)
    y[c0 + c] = q8_output<Out>(q8_add_wrap(acc[c], bias[c0 + c]), scale[c0 + c], rq);
}

template <class In, class Out>
void dwconv(size_t channels, size_t taps, const void* const* in, const int16_t* w,
            const int32_t* bias, const float* scale, void* y_out, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  size_t c0 = 0;
  for (; c0 + kBlock <= channels; c0 += kBlock)
    dw_block<In, Out>(c0, kBlock, channels, taps, in, w, bias, scale, y, rq);
  if (c0 < channels)
    dw_block<In, Out>(c0, channels - c0, channels, taps, in, w, bias, scale, y, rq);
}

}  // namespace

const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel__scalar = {
    "q8_dwconv_minmax_fp32_ukernel__scalar",
    {{dwconv<uint8_t, uint8_t>, dwconv<uint8_t, int8_t>, dwconv<uint8_t, float>},
     {dwconv<int8_t, uint8_t>, dwconv<int8_t, int8_t>, dwconv<int8_t, float>}}};

const Q8DwConvUKernel& q8_dwconv_ukernel() {
#if defined(__aarch64__)
  if (active_isa() == Isa::neon) return q8_dwconv_minmax_fp32_ukernel__neon;
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx512vnni()) return q8_dwconv_minmax_fp32_ukernel_c32__avx512vnni;
  if (isa_runs_avx2()) return q8_dwconv_minmax_fp32_ukernel_c16__avx2;
#endif
  return q8_dwconv_minmax_fp32_ukernel__scalar;
}

}  // namespace edgert
