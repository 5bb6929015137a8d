// q8-gemm-x8: the byte form of q8-gemm (same sum and output stage, see q8-gemm.h) for kernels
// that multiply 8-bit operands directly (x86 vpmaddubsw) instead of widening them to int16.
//
// pair_u8: A row i is k bytes at a[i] (u8 or i8 activations straight from NHWC, or a byte im2col
// row), any alignment, never read at or past k. sign_s8: A row i is the prepared row
// q8_gemm_x8_prepare_sign writes (per K quad: 4 bytes |s|, then 4 bytes s; zero-padded), so the
// kernel's inner loop has no per-row flip or abs; it reads 8·ceil(k/4) bytes of it.
// W is packed once by q8_gemm_pack_x8: int8 w' = W − w_zp in blocks of nr columns, each block
// [ceil(k/4)][nr][4] (k quads, zero-padded columns and quads). bias and scale are read for
// round_up(nc, nr) columns (callers pad them). Any tile or thread split gives identical results:
// each output is one exact sum.
//
// Forms, chosen per layer at pack time by q8_gemm_choose_form (all exact, identical results):
//  - pair_u8: the operand is x (u8 input) or x ^ 0x80 (i8 input; bias − 128·Σw'), multiplied
//    u8 × s8 with int16 pair sums (vpmaddubsw). Exact only when, for every column, each weight
//    pair (2j, 2j+1) has 255·(max(w0,0)+max(w1,0)) <= 32767 and 255·(min(w0,0)+min(w1,0)) >=
//    −32768: true for 7-bit weights (reduce_range), false for nearly every full-range layer.
//    A w' of −128 is fine here (paired with w' >= 0, the only partner that passes).
//  - sign_s8: the operand is s = x (i8 input) or x ^ 0x80 (u8 input; bias + 128·Σw'),
//    multiplied as |s| (u8, <= 128) × w'·sign(s) (s8): pair sums <= 2·128·127 < 32767, exact
//    whenever every w' is in [−127, 127] (all onnxruntime-quantized s8 weights; it never emits
//    −128). One vpsignb and one more broadcast per product vector than pair_u8: on a Zen 3,
//    1024^3 with random full-range weights runs sign_s8 at 74 % of peak.cpp's u8*s8 figure,
//    pair_u8 at 98 %. Nearly every full-range layer fails the pair test as packed; the engine
//    then tries pair_u8 in another K order (permute_rows) or with a few weights moved into the
//    bias (qconv_engine.cc), and runs sign_s8 where neither works (per-channel weights, most
//    often); reduce_range (_rr) variants pass as they are.
//  - int16: anything else (u8 weights with a zero point; a w' beyond int8, or of −128 in a layer
//    that fails the pair test). Kernels with
//    exact_pairs take these too, packed as v = W − z0 (z0 = 128 for u8 weights, 0 for i8) with
//    the rest of the zero point applied per row (the engine's row_zp layers, row_off below);
//    other kernels leave them to the int16 q8-gemm table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {

enum class Q8GemmForm { pair_u8, sign_s8, int16 };

// mr rows, any number: a holds mr row pointers and the kernel walks them in tiles of its own mr
// (one call for a whole tile of rows saves a call and the output-stage setup per tile: 2304 rows
// of K=16, N=8 ran 12.2 us in 4-row calls, 8.1 in one). Row r's bias is bias + r·bias_stride
// (bias_stride 0: one bias row for every row; the engine passes per-row biases to fold in the
// corrections of a pair_u8 layer, see qconv_engine.cc).
using Q8GemmX8Fn = void (*)(size_t mr, size_t nc, size_t k, const void* const* a,
                            const int8_t* w, const int32_t* bias, size_t bias_stride,
                            const float* scale, void* c, size_t c_stride, const Q8Requant& rq);

// The indirect form of a pair_u8 row (convolution without an im2col copy): rows come in groups
// of the kernel's mr (mr_max), the last one partial; row r of group g has k = taps·cg bytes, the
// cg bytes at a[(g·taps + t)·mr_max + r] for tap t = 0..taps−1 (cg % 4 == 0, so no weight quad
// straddles two taps, except for kernels that copy their rows (copies_rows): any cg, the K of a
// row being taps·cg); pointers of the last group's rows past mr may be anything readable (the
// kernel may compute those rows but stores none). Bias is one row for all rows.
using Q8GemmX8IndirectFn = void (*)(size_t mr, size_t nc, size_t taps, size_t cg,
                                    const void* const* a, const int8_t* w, const int32_t* bias,
                                    const float* scale, void* c, size_t c_stride,
                                    const Q8Requant& rq);

// fn's pair_u8 form with one offset a row: row r's accumulators start at bias + row_off[r] (the
// engine's row_zp layers: a weight zero point applied as −delta·Σx per row, qconv_engine.cc).
using Q8GemmX8RowOffFn = void (*)(size_t mr, size_t nc, size_t k, const void* const* a,
                                  const int8_t* w, const int32_t* bias, const int32_t* row_off,
                                  const float* scale, void* c, size_t c_stride,
                                  const Q8Requant& rq);

