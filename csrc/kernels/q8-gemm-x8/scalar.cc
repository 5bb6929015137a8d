// Byte-form q8-gemm: form choice, packing, bias correction, and the scalar reference kernel.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "isa.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"
#include "kernels/q8-gemm/requant-scalar.h"

namespace edgert {
namespace {

// scan flags: a w' outside int8; a pair past pair_u8; a w' of −128 (pair_u8 takes it when its
// pairs pass, sign_s8 never: its weights are w'·sign(s)).
constexpr unsigned kWide = 1, kNoPair = 2, kNeg128 = 4;

// One weight row: w' = w − zp into dst (round_up(k, 4) bytes, zero-padded; wraps outside int8,
// which only the int16 form can take), Σ w' into sum, and the form flags. Weight pairs are
// read as uint16 so every loop is branch-free min/max/add on int16 lanes the compiler
// vectorizes: creation packs millions of weights.
template <bool U8>
unsigned scan_row(const uint8_t* src, size_t k, int32_t zp, int8_t* dst, int32_t& sum) {
  constexpr size_t kPairs = 64;  // per block: |Σ w'| <= 128·255 stays in int16
  uint16_t u[kPairs], o[kPairs];
  const int16_t z = static_cast<int16_t>(zp);
  int16_t lo = 0, hi = 0, pos_max = 0, neg_min = 0;
  int32_t s = 0;
  for (size_t j0 = 0; j0 < k; j0 += 2 * kPairs) {
    const size_t bytes = k - j0 < 2 * kPairs ? k - j0 : 2 * kPairs, pairs = (bytes + 1) / 2;
    // Constant-size copies for whole blocks: a variable one becomes a slow `rep movs`.
    if (bytes == 2 * kPairs) std::memcpy(u, src + j0, 2 * kPairs);
    else std::memcpy(u, src + j0, bytes);
    if (bytes % 2) reinterpret_cast<uint8_t*>(u)[bytes] = static_cast<uint8_t>(zp);  // w' = 0
    int16_t bs = 0;
    for (size_t j = 0; j < pairs; ++j) {
      const int16_t b0 = U8 ? int16_t(u[j] & 0xff) : int16_t(int16_t(u[j] << 8) >> 8);
      const int16_t b1 = U8 ? int16_t(u[j] >> 8) : int16_t(int16_t(u[j]) >> 8);
      const int16_t w0 = int16_t(b0 - z), w1 = int16_t(b1 - z);
      bs = int16_t(bs + w0 + w1);
      lo = std::min(lo, std::min(w0, w1));
      hi = std::max(hi, std::max(w0, w1));
      const int16_t zero = 0;
      pos_max = std::max(pos_max, int16_t(std::max(w0, zero) + std::max(w1, zero)));
      neg_min = std::min(neg_min, int16_t(std::min(w0, zero) + std::min(w1, zero)));
      o[j] = uint16_t((w0 & 0xff) | ((w1 & 0xff) << 8));
    }
    if (bytes == 2 * kPairs) std::memcpy(dst + j0, o, 2 * kPairs);
    else std::memcpy(dst + j0, o, bytes);
    s += bs;
  }
  for (size_t j = k; j % 4; ++j) dst[j] = 0;
  sum = s;
  if (lo < -128 || hi > 127) return kWide;
  // pair_u8 needs 255·(max(w0,0)+max(w1,0)) <= 32767 and 255·(min(w0,0)+min(w1,0)) >= −32768.
  return (pos_max > 128 || neg_min < -128 ? kNoPair : 0) | (lo < -127 ? kNeg128 : 0);
}

// nr rows at a time are scanned into a buffer, then their block is written in order (quads of
// consecutive columns), so the stores stream instead of striding nr·4 bytes apart.
template <bool U8>
Q8GemmForm scan_pack(size_t n, size_t k, const uint8_t* w, size_t ldw, const int32_t* w_zp,
                     size_t nr, int8_t* out, int32_t* sums) {
  const size_t kq = (k + 3) / 4, bn = out ? nr : 1;
  std::vector<int8_t> rows(bn * kq * 4);
  int32_t sum = 0;
  unsigned flags = 0;
  for (size_t i0 = 0; i0 < n; i0 += bn) {
    const size_t nb = n - i0 < bn ? n - i0 : bn;
    for (size_t i = 0; i < nb; ++i) {
      flags |= scan_row<U8>(w + (i0 + i) * ldw, k, w_zp[i0 + i], rows.data() + i * kq * 4, sum);
      if (sums) sums[i0 + i] = sum;
    }
    if (!out) {
      if ((flags & kWide) && !sums) return Q8GemmForm::int16;
      continue;
    }
    if (nb < bn) std::memset(rows.data() + nb * kq * 4, 0, (bn - nb) * kq * 4);  // pad columns
    int8_t* blk = out + i0 * kq * 4;
    for (size_t q = 0; q < kq; ++q)
      for (size_t i = 0; i < bn; ++i, blk += 4) std::memcpy(blk, rows.data() + (i * kq + q) * 4, 4);
  }
  if ((flags & kWide) || (flags & (kNoPair | kNeg128)) == (kNoPair | kNeg128))
    return Q8GemmForm::int16;
  return flags & kNoPair ? Q8GemmForm::sign_s8 : Q8GemmForm::pair_u8;
}

}  // namespace

Q8GemmForm q8_gemm_x8_scan_pack(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                                const int32_t* w_zp, size_t nr, int8_t* out, int32_t* sums) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  return w_is_u8 ? scan_pack<true>(n, k, wb, ldw, w_zp, nr, out, sums)
                 : scan_pack<false>(n, k, wb, ldw, w_zp, nr, out, sums);
}

