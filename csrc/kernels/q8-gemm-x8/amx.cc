// AMX-INT8 byte-form q8-gemm (Sapphire Rapids and later Xeons): 32 rows × 32 columns a step, as
// four 16×16 int32 accumulator tiles fed by two 16-row A tiles and two B tiles of 16 K quads each,
// one tdpbusd per accumulator and 64 K bytes (16·16·64 u8 × s8 products summed into int32, no
// int16 step, so the pair_u8 operand is exact for any w' in [−128, 127], as with vpdpbusd).
//
// B tiles are the packing itself: a block of 16 columns is [ceil(k/4)][16][4] bytes (the avx2 and
// avx512vnni layout), so 16 quads of it are one 1 KiB tile of 16 rows × 64 bytes, loaded in
// place; a last partial chunk of quads is copied once per call into a zero-padded tile (the
// packing ends there, a tile load must not read past it). A rows are copied, up to 384 KiB at a
// time, into panels of 32 rows × round_up(k, 64) bytes (the operand x, or x ^ 0x80 for i8 input;
// zeros past k), which also gathers the taps of the indirect form; each column pair then runs
// over every panel of the chunk. The accumulators are stored to a 4 KiB buffer and requantized
// there by the AVX-512 output stage of the avx512vnni kernel.
//
// Tile state is per thread: every call loads the configuration (all eight tiles 16 × 64 bytes)
// and releases the tiles before it returns, so no thread keeps 8 KiB of tile state alive between
// runs. Form 1 (sign_s8 bias) subtracts 128·Σw' per column as the avx512vnni kernel does.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "kernels/q8-gemm-x8/avx512-common.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"

namespace edgert {
namespace {

using avx512::column_corr;
using avx512::OutStage;
using avx512::store_row;
using avx512::store_rows4;

constexpr size_t MR = 32, NR = 16, kTileBytes = 1024;

// Tiles 0–3: accumulators C[row half][column block]; 4–5: A (row halves); 6–7: B (blocks).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
const TileConfig kConfig;

// A thread's work buffer, 64-byte aligned, grown on demand (never shrunk; contents not kept).
// A type of this file's own rather than a std::vector<uint8_t>: the vector's member functions
// compiled here (with AVX-512 and AMX enabled) would be inline copies the linker may keep for
// every other file's vectors too, which then run on CPUs without those instructions.
class WorkBuffer {
 public:
  WorkBuffer() = default;
  WorkBuffer(const WorkBuffer&) = delete;
  WorkBuffer& operator=(const WorkBuffer&) = delete;
  ~WorkBuffer() { std::free(p_); }
  uint8_t* get(size_t bytes) {
    if (bytes > size_) {
      const size_t size = (bytes + 63) / 64 * 64;
      void* p = std::aligned_alloc(64, size);
      if (p == nullptr) throw std::bad_alloc();
      std::free(p_);
      p_ = static_cast<uint8_t*>(p), size_ = size;
    }
    return p_;
  }

 private:
  uint8_t* p_ = nullptr;
  size_t size_ = 0;
};

// What the A bytes are XORed with: the operand is x for u8 input, x ^ 0x80 for i8 input.
template <class In>
inline __m512i operand_flip() {
  return _mm512_set1_epi8(static_cast<char>(std::is_same<In, uint8_t>::value ? 0 : 0x80));
}

// n <= 64 bytes of src (not one more read) to dst, ^ f; the 64-byte store's bytes past n get 0.
inline void copy_chunk(const uint8_t* src, size_t n, __m512i f, uint8_t* dst) {
  const __mmask64 m = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
  const __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src), f);
  _mm512_storeu_si512(dst, _mm512_maskz_mov_epi8(m, v));
}

// n bytes of src ^ f to dst (any n); the 64 - n % 64 bytes after them are written 0.
inline void copy_run(const uint8_t* src, size_t n, __m512i f, uint8_t* dst) {
  size_t j = 0;
  for (; j + 64 <= n; j += 64)
    _mm512_storeu_si512(dst + j, _mm512_xor_si512(_mm512_loadu_si512(src + j), f));
  if (j < n) copy_chunk(src + j, n - j, f, dst + j);
}

// Panel rows [from, 32) (or [from, 16) when only one row tile is used) set to zero: the tiles
// read them, their sums are never stored.
inline void zero_rows(uint8_t* panel, size_t from, size_t to, size_t k64) {
  if (from < to) std::memset(panel + from * k64, 0, (to - from) * k64);
}