struct Q8GemmX8UKernel {
  const char* name;
  size_t mr, nr;
  Q8GemmX8Fn fn[2][2][3];  // [form pair_u8, sign_s8][input u8, i8][output u8, i8, f32]
  // Writes the sign_s8 operand row (same bytes as q8_gemm_x8_prepare_sign, faster).
  void (*prepare_sign)(const uint8_t* x, size_t k, bool flip, uint8_t* out);
  // Optional: q8_gemm_x8_scan_pack, faster (same form, bytes and sums); nullptr: the generic one.
  Q8GemmForm (*scan_pack)(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                          const int32_t* w_zp, size_t nr, int8_t* out, int32_t* sums) = nullptr;
  // fn[0] sums each product exactly in int32 (no int16 pair step): pair_u8 is exact for every
  // w' in [−128, 127], so the engine never needs sign_s8 or moved weights with this kernel, and
  // fn[1] takes raw rows like fn[0] (not prepared ones; prepare_sign is unused).
  bool exact_pairs = false;
  // Optional, exact_pairs kernels: the indirect form of fn (same [form][input][output] index).
  Q8GemmX8IndirectFn indirect[2][2][3] = {};
  // Optional (kernels with int16 pair sums): q8_gemm_x8_permute_rows, faster. With it the engine
  // may run pair_u8 on a layer whose weights pass the pair test only in another K order: the
  // packing holds the reordered weights and each A row is reordered the same way first.
  void (*permute_rows)(const uint8_t* src, size_t src_stride, size_t rows, size_t k, bool whole,
                       const uint8_t* mask, uint8_t* dst, size_t dst_stride) = nullptr;
  // Optional (kernels with int16 pair sums): q8_gemm_x8_gpermute_rows, for K orders that move
  // channels between groups of 16 (layers whose groups cannot be paired within themselves).
  void (*gpermute_rows)(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                        const uint8_t* order, uint8_t* dst, size_t dst_stride) = nullptr;
  // Optional: q8_gemm_x8_gather_taps, faster (im2col and K order in one pass, for stems).
  void (*gather_taps)(const uint8_t* src, size_t pix, size_t step, size_t segs, size_t rows,
                      const uint8_t* masks, uint8_t* dst, size_t dst_stride) = nullptr;
  // The engine's column blocks hold about this many bytes of packed weights (each call's rows
  // run over one block): L1-sized for kernels that reread them per row tile, larger for one
  // that copies its rows into a panel first (the copy is then shared by more columns).
  size_t col_block_bytes = 24 << 10;
  // The kernel copies each call's rows into panels before it multiplies them (amx): the engine
  // then splits a layer's columns over work items only as far as the threads need (every part
  // would copy the same rows again).
  bool copies_rows = false;
  // Optional (exact_pairs kernels): fn[0] with per-row offsets, [input u8, i8][output].
  Q8GemmX8RowOffFn row_off[2][3] = {};
  // The kernel computes this many columns of direct rows at once where a call has them
  // (avx512vnni's 8x32 table: two blocks of nr, 16 accumulators); the engine's column blocks
  // and thread parts are then multiples of it. 0: nr.
  size_t nr_wide = 0;
  // The same for indirect rows (avx512vnni: 2·nr in both tables). Kept apart because a column
  // block of direct rows is sized to stay in L1 across row tiles: 32 columns of K = 960 are
  // 30 KiB, which on a 32 KiB L1 made the 8x16 kernel's 49x960x320 GEMM run at 180-204 G MAC/s
  // or 222 by where A sat (mod 4 KiB), against 222 everywhere in blocks of 16.
  size_t nr_wide_indirect = 0;
};

// The largest k q8_gemm_x8_gpermute_rows takes.
constexpr size_t kQ8GemmX8MaxGPermK = 64;

inline size_t q8_gemm_x8_packed_size(size_t n, size_t k, size_t nr) {
  return (n + nr - 1) / nr * nr * ((k + 3) / 4 * 4);
}

// One pass over W [n][k] (u8 if w_is_u8 else i8, row stride ldw): returns the fastest exact
// form; unless out is null, packs W into q8_gemm_x8_packed_size(n, k, nr) bytes at out (every
// byte written; meaningless if the form is int16); unless sums is null, writes sums[i] = Σ_j w'[i][j] (for the bias correction).
Q8GemmForm q8_gemm_x8_scan_pack(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                                const int32_t* w_zp, size_t nr, int8_t* out, int32_t* sums);
// q8_gemm_x8_bias from the sums q8_gemm_x8_scan_pack wrote.
void q8_gemm_x8_bias_from_sums(size_t n, const int32_t* sums, Q8GemmForm form, bool x_is_u8,
                               const int32_t* bias, int32_t* out);
// The fastest exact form for W [n][k] (u8 if w_is_u8 else i8, row stride ldw).
Q8GemmForm q8_gemm_choose_form(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                               const int32_t* w_zp);
// Packs W (whose form is not int16) into q8_gemm_x8_packed_size(n, k, nr) bytes.
void q8_gemm_pack_x8(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, size_t nr, int8_t* out);
// out[i] = bias[i] corrected for the operand flip of form and input type (wraparound).
void q8_gemm_x8_bias(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                     const int32_t* w_zp, Q8GemmForm form, bool x_is_u8, const int32_t* bias,
                     int32_t* out);