Q8GemmForm q8_gemm_choose_form(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                               const int32_t* w_zp) {
  return q8_gemm_x8_scan_pack(n, k, w, w_is_u8, ldw, w_zp, 0, nullptr, nullptr);
}

void q8_gemm_pack_x8(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, size_t nr, int8_t* out) {
  q8_gemm_x8_scan_pack(n, k, w, w_is_u8, ldw, w_zp, nr, out, nullptr);
}

void q8_gemm_x8_bias_from_sums(size_t n, const int32_t* sums, Q8GemmForm form, bool x_is_u8,
                               const int32_t* bias, int32_t* out) {
  // pair_u8 on i8 input sees x + 128; sign_s8 on u8 input sees x − 128.
  const uint32_t shift = form == Q8GemmForm::pair_u8 ? (x_is_u8 ? 0 : uint32_t(-128))
                         : form == Q8GemmForm::sign_s8 ? (x_is_u8 ? 128 : 0) : 0;
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<int32_t>(static_cast<uint32_t>(bias[i]) +
                                  shift * static_cast<uint32_t>(sums[i]));
}

void q8_gemm_x8_bias(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, Q8GemmForm form, bool x_is_u8, const int32_t* bias,
                     int32_t* out) {
  std::vector<int32_t> sums(n);
  q8_gemm_x8_scan_pack(n, k, w, w_is_u8, ldw, w_zp, 1, nullptr, sums.data());
  q8_gemm_x8_bias_from_sums(n, sums.data(), form, x_is_u8, bias, out);
}

void q8_gemm_x8_prepare_sign(const uint8_t* x, size_t k, bool flip, uint8_t* out) {
  const uint8_t f = flip ? 0x80 : 0;
  const size_t kq = (k + 3) / 4;
  for (size_t q = 0; q < kq; ++q) {
    for (size_t j = 0; j < 4; ++j) {
      const size_t i = 4 * q + j;
      const int8_t v = static_cast<int8_t>(i < k ? x[i] ^ f : 0);
      out[8 * q + j] = static_cast<uint8_t>(v < 0 ? -int32_t{v} : v);  // |−128| = 128 fits u8
      out[8 * q + 4 + j] = static_cast<uint8_t>(v);
    }
  }
}