// The zero-padded copy of each block's last partial chunk of quads (kq % 16 of them).
void make_tails(const int8_t* w, size_t nb, size_t kq, int8_t* tails) {
  const size_t kc = (kq + 15) / 16, have = (kq % 16) * 64;
  for (size_t j = 0; j < nb; ++j) {
    std::memcpy(tails + j * kTileBytes, w + j * kq * 64 + (kc - 1) * kTileBytes, have);
    std::memset(tails + j * kTileBytes + have, 0, kTileBytes - have);
  }
}

// One 32-row × 32-column step (Two: a second column block; Full: a second row tile) over kc
// chunks; b0/b1 are the blocks' packed weights, t0/t1 their last chunk (a tail copy or in place).
template <bool Two, bool Full>
inline void tile_step(const uint8_t* panel, size_t k64, size_t kc, const int8_t* b0,
                      const int8_t* b1, const int8_t* t0, const int8_t* t1, int32_t* acc) {
  _tile_zero(0);
  if (Two) _tile_zero(1);
  if (Full) _tile_zero(2);
  if (Two && Full) _tile_zero(3);
  auto chunk = [&](size_t c, const int8_t* w0, const int8_t* w1) {
    _tile_loadd(4, panel + c * 64, k64);
    _tile_loadd(6, w0, 64);
    _tile_dpbusd(0, 4, 6);
    if (Two) {
      _tile_loadd(7, w1, 64);
      _tile_dpbusd(1, 4, 7);
    }
    if (Full) {
      _tile_loadd(5, panel + 16 * k64 + c * 64, k64);
      _tile_dpbusd(2, 5, 6);
      if (Two) _tile_dpbusd(3, 5, 7);
    }
  };
  for (size_t c = 0; c + 1 < kc; ++c) chunk(c, b0 + c * kTileBytes, b1 + c * kTileBytes);
  chunk(kc - 1, t0, t1);
  _tile_stored(0, acc, 128);
  if (Two) _tile_stored(1, acc + 16, 128);
  if (Full) _tile_stored(2, acc + 16 * 32, 128);
  if (Two && Full) _tile_stored(3, acc + 16 * 32 + 16, 128);
}

// Rows [0, rows) of the chunk's panels (each MR rows, k64 bytes a row, one after another) times
// nc columns of w (kq quads a column), requantized into c. Column pairs outside, panels inside:
// a pair's weights (32 columns × k64 bytes) are read from memory once per chunk and from cache
// for its other panels.
template <int Form, class Out>
void chunk_gemm(const uint8_t* panels, size_t rows, size_t k64, size_t nc, size_t kq,
                const int8_t* w, const int8_t* tails, const int32_t* bias, size_t bias_stride,
                const int32_t* row_off, const float* scale, Out* c, size_t c_stride,
                const OutStage& os) {
  alignas(64) int32_t acc[MR * 32];
  const size_t kc = k64 / 64, nb = (nc + NR - 1) / NR;
  for (size_t j = 0; j < nb; j += 2) {
    const bool two = j + 1 < nb;
    const int8_t* b0 = w + j * kq * 64;
    const int8_t* b1 = two ? b0 + kq * 64 : b0;
    const int8_t* t0 = tails ? tails + j * kTileBytes : b0 + (kc - 1) * kTileBytes;
    const int8_t* t1 = tails ? t0 + (two ? kTileBytes : 0) : b1 + (kc - 1) * kTileBytes;
    __m512i corr[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    if constexpr (Form == 1) {
      corr[0] = column_corr(b0, kq);
      if (two) corr[1] = column_corr(b1, kq);
    }
    for (size_t r0 = 0; r0 < rows; r0 += MR) {
      const uint8_t* panel = panels + r0 * k64;
      const size_t rn = rows - r0 < MR ? rows - r0 : MR;
      const bool full = rn > 16;
      if (two && full) tile_step<true, true>(panel, k64, kc, b0, b1, t0, t1, acc);
      else if (two) tile_step<true, false>(panel, k64, kc, b0, b1, t0, t1, acc);
      else if (full) tile_step<false, true>(panel, k64, kc, b0, b1, t0, t1, acc);
      else tile_step<false, false>(panel, k64, kc, b0, b1, t0, t1, acc);
      for (size_t jj = 0; jj < (two ? 2u : 1u); ++jj) {
        const size_t n0 = (j + jj) * NR, nj = nc - n0 < NR ? nc - n0 : NR;
        const __mmask16 m = nj == NR ? __mmask16(0xFFFF) : __mmask16((1u << nj) - 1);
        const int32_t* br = bias + r0 * bias_stride + n0;
        Out* cr = c + r0 * c_stride + n0;
        const int32_t* ro = row_off ? row_off + r0 : nullptr;
        auto sum = [&](size_t r) {  // accumulator + bias (+ row offset) − correction of row r
          __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + r * 32 + jj * NR),
                                       _mm512_loadu_si512(br + r * bias_stride));
          if (ro) v = _mm512_add_epi32(v, _mm512_set1_epi32(ro[r]));
          return _mm512_sub_epi32(v, corr[jj]);
        };
        size_t r = 0;
        if constexpr (sizeof(Out) == 1) {
          if (!os.guard)
            for (; r + 4 <= rn; r += 4)
              store_rows4<Out>(sum(r), sum(r + 1), sum(r + 2), sum(r + 3), scale + n0, m,
                               cr + r * c_stride, c_stride, os);
        }
        for (; r < rn; ++r) store_row<Out>(sum(r), scale + n0, m, cr + r * c_stride, os);
      }
    }
  }
}