// A rows in the K order of a permuted pair_u8 packing: K is cut in groups of 16 and, for each of
// `rows` rows, dst[16g + j] = src[16g + mask[16g + j]] (rows src_stride / dst_stride bytes
// apart). mask has round_up(k, 16) entries, each < 16, and maps the positions below k to sources
// below k. Bytes of src at or past k are read only when `whole` (the row is readable up to
// round_up(k, 16)); dst's bytes from k to round_up(k, 16) are then unspecified, otherwise 0 or
// copies of src bytes below k (the weights there are zero either way). dst may be src when the
// rows are at least round_up(k, 16) bytes apart: a group is read before it is written.
void q8_gemm_x8_permute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                             bool whole, const uint8_t* mask, uint8_t* dst, size_t dst_stride);

// A rows in any K order of k <= kQ8GemmX8MaxGPermK bytes: for each of `rows` rows,
// dst[j] = src[order[j]] for j < k and 0 for k <= j < round_up(k, 16). order has round_up(k, 16)
// entries, its first k a permutation of [0, k). src is read only below k. dst may be src when
// the rows are at least round_up(k, 16) bytes apart.
void q8_gemm_x8_gpermute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                              const uint8_t* order, uint8_t* dst, size_t dst_stride);

// im2col rows of up to 32 bytes built straight in a packing's K order, for convs whose tap rows
// are short runs of input bytes (a 3x3 stem over RGB: 3 runs of 9): row r reads `segs` segments
// of 16 bytes at src + r·pix + t·step (all of them readable, only the bytes the masks pick
// used) and writes 32 bytes, dst[r·dst_stride + j] = OR over t of (masks[32t + j] < 16 ?
// segment t's byte masks[32t + j] : 0). Each mask entry is below 16 or 0x80 (none).
void q8_gemm_x8_gather_taps(const uint8_t* src, size_t pix, size_t step, size_t segs, size_t rows,
                            const uint8_t* masks, uint8_t* dst, size_t dst_stride);

// The sign_s8 operand row for k input bytes x (flip: u8 input, s = x ^ 0x80), 8·ceil(k/4) bytes.
void q8_gemm_x8_prepare_sign(const uint8_t* x, size_t k, bool flip, uint8_t* out);
inline size_t q8_gemm_x8_sign_row_bytes(size_t k) { return (k + 3) / 4 * 8; }

// Scalar reference of the byte form: 1x16, the same packing; both forms compute the same sum.
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_1x16__scalar;
// AVX2: 4x16 tile of vpmaddubsw + vpmaddwd (+ vpabsb/vpsignb for sign_s8).
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_4x16c4__avx2;

// AVX-512 VNNI (F/BW/VL/VNNI): up to 8x16 tile of vpdpbusd on the pair_u8 operand, exact pairs
// (indirect rows: 8x32 where a call has more than 16 columns).
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_8x16c4__avx512vnni;
// The same with 8x32 tiles (two 16-column blocks, nr_wide 32) for direct rows of more than 16
// columns too: for CPUs that issue two zmm vpdpbusd a cycle (vnni_wide_tiles() in isa.h).
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_8x32c4__avx512vnni;
// AMX-INT8: 32x32 steps of tdpbusd (four accumulator tiles), A rows copied into a zero-padded
// panel, B tiles read in place from the same packing; exact pairs.
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_32x32c4__amx;
// The AVX2 q8_gemm_x8_scan_pack (also what the avx512vnni and amx kernels pack with: the same
// layout).
Q8GemmForm q8_gemm_x8_scan_pack__avx2(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                                      const int32_t* w_zp, size_t nr, int8_t* out, int32_t* sums);

// The AVX2 q8_gemm_x8_gather_taps (the avx512vnni and amx kernels gather stems with it too).
void q8_gemm_x8_gather_taps__avx2(const uint8_t* src, size_t pix, size_t step, size_t segs,
                                  size_t rows, const uint8_t* masks, uint8_t* dst,
                                  size_t dst_stride);

// AArch64 with the dot product (hwcap asimddp): 4x16 tile of SDOT on the signed operand.
extern const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_4x16c4__neondot;

// The byte-form variant for the active ISA (avx512vnni's under amx; its 8x32 table where
// vnni_wide_tiles()), or nullptr (scalar, neon without the dot product: the engine then runs the
// int16 q8-gemm table).
const Q8GemmX8UKernel* q8_gemm_x8_ukernel();
// The variant for a layer of m rows, n columns and depth k: under amx, the amx kernel where the
// layer gives its tiles enough work (k > 32, m >= 16, m·n·k >= 2^20 products; measured on a Xeon
// with AMX: below that the per-call tile setup, the panel copy and the padding of k to 64 cost
// more than tdpbusd saves), else q8_gemm_x8_ukernel(). Both pack the same layout.
const Q8GemmX8UKernel* q8_gemm_x8_ukernel_for(size_t m, size_t n, size_t k);

}  // namespace edgert