namespace {

constexpr size_t NR = 16;

// The operand the form multiplies, as a plain integer: both forms then sum exactly the same.
template <int Form, class In>
int32_t operand(uint8_t byte) {
  const bool flip = (Form == 0) != std::is_same<In, uint8_t>::value;
  const uint8_t b = flip ? byte ^ 0x80 : byte;
  return Form == 0 ? int32_t{b} : int32_t{static_cast<int8_t>(b)};
}

template <int Form, class In, class Out>
void gemm_1x16(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const float* scale, void* c_out,
               size_t c_stride, const Q8Requant& rq) {
  const size_t kq = (k + 3) / 4;
  for (size_t i = 0; i < mr; ++i) {
    const uint8_t* ar = static_cast<const uint8_t*>(a[i]);
    Out* c = static_cast<Out*>(c_out) + i * c_stride;
    for (size_t n = 0; n < nc; ++n) {
      const int8_t* blk = w + n / NR * NR * kq * 4 + n % NR * 4;
      int32_t acc = 0;
      for (size_t j = 0; j < k; ++j) {
        // sign_s8 rows are prepared: s sits at byte 4 of each 8-byte quad record.
        const int32_t v = Form == 0 ? operand<Form, In>(ar[j])
                                    : int32_t{static_cast<int8_t>(ar[j / 4 * 8 + 4 + j % 4])};
        acc += v * int32_t{blk[j / 4 * NR * 4 + j % 4]};
      }
      c[n] = q8_output<Out>(q8_add_wrap(acc, bias[i * bias_stride + n]), scale[n], rq);
    }
  }
}

}  // namespace

#define EDGERT_X8_ROW(F, In) {gemm_1x16<F, In, uint8_t>, gemm_1x16<F, In, int8_t>, \
                              gemm_1x16<F, In, float>}
const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_1x16__scalar = {
    "q8_gemm_x8_minmax_fp32_ukernel_1x16__scalar", 1, NR,
    {{EDGERT_X8_ROW(0, uint8_t), EDGERT_X8_ROW(0, int8_t)},
     {EDGERT_X8_ROW(1, uint8_t), EDGERT_X8_ROW(1, int8_t)}},
    q8_gemm_x8_prepare_sign};
#undef EDGERT_X8_ROW

const Q8GemmX8UKernel* q8_gemm_x8_ukernel() {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx512vnni())
    return vnni_wide_tiles() ? &q8_gemm_x8_minmax_fp32_ukernel_8x32c4__avx512vnni
                             : &q8_gemm_x8_minmax_fp32_ukernel_8x16c4__avx512vnni;
  if (isa_runs_avx2()) return &q8_gemm_x8_minmax_fp32_ukernel_4x16c4__avx2;
#endif
#if defined(__aarch64__)
  if (neon_has_dot()) return &q8_gemm_x8_minmax_fp32_ukernel_4x16c4__neondot;
#endif
  return nullptr;
}

const Q8GemmX8UKernel* q8_gemm_x8_ukernel_for(size_t m, size_t n, size_t k) {
#if defined(EDGERT_HAVE_AMX)
  const double macs = double(m) * double(n) * double(k);
  if (active_isa() == Isa::amx && k > 32 && m >= 16 && macs >= 1 << 20)
    return &q8_gemm_x8_minmax_fp32_ukernel_32x32c4__amx;
#endif
  return q8_gemm_x8_ukernel();
}

void q8_gemm_x8_gpermute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                              const uint8_t* order, uint8_t* dst, size_t dst_stride) {
  const size_t kp = (k + 15) / 16 * 16;
  uint8_t in[kQ8GemmX8MaxGPermK];
  for (size_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride) {
    for (size_t j = 0; j < k; ++j) in[j] = src[j];
    for (size_t j = 0; j < kp; ++j) dst[j] = j < k ? in[order[j]] : 0;
  }
}

void q8_gemm_x8_gather_taps(const uint8_t* src, size_t pix, size_t step, size_t segs, size_t rows,
                            const uint8_t* masks, uint8_t* dst, size_t dst_stride) {
  for (size_t r = 0; r < rows; ++r, src += pix, dst += dst_stride)
    for (size_t j = 0; j < 32; ++j) {
      uint8_t v = 0;
      for (size_t t = 0; t < segs; ++t) {
        const uint8_t m = masks[32 * t + j];
        if (m < 16) v = static_cast<uint8_t>(v | src[t * step + m]);
      }
      dst[j] = v;
    }
}

void q8_gemm_x8_permute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                             bool /*whole*/, const uint8_t* mask, uint8_t* dst,
                             size_t dst_stride) {
  for (size_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride) {
    for (size_t g = 0; g < k; g += 16) {
      uint8_t in[16] = {};
      const size_t n = k - g < 16 ? k - g : 16;
      for (size_t j = 0; j < n; ++j) in[j] = src[g + j];
      for (size_t j = 0; j < 16; ++j) dst[g + j] = in[mask[g + j] & 15];
    }
  }
}

}  // namespace edgert
