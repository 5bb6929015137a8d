// Byte-form q8-gemm: form choice, packing, bias correction, and the scalar reference kernel.
#include <cstring>
#include <type_traits>

#include "isa.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"
#include "kernels/q8-gemm/requant-scalar.h"

namespace edgert {
namespace {

int32_t wq(const void* w, bool w_is_u8, size_t i) {
  return w_is_u8 ? int32_t{static_cast<const uint8_t*>(w)[i]}
                 : int32_t{static_cast<const int8_t*>(w)[i]};
}

}  // namespace

Q8GemmForm q8_gemm_choose_form(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                               const int32_t* w_zp) {
  bool pair = true;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < k; j += 2) {
      const int32_t w0 = wq(w, w_is_u8, i * ldw + j) - w_zp[i];
      const int32_t w1 = j + 1 < k ? wq(w, w_is_u8, i * ldw + j + 1) - w_zp[i] : 0;
      if (w0 < -127 || w0 > 127 || w1 < -127 || w1 > 127) return Q8GemmForm::int16;
      const int32_t pos = (w0 > 0 ? w0 : 0) + (w1 > 0 ? w1 : 0);
      const int32_t neg = (w0 < 0 ? w0 : 0) + (w1 < 0 ? w1 : 0);
      if (255 * pos > 32767 || 255 * neg < -32768) pair = false;
    }
  }
  return pair ? Q8GemmForm::pair_u8 : Q8GemmForm::sign_s8;
}

void q8_gemm_pack_x8(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, size_t nr, int8_t* out) {
  const size_t kq = (k + 3) / 4;
  std::memset(out, 0, q8_gemm_x8_packed_size(n, k, nr));
  for (size_t i = 0; i < n; ++i) {
    int8_t* blk = out + i / nr * nr * kq * 4 + i % nr * 4;
    for (size_t j = 0; j < k; ++j)
      blk[j / 4 * nr * 4 + j % 4] = static_cast<int8_t>(wq(w, w_is_u8, i * ldw + j) - w_zp[i]);
  }
}

void q8_gemm_x8_bias(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, Q8GemmForm form, bool x_is_u8, const int32_t* bias,
                     int32_t* out) {
  // pair_u8 on i8 input sees x + 128; sign_s8 on u8 input sees x − 128.
  const int64_t shift = form == Q8GemmForm::pair_u8 ? (x_is_u8 ? 0 : -128)
                        : form == Q8GemmForm::sign_s8 ? (x_is_u8 ? 128 : 0) : 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t sum = 0;
    for (size_t j = 0; j < k; ++j) sum += wq(w, w_is_u8, i * ldw + j) - w_zp[i];
    out[i] = static_cast<int32_t>(static_cast<uint32_t>(bias[i]) +
                                  static_cast<uint32_t>(static_cast<uint64_t>(shift * sum)));
  }
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
               const int32_t* bias, const float* scale, void* c_out, size_t c_stride,
               const Q8Requant& rq) {
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
      c[n] = q8_output<Out>(q8_add_wrap(acc, bias[n]), scale[n], rq);
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
  if (active_isa() == Isa::avx2) return &q8_gemm_x8_minmax_fp32_ukernel_4x16c4__avx2;
#endif
#if defined(__aarch64__)
  if (neon_has_dot()) return &q8_gemm_x8_minmax_fp32_ukernel_4x16c4__neondot;
#endif
  return nullptr;
}

}  // namespace edgert