thread_local WorkBuffer t_panel, t_tails;

// A chunk's panels take at most this many bytes (or one panel): L2 holds them beside the
// weights of a column pair and the output rows.
constexpr size_t kChunkBytes = 384 << 10;

// Shared by both entry points: sets up the tiles and tails, then, a chunk of panels at a time,
// runs fill(r0, rn, k64, panel) for each panel of up to 32 rows and chunk_gemm over them.
template <int Form, class Out, class Fill>
void run(size_t mr, size_t nc, size_t kq, const int8_t* w, const int32_t* bias,
         size_t bias_stride, const int32_t* row_off, const float* scale, void* c_out,
         size_t c_stride, const Q8Requant& rq, Fill fill) {
  if (mr == 0 || nc == 0) return;
  const size_t k64 = (kq + 15) / 16 * 64, nb = (nc + NR - 1) / NR;
  const size_t per_chunk = MR * std::max<size_t>(1, kChunkBytes / (MR * k64));  // rows
  const size_t chunk_rows = std::min((mr + MR - 1) / MR * MR, per_chunk);
  uint8_t* const panels = t_panel.get(chunk_rows * k64 + 64);  // + a copy_run overshoot
  int8_t* tails = nullptr;
  if (kq % 16) {
    tails = reinterpret_cast<int8_t*>(t_tails.get(nb * kTileBytes));
    make_tails(w, nb, kq, tails);
  }
  const OutStage os(rq);
  Out* c = static_cast<Out*>(c_out);
  _tile_loadconfig(&kConfig);
  for (size_t c0 = 0; c0 < mr; c0 += chunk_rows) {
    const size_t rows = mr - c0 < chunk_rows ? mr - c0 : chunk_rows;
    for (size_t r0 = 0; r0 < rows; r0 += MR) {
      const size_t rn = rows - r0 < MR ? rows - r0 : MR;
      uint8_t* const panel = panels + r0 * k64;
      fill(c0 + r0, rn, k64, panel);
      zero_rows(panel, rn, rn > 16 ? MR : 16, k64);
    }
    chunk_gemm<Form, Out>(panels, rows, k64, nc, kq, w, tails, bias + c0 * bias_stride,
                          bias_stride, row_off ? row_off + c0 : nullptr, scale,
                          c + c0 * c_stride, c_stride, os);
  }
  _tile_release();
}

template <int Form, class In, class Out>
void gemm_impl(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const int32_t* row_off,
               const float* scale, void* c_out, size_t c_stride, const Q8Requant& rq) {
  const __m512i f = operand_flip<In>();
  const uint8_t* const* rows = reinterpret_cast<const uint8_t* const*>(a);
  run<Form, Out>(mr, nc, (k + 3) / 4, w, bias, bias_stride, row_off, scale, c_out, c_stride, rq,
                 [&](size_t r0, size_t rn, size_t k64, uint8_t* panel) {
                   for (size_t r = 0; r < rn; ++r) copy_run(rows[r0 + r], k, f, panel + r * k64);
                 });
}

template <int Form, class In, class Out>
void gemm_32x32(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                const int32_t* bias, size_t bias_stride, const float* scale, void* c_out,
                size_t c_stride, const Q8Requant& rq) {
  gemm_impl<Form, In, Out>(mr, nc, k, a, w, bias, bias_stride, nullptr, scale, c_out, c_stride,
                           rq);
}

template <class In, class Out>
void gemm_32x32_off(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                    const int32_t* bias, const int32_t* row_off, const float* scale,
                    void* c_out, size_t c_stride, const Q8Requant& rq) {
  gemm_impl<0, In, Out>(mr, nc, k, a, w, bias, 0, row_off, scale, c_out, c_stride, rq);
}

// Indirect rows (see Q8GemmX8IndirectFn): row r of group g gathered from a[(g·taps + t)·MR + r]
// into the panel (one group a panel).
template <int Form, class In, class Out>
void igemm_32x32(size_t mr, size_t nc, size_t taps, size_t cg, const void* const* a,
                 const int8_t* w, const int32_t* bias, const float* scale, void* c_out,
                 size_t c_stride, const Q8Requant& rq) {
  const __m512i f = operand_flip<In>();
  const uint8_t* const* ptrs = reinterpret_cast<const uint8_t* const*>(a);
  run<Form, Out>(mr, nc, (taps * cg + 3) / 4, w, bias, 0, nullptr, scale, c_out, c_stride, rq,
                 [&](size_t r0, size_t rn, size_t k64, uint8_t* panel) {
                   const uint8_t* const* g = ptrs + r0 * taps;
                   if (cg < 32) {  // short taps (kernel rows of a few channels): ymm copies
                     const __mmask32 m = (__mmask32{1} << cg) - 1;
                     const __m256i f8 = _mm512_castsi512_si256(f);
                     for (size_t r = 0; r < rn; ++r) {
                       uint8_t* dst = panel + r * k64;
                       _mm512_storeu_si512(dst + k64 - 64, _mm512_setzero_si512());
                       for (size_t t = 0; t < taps; ++t) {
                         const __m256i v = _mm256_maskz_loadu_epi8(m, g[t * MR + r]);
                         _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + t * cg),
                                             std::is_same<In, uint8_t>::value
                                                 ? v : _mm256_maskz_mov_epi8(m, _mm256_xor_si256(v, f8)));
                       }
                     }
                     return;
                   }
                   for (size_t r = 0; r < rn; ++r) {  // (rows in order: a tap's overshoot
                     uint8_t* dst = panel + r * k64;       // is overwritten by what follows)
                     _mm512_storeu_si512(dst + k64 - 64, _mm512_setzero_si512());
                     for (size_t t = 0; t < taps; ++t) copy_run(g[t * MR + r], cg, f, dst + t * cg);
                   }
                 });
}

}  // namespace

#define EDGERT_X8_IROW(F, In) {igemm_32x32<F, In, uint8_t>, igemm_32x32<F, In, int8_t>, \
                               igemm_32x32<F, In, float>}
#define EDGERT_X8_ROW(F, In) {gemm_32x32<F, In, uint8_t>, gemm_32x32<F, In, int8_t>, \
                              gemm_32x32<F, In, float>}
const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_32x32c4__amx = {
    "q8_gemm_x8_minmax_fp32_ukernel_32x32c4__amx", MR, NR,
    {{EDGERT_X8_ROW(0, uint8_t), EDGERT_X8_ROW(0, int8_t)},
     {EDGERT_X8_ROW(1, uint8_t), EDGERT_X8_ROW(1, int8_t)}},
    nullptr, q8_gemm_x8_scan_pack__avx2, true,  // the AVX2 packing: its blocks are B tiles
    {{EDGERT_X8_IROW(0, uint8_t), EDGERT_X8_IROW(0, int8_t)},
     {EDGERT_X8_IROW(1, uint8_t), EDGERT_X8_IROW(1, int8_t)}},
    nullptr, nullptr, q8_gemm_x8_gather_taps__avx2,
    size_t{1} << 40, true,  // every column in one call: the rows are copied once
    {{gemm_32x32_off<uint8_t, uint8_t>, gemm_32x32_off<uint8_t, int8_t>,
      gemm_32x32_off<uint8_t, float>},
     {gemm_32x32_off<int8_t, uint8_t>, gemm_32x32_off<int8_t, int8_t>,
      gemm_32x32_off<int8_t, float>}}};
#undef EDGERT_X8_ROW
#undef EDGERT_X8_IROW

}  // namespace edgert
