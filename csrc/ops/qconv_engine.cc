// The int8 conv engine (see qconv.h). Depthwise convs run a direct kernel over indirection rows;
// every other conv (and qgemm) runs the byte-form GEMM when the ISA has one and the weights allow
// an exact form (rows straight from NHWC for 1x1 convs, byte im2col tiles otherwise), else the
// int16 q8-gemm on im2col tiles. Work items are (pixel tile, group, column part); each output
// element is one exact integer sum, so results do not depend on how items are split over threads.
#include <algorithm>
#include <atomic>
#include <functional>
#include <unordered_set>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <memory>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/q8-dwconv/q8-dwconv.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"
#include "kernels/x8-lut/x8-lut.h"
#include "ops/qconv.h"
#include "runtime/aligned.h"
#include "runtime/scratch.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kScratchBytes = 128 << 10;  // im2col tile: fits L2 next to a weight block
constexpr size_t kWeightBlockBytes = 32 << 10;  // packed W columns reused across a tile's rows
constexpr size_t kOneTileBytes = 512 << 10;  // the largest im2col tile (L2 has room beside it)
// Waking a worker costs tens of microseconds on a busy machine: a chunk gets at least this many
// multiply-adds (about 10 us of kernel time), so small layers run on the calling thread alone.
constexpr size_t kMinChunkMacs = 256 << 10;

// Fingerprints of packing layouts, stored with prepacked weights: a kernel's name plus a hash of
// what its packing writes for a fixed probe, so weights packed by any other layout (another ISA,
// another edgert) are never used as they are.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string fingerprint(const char* name, uint64_t h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(name) + "/" + hex;
}

// Probe weights: 48 channels (3 column or channel blocks), 9 taps of varied i8 values and zps.
constexpr size_t kProbeC = 48, kProbeK = 9;
struct Probe {
  int8_t w[kProbeC * kProbeK];
  int32_t zp[kProbeC];
  Probe() {
    for (size_t i = 0; i < kProbeC * kProbeK; ++i) w[i] = int8_t(int((i * 37 + 11) % 251) - 125);
    for (size_t c = 0; c < kProbeC; ++c) zp[c] = int32_t(c % 3);
  }
};

const std::string& dw_layout() {
  static const std::string fp = [] {
    const Q8DwConvUKernel& uk = q8_dwconv_ukernel();
    const Probe pr;
    std::vector<int16_t> a(q8_dwconv_packed_size(kProbeC, kProbeK), 0);
    (uk.pack ? uk.pack : q8_dwconv_pack_w)(kProbeC, kProbeK, pr.w, false, pr.zp, a.data());
    uint64_t h = fnv1a(a.data(), a.size() * 2);
    if (uk.pack3x3) {
      std::vector<int16_t> b(q8_dwconv_packed_size_3x3(kProbeC), 0);
      uk.pack3x3(kProbeC, kProbeK, pr.w, false, pr.zp, b.data());
      h = fnv1a(b.data(), b.size() * 2, h);
    }
    // The byte form: 80 channels (a 64-channel block and an int16 tail), 32 and 16 (two and four
    // pixels a vector).
    for (size_t c : {size_t{80}, size_t{32}, size_t{16}}) {
      if (!uk.pack3x3b8) break;
      std::vector<int8_t> w(c * 9);
      std::vector<int32_t> zp(c);
      for (size_t i = 0; i < w.size(); ++i) w[i] = pr.w[i % (kProbeC * kProbeK)];
      for (size_t i = 0; i < c; ++i) zp[i] = pr.zp[i % kProbeC];
      std::vector<int16_t> b(q8_dwconv_packed_size_3x3(c), 0);
      uk.pack3x3b8(c, kProbeK, w.data(), false, zp.data(), b.data());
      h = fnv1a(b.data(), b.size() * 2, h);
    }
    return fingerprint(uk.name, h);
  }();
  return fp;
}

// The byte-form layout is one for every ISA (q8-gemm-x8.h): the generic packing's fingerprint.
std::string x8_layout_of(size_t nr) {
  const Probe pr;
  std::vector<int8_t> a(q8_gemm_x8_packed_size(kProbeC, kProbeK, nr), 0);
  q8_gemm_pack_x8(kProbeC, kProbeK, pr.w, false, kProbeK, pr.zp, nr, a.data());
  return fingerprint("q8-gemm-x8", fnv1a(a.data(), a.size()));
}

std::string x8_layout(size_t nr) {
  static const std::string fp16 = x8_layout_of(16);  // every byte kernel's block so far
  return nr == 16 ? fp16 : x8_layout_of(nr);
}

// What a thread's ring of padded depthwise input rows (run_dw_padded) holds: the op call that
// filled it (0: none), where, and the input row in each slot (SIZE_MAX: none).
struct DwRing {
  uint64_t call = 0;
  const uint8_t* mem = nullptr;
  size_t held[5];
};
thread_local DwRing t_dw_ring;

// A number no other depthwise call of this process has: a ring filled by another call (another
// op, another run, another thread's run of this op) never matches.
uint64_t next_ring_call() {
  static std::atomic<uint64_t> calls{0};
  return calls.fetch_add(1, std::memory_order_relaxed) + 1;
}

size_t grain_for(size_t item_macs) {
  return std::max<size_t>(1, kMinChunkMacs / std::max<size_t>(1, item_macs));
}

constexpr int64_t kWidePairs = 2;  // x8_form of wide_pairs_ layers
// x8_form of row_zp layers (delta_): the packing holds v = W − z0 (z0 = 128 for u8 weights, 0
// for i8), the rest of each channel's zero point, delta = w_zp − z0, is applied per row.
constexpr int64_t kRowZp = 3;

inline int32_t row_zp_base(DType w_type) { return w_type == DType::u8 ? 128 : 0; }

// Σ of a row's k input bytes, as u8 or i8 values (psadbw where SSE2 is baseline).
int32_t row_sum(const uint8_t* p, size_t k, bool u8) {
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128(), flip = _mm_set1_epi8(u8 ? 0 : char(0x80));
  __m128i acc = zero;
  size_t j = 0;
  for (; j + 16 <= k; j += 16)
    acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i*)(p + j)),
                                                        flip), zero));
  if (j < k) {  // the last k − j bytes: the row's last 16 (masked), or a copy of a short row
    const size_t rem = k - j;
    __m128i v;
    if (k >= 16) {
      alignas(16) static const uint8_t kKeep[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                    0, 255, 255, 255, 255, 255, 255, 255, 255,
                                                    255, 255, 255, 255, 255, 255, 255, 255};
      v = _mm_and_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i*)(p + k - 16)), flip),
                        _mm_loadu_si128((const __m128i*)(kKeep + rem)));
    } else {
      alignas(16) uint8_t t[16] = {};
      std::memcpy(t, p, k);
      const __m128i keep = _mm_cmplt_epi8(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                        13, 14, 15),
                                          _mm_set1_epi8(static_cast<char>(k)));
      v = _mm_and_si128(_mm_xor_si128(_mm_load_si128((const __m128i*)t), flip), keep);
    }
    acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));
  }
  const uint32_t s = uint32_t(_mm_cvtsi128_si32(acc)) +
                     uint32_t(_mm_cvtsi128_si32(_mm_unpackhi_epi64(acc, acc)));
  return int32_t(s - (u8 ? 0 : uint32_t(128 * k)));
#else
  uint32_t s = 0;
  for (size_t j = 0; j < k; ++j) s += u8 ? uint32_t(p[j]) : uint32_t(int32_t(int8_t(p[j])));
  return int32_t(s);
#endif
}
constexpr size_t kMaxIndirectMr = 64;  // the largest mr of a kernel with an indirect form

int out_index(DType t) { return t == DType::u8 ? 0 : t == DType::i8 ? 1 : 2; }

// The channels' w' = W − w_zp, by channel: t[kk·n + col].
std::vector<int16_t> w_prime_by_channel(const uint8_t* w, bool w_u8, const int32_t* w_zp,
                                        size_t n, size_t k) {
  std::vector<int16_t> t(k * n);
  for (size_t col = 0; col < n; ++col)
    for (size_t kk = 0; kk < k; ++kk)
      t[kk * n + col] = static_cast<int16_t>(
          (w_u8 ? int32_t{w[col * k + kk]} : int32_t{static_cast<int8_t>(w[col * k + kk])}) -
          w_zp[col]);
  return t;
}

// Whether channels x and y (n columns each of t) pass the pair test side by side in every
// column (branch-free on int16 lanes: the compiler vectorizes it).
bool pair_passes(const int16_t* x, const int16_t* y, size_t n) {
  int bad = 0;
  for (size_t col = 0; col < n; ++col) {
    const int16_t xa = x[col], yb = y[col];
    const int16_t pos = static_cast<int16_t>((xa > 0 ? xa : 0) + (yb > 0 ? yb : 0));
    const int16_t neg = static_cast<int16_t>((xa < 0 ? xa : 0) + (yb < 0 ? yb : 0));
    bad |= (pos > 128) | (neg < -128);
  }
  return bad == 0;
}

// A perfect matching of `count` <= 64 channels, bit j of partners[i] set when i and j may sit
// side by side (with an odd count one channel is left for the zero pad): depth first, the channel
// with the fewest partners left first, sets of channels known to have none remembered, at most
// `budget` steps. out: the pairs in order, the lone channel last. False when none was found.
bool perfect_matching(const uint64_t* partners, size_t count, size_t budget, uint8_t* out) {
  std::unordered_set<uint64_t> dead;
  std::vector<uint8_t> pairs(count);
  size_t steps = 0;
  std::function<bool(uint64_t, size_t)> solve = [&](uint64_t left, size_t pos) -> bool {
    if (left == 0) return true;
    if (++steps > budget || dead.count(left)) return false;
    if (__builtin_popcountll(left) % 2 == 1) {  // the odd channel out: any one, found first
      for (uint64_t m = left; m; m &= m - 1) {
        const int i = __builtin_ctzll(m);
        pairs[pos] = static_cast<uint8_t>(i);
        if (solve(left & ~(uint64_t(1) << i), pos + 1)) return true;
      }
    } else {
      int best = -1, fewest = 99;
      for (uint64_t m = left; m; m &= m - 1) {
        const int i = __builtin_ctzll(m), c = __builtin_popcountll(partners[i] & left);
        if (c < fewest) fewest = c, best = i;
      }
      for (uint64_t m = partners[best] & left; m; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        pairs[pos] = static_cast<uint8_t>(best), pairs[pos + 1] = static_cast<uint8_t>(j);
        if (solve(left & ~(uint64_t(1) << best) & ~(uint64_t(1) << j), pos + 2)) return true;
      }
    }
    dead.insert(left);
    return false;
  };
  const uint64_t all = count == 64 ? ~uint64_t(0) : (uint64_t(1) << count) - 1;
  if (!solve(all, 0)) return false;
  const size_t first = count % 2;  // the lone channel, found first, goes last beside the pad
  for (size_t i = first; i < count; ++i) *out++ = pairs[i];
  if (first) *out = pairs[0];
  return true;
}

constexpr size_t kMatchingSteps = 200000;

}  // namespace

// pair_u8 in another K order (see Q8ConvOp::pair_with_permutation). A pair fails the test when
// its two weights have the same sign and a large sum; in trained layers the large weights sit in
// a few input channels, so pairing each heavy channel with a light one usually passes for every
// column. The K order is chosen within groups of 16 (a vpshufb per group reorders an A row, see
// q8_gemm_x8_permute_rows): a perfect matching of the channels that pass side by side, found
// exactly (MobileNetV2: the greedy pairing, heaviest channel first with the heaviest partner it
// passes with, missed it in 8 of its 36 layers, which then ran with moved weights or sign_s8).
std::vector<uint8_t> q8_pair_order(const uint8_t* w, bool w_u8, const int32_t* w_zp, size_t n,
                                   size_t k) {
  const size_t kpad = (k + 15) / 16 * 16;
  if (k < 4 || n * k > (size_t(1) << 22)) return {};  // the search is O(n·k·8) at worst
  const std::vector<int16_t> t = w_prime_by_channel(w, w_u8, w_zp, n, k);
  std::vector<uint8_t> mask(kpad);
  for (size_t g0 = 0; g0 < kpad; g0 += 16) {
    const size_t len = std::min<size_t>(16, k > g0 ? k - g0 : 0);
    for (size_t j = 0; j < 16; ++j) mask[g0 + j] = static_cast<uint8_t>(j);  // pads: identity
    if (len < 2) continue;
    uint64_t partners[16] = {};
    for (size_t i = 0; i < len; ++i)
      for (size_t j = i + 1; j < len; ++j)
        if (pair_passes(t.data() + (g0 + i) * n, t.data() + (g0 + j) * n, n))
          partners[i] |= uint64_t(1) << j, partners[j] |= uint64_t(1) << i;
    // (at most 2^16 subsets: the budget never cuts a group short)
    if (!perfect_matching(partners, len, size_t(1) << 20, mask.data() + g0)) return {};
  }
  return mask;
}

// The same across groups (k <= kQ8GemmX8MaxGPermK): q8_gemm_x8_gpermute_rows' order.
std::vector<uint8_t> q8_pair_order_global(const uint8_t* w, bool w_u8, const int32_t* w_zp,
                                          size_t n, size_t k) {
  if (k < 4 || k > kQ8GemmX8MaxGPermK || n * k > (size_t(1) << 22)) return {};
  const std::vector<int16_t> t = w_prime_by_channel(w, w_u8, w_zp, n, k);
  std::vector<uint64_t> partners(k);
  for (size_t a = 0; a < k; ++a)
    for (size_t b = a + 1; b < k; ++b)
      if (pair_passes(t.data() + a * n, t.data() + b * n, n))
        partners[a] |= uint64_t(1) << b, partners[b] |= uint64_t(1) << a;
  std::vector<uint8_t> order((k + 15) / 16 * 16);
  if (!perfect_matching(partners.data(), k, kMatchingSteps, order.data())) return {};
  for (size_t j = k; j < order.size(); ++j) order[j] = static_cast<uint8_t>(j);
  return order;
}

bool q8_pairs_pass(const uint8_t* w, bool w_u8, const int32_t* w_zp, size_t n, size_t k) {
  const std::vector<int16_t> t = w_prime_by_channel(w, w_u8, w_zp, n, k);
  for (size_t k1 = 1; k1 < k; k1 += 2)
    if (!pair_passes(t.data() + (k1 - 1) * n, t.data() + k1 * n, n)) return false;
  return true;
}

namespace {

class Q8ConvOp : public Op {
  struct Corr {  // a weight moved out of the pair_u8 packing: its column (in the group), k, w'
    uint32_t col, k;
    int32_t d;
  };

 public:
  Q8ConvOp(const OpSpec& spec, const Q8ConvDesc& desc)
      : d_(desc), bias_(desc.bias, desc.bias + desc.m), scale_(desc.scale, desc.scale + desc.m) {
    std::vector<uint8_t> raw;  // prepacked weights unpacked for another layout
    init(spec, raw);
    d_.w = nullptr;  // the model's weights are not read after creation
    if (desc.out_table) {
      std::memcpy(out_lut_, desc.out_table, 256);
      lut_fn_ = x8_lut_rows_ukernel();
      d_.out_table = nullptr;
    }
    if (desc.x_mul) {
      mul_hw_ = desc.geom.h * desc.geom.w;
      mul_fn_ = q8_vmul_direct();
      if (!mul_fn_) {  // the scalar form: every result by (x byte, s byte), as the qmul op's
        mul_table_.resize(65536);
        q8_vmul_fp32_table(desc.mul, desc.x_type == DType::i8, desc.mul_s_signed,
                           /*row_is_a=*/true, mul_table_.data());
      }
    }
  }

  std::vector<std::string> unread_arrays() const override { return {"weight", "out_table"}; }

  // The byte-form weights as packed here, so a compiled model can skip the packing (and the
  // form scan) at load; only for the byte-form GEMM path.
  PackedAttrs packed_attrs() const override {
    PackedAttrs pa;
    auto arr = [](DType t, size_t n, const void* data) {
      Attrs::Value v;
      v.kind = Attrs::Value::Arr;
      v.arr.dtype = t;
      v.arr.shape = {int64_t(n)};
      v.arr.data = data;
      return v;
    };
    auto num = [](int64_t i) {
      Attrs::Value v;
      v.kind = Attrs::Value::Int;
      v.i = i;
      return v;
    };
    auto str = [](const std::string& s) {
      Attrs::Value v;
      v.kind = Attrs::Value::Str;
      v.s = s;
      return v;
    };
    if (depthwise_) {  // the model's weight stays too: another ISA packs it its own way
      pa.add = {{"dw_layout", str(dw_layout())},
                {"dw_packed", arr(DType::u8, 2 * q8_dwconv_packed_size(d_.m, k_), dw_w_)}};
      if (dw_row_fn_ && dw_kh_ == 3)  // (5x5 rows are packed at creation, never stored)
        pa.add["dw_packed3"] = arr(DType::u8, 2 * q8_dwconv_packed_size_3x3(d_.m), dw_w3_);
      return pa;
    }
    if (!xk_ || !zp0_.empty()) return pa;  // (init_row_zp_moved's layers pack at load)
    Attrs::Value shape, wt;
    shape.kind = Attrs::Value::Ints, shape.ints = d_.w_shape;
    wt.kind = Attrs::Value::Str, wt.s = dtype_name(d_.w_type);
    pa.drop = {"weight"};
    pa.add = {{"x8_weight", arr(DType::i8, group_packed_ * d_.group, w8_)},
              {"x8_bias", arr(DType::i32, bias_.size(), bias_.data())},
              {"x8_scale", arr(DType::f32, scale_.size(), scale_.data())},
              {"x8_form", num(!delta_.empty() ? kRowZp : wide_pairs_ ? kWidePairs : sign_ ? 1 : 0)},
              {"x8_nr", num(int64_t(xk_->nr))},
              {"x8_layout", str(x8_layout(xk_->nr))},
              {"weight_shape", shape},
              {"weight_dtype", wt}};
    if (!corr_.empty()) {  // the moved weights: (output channel, k, w') triples
      corr_flat_.clear();
      for (size_t gi = 0; gi < corr_.size(); ++gi)
        for (const Corr& c : corr_[gi])
          corr_flat_.insert(corr_flat_.end(), {int32_t(gi * ng_ + c.col), int32_t(c.k), c.d});
      pa.add["x8_corr"] = arr(DType::i32, corr_flat_.size(), corr_flat_.data());
    }
    if (!perm_.empty()) pa.add["x8_perm"] = arr(DType::u8, perm_.size(), perm_.data());
    if (!gperm_.empty()) pa.add["x8_gperm"] = arr(DType::u8, gperm_.size(), gperm_.data());
    return pa;
  }

 private:
  void init(const OpSpec& spec, std::vector<uint8_t>& raw) {
    const Q8ConvDesc& d = d_;
    const Q8ConvGeom& g = d.geom;
    cg_ = g.c / d.group;
    ng_ = d.m / d.group;
    k_ = g.kh * g.kw * cg_;
    pixels_ = d.batch * g.oh * g.ow;
    y_size_ = d.y_type == DType::f32 ? 4 : 1;
    depthwise_ = d.group == g.c && d.m == g.c && d.group > 1;
    if (d.pre.w) {
      EDGERT_EXPECT(spec, !depthwise_, "prepacked byte-form weights given for a depthwise conv");
      check_prepacked(spec);
      EDGERT_EXPECT(spec, d.pre.layout == x8_layout(d.pre.nr),
                    "byte-form weights packed in layout '" + d.pre.layout + "', this edgert "
                    "packs '" + x8_layout(d.pre.nr) + "': recompile the model");
      const Q8GemmX8UKernel* xk = q8_gemm_x8_ukernel_for(pixels_, ng_, k_);
      // A permuted packing needs a kernel that reorders rows and sums pairs in int16 (an
      // exact_pairs kernel repacks: it runs every layer in the model's K order).
      if (xk && xk->nr == d.pre.nr && (d.pre.form < kWidePairs || xk->exact_pairs) &&
          (!d.pre.perm || (xk->permute_rows && !xk->exact_pairs)) &&
          (!d.pre.gperm || (xk->gpermute_rows && !xk->exact_pairs)))
        return adopt_x8(spec, xk);
      unpack_prepacked(spec, raw);  // this ISA packs its own way
    }
    if (depthwise_) {
      const Q8DwConvUKernel& uk = q8_dwconv_ukernel();
      dw_fn_ = uk.fn[d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
      const size_t size = q8_dwconv_packed_size(d.m, k_);
      if (d.dw_pre.w && d.dw_pre.layout == dw_layout() && d.dw_pre.w_bytes == int64_t(2 * size)) {
        dw_w_ = d.dw_pre.w;  // in place, in the model's buffer
      } else {
        packed_.resize(size);
        (uk.pack ? uk.pack : q8_dwconv_pack_w)(d.m, k_, d.w, d.w_type == DType::u8, d.w_zp,
                                               packed_.data());
        dw_w_ = packed_.data();
      }
      dw_run_w_ = dw_w_;
      pad_row_.assign(g.c, static_cast<uint8_t>(d.x_zp));  // two's complement for i8 too
      init_dw_rows(uk);
      if (dw_padded_ || dw_columns_) return;  // every pixel through the row kernel
      // The byte-form per-pixel kernel where the ISA has one, the output is bytes, there is a
      // whole 64-channel block and every w' fits int8 (onnxruntime's symmetric int8 weights
      // always do): 5x5 layers without row kernels, 7x7 ones, the border pixels of 3x3 ones.
      const bool x_i8 = d.x_type == DType::i8;
      if (uk.pack_b8 && d.w && d.y_type != DType::f32 && d.m >= 64) {
        packed_b8_.resize(q8_dwconv_packed_size_b8(d.m, k_));
        if (uk.pack_b8(d.m, k_, d.w, d.w_type == DType::u8, d.w_zp, bias_.data(), scale_.data(),
                       x_i8, packed_b8_.data())) {
          dw_fn_ = uk.fnb8[x_i8 ? 1 : 0][out_index(d.y_type)];
          dw_run_w_ = reinterpret_cast<const int16_t*>(packed_b8_.data());
        } else {
          packed_b8_ = {};
        }
      }
      return;
    }
    if (init_x8()) return;
    uk_ = &q8_gemm_ukernel();
    const Q8GemmFn fns[3] = {uk_->out_u8, uk_->out_i8, uk_->out_f32};
    gemm_fn_ = fns[out_index(d.y_type)];
    kp_ = q8_gemm_kp(k_);
    group_packed_ = q8_gemm_packed_size(ng_, k_, uk_->nr);
    packed_.resize(group_packed_ * d.group);
    const size_t w_esize = 1;
    for (size_t gi = 0; gi < d.group; ++gi) {
      uk_->pack(ng_, k_, static_cast<const uint8_t*>(d.w) + gi * ng_ * k_ * w_esize,
                d.w_type == DType::u8, k_, d.w_zp + gi * ng_, uk_->nr,
                packed_.data() + gi * group_packed_);
    }
    const size_t mr = uk_->mr;
    tile_rows_ = std::clamp<size_t>(kScratchBytes / (kp_ * 2) / mr * mr, 8 * mr, 256);
    tile_rows_ = even_tiles(std::min(tile_rows_, (pixels_ + mr - 1) / mr * mr), mr);
    tile_cap_ = tile_rows_ + mr - 1;  // see tile_span
    const size_t nr = uk_->nr;
    col_block_ = std::max(nr, kWeightBlockBytes / (kp_ * 2) / nr * nr);
  }

 public:
  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (pixels_ == 0) return;
    const uint8_t* x = static_cast<const uint8_t*>(in[0]);
    uint8_t* y = static_cast<uint8_t*>(out[0]);
    if (depthwise_) return run_dw(x, y, pool);
    const uint8_t* s = d_.x_mul ? static_cast<const uint8_t*>(in[1]) : nullptr;
    if (xk_) return run_x8(x, s, y, pool);
    // (the int16 kernels' im2col reads the image: the multiply's bytes made whole first)
    run_gemm(s ? mul_whole(x, s, pool) : x, y, pool);
  }

 private:
  // The byte form when this ISA has one and the weights allow it (see q8-gemm-x8.h).
  bool init_x8() {
    xk_ = q8_gemm_x8_ukernel_for(pixels_, ng_, k_);
    if (!xk_) return false;
    const Q8ConvDesc& d = d_;
    const bool w_u8 = d.w_type == DType::u8;
    const size_t nr = xk_->nr, mr = xk_->mr;
    // One pass per group packs, tests the forms and sums the columns; the layer takes the
    // slowest form any group needs (pair_u8 < sign_s8 < int16).
    group_packed_ = q8_gemm_x8_packed_size(ng_, k_, nr);
    // scan_pack writes every byte: no zero fill of megabytes first.
    packed8_ = aligned_array<int8_t>(group_packed_ * d.group);
    std::vector<int32_t> sums(d.m);
    Q8GemmForm form = Q8GemmForm::pair_u8;
    const auto scan_pack = xk_->scan_pack ? xk_->scan_pack : q8_gemm_x8_scan_pack;
    for (size_t gi = 0; gi < d.group && form != Q8GemmForm::int16; ++gi) {
      form = std::max(form, scan_pack(ng_, k_, static_cast<const uint8_t*>(d.w) +
                                                              gi * ng_ * k_,
                                                 w_u8, k_, d.w_zp + gi * ng_, nr,
                                                 packed8_.get() + gi * group_packed_,
                                                 sums.data() + gi * ng_));
    }
    if (form == Q8GemmForm::int16 && xk_->exact_pairs) {
      init_row_zp(scan_pack, sums);
      form = Q8GemmForm::pair_u8;
      wide_pairs_ = true;
    } else if (form == Q8GemmForm::int16) {
      form = init_row_zp_moved(scan_pack, sums);
      if (form == Q8GemmForm::int16) {
        packed8_.reset();
        return (xk_ = nullptr), false;
      }
    }
    if (form == Q8GemmForm::sign_s8 && xk_->exact_pairs) {
      form = Q8GemmForm::pair_u8;
      wide_pairs_ = true;
    } else if (form == Q8GemmForm::sign_s8 && xk_->permute_rows &&
               pair_with_permutation(scan_pack, sums)) {
      form = Q8GemmForm::pair_u8;
      corr_.clear();  // (row_zp: the reordered packing holds the weights moved before)
    } else if (form == Q8GemmForm::sign_s8 &&
               pair_with_corrections(scan_pack, static_cast<const uint8_t*>(d.w), sums)) {
      form = Q8GemmForm::pair_u8;
    }
    pick_row_off(form == Q8GemmForm::pair_u8);
    w8_ = packed8_.get();
    x8_fn_ = xk_->fn[form == Q8GemmForm::pair_u8 ? 0 : 1][d.x_type == DType::u8 ? 0 : 1]
                    [out_index(d.y_type)];
    sign_ = form == Q8GemmForm::sign_s8;
    srow_ = q8_gemm_x8_sign_row_bytes(k_);
    ngp_ = (ng_ + nr - 1) / nr * nr;
    std::vector<int32_t> b(d.m);
    q8_gemm_x8_bias_from_sums(d.m, sums.data(), form, d.x_type == DType::u8, d.bias, b.data());
    if (ngp_ == ng_) {  // no padding between groups: take the arrays as they are
      bias_ = std::move(b);
      return finish_x8(mr, nr);
    }
    bias_.assign(ngp_ * d.group, 0);
    scale_.assign(ngp_ * d.group, 0.0f);
    for (size_t gi = 0; gi < d.group; ++gi) {
      std::copy(b.begin() + gi * ng_, b.begin() + (gi + 1) * ng_, bias_.begin() + gi * ngp_);
      std::copy(d.scale + gi * ng_, d.scale + (gi + 1) * ng_, scale_.begin() + gi * ngp_);
    }
    return finish_x8(mr, nr);
  }

  // Weights no byte form takes as they are (u8 weights with a zero point other than 128, a w'
  // beyond int8, a −128 in a layer that fails the pair test), on a kernel whose byte products
  // are exact for every int8 weight: packed as
  // v = W − z0 (z0 = 128 for u8 weights, 0 for i8; every v an int8), and since Σ x·(W − w_zp) =
  // Σ x·v − delta·Σ x with delta = w_zp − z0, each row's bias gets −delta·Σ x (run_x8 sums the
  // rows it multiplies). onnxruntime's uint8 weights come this way. delta_ stays empty when every
  // delta is 0 (the −128 case).
  template <class ScanPack>
  void init_row_zp(ScanPack scan_pack, std::vector<int32_t>& sums) {
    const Q8ConvDesc& d = d_;
    const int32_t z0 = row_zp_base(d.w_type);
    const std::vector<int32_t> zp0(d.m, z0);
    for (size_t gi = 0; gi < d.group; ++gi)  // (the form it reports does not matter here)
      scan_pack(ng_, k_, static_cast<const uint8_t*>(d.w) + gi * ng_ * k_,
                d.w_type == DType::u8, k_, zp0.data() + gi * ng_, xk_->nr,
                packed8_.get() + gi * group_packed_, sums.data() + gi * ng_);
    set_row_zp();
  }

  // The same for kernels with int16 pair sums (AVX2): the packing is scanned as W − z0 (d_.w_zp
  // points at z0 from here on, so the form tests, reorderings and moved weights that follow all
  // work on v = W − z0). A layer that fails the pair test with a v of −128 in it (sign_s8 takes
  // |v| <= 127; a uint8 layer's smallest weight is usually 0) has those moved out of the packing
  // into per-row corrections like pair_u8's; init_x8 then still tries pair_u8 in another K order
  // or with moved weights on the whole layer. Returns the form, or int16 (everything restored)
  // when too many would move. Not stored in .edgert (packed_attrs): these layers pack at load.
  template <class ScanPack>
  Q8GemmForm init_row_zp_moved(ScanPack scan_pack, std::vector<int32_t>& sums) {
    const Q8ConvDesc& d = d_;
    const bool w_u8 = d.w_type == DType::u8;
    const int32_t* const zp = d.w_zp;
    set_row_zp();  // delta_ from the model's zero points
    zp0_.assign(d.m, row_zp_base(d.w_type));
    d_.w_zp = zp0_.data();
    auto scan = [&](const uint8_t* w) {
      Q8GemmForm f = Q8GemmForm::pair_u8;
      for (size_t gi = 0; gi < d.group; ++gi)
        f = std::max(f, scan_pack(ng_, k_, w + gi * ng_ * k_, w_u8, k_, zp0_.data() + gi * ng_,
                                  xk_->nr, packed8_.get() + gi * group_packed_,
                                  sums.data() + gi * ng_));
      return f;
    };
    const uint8_t* const w = static_cast<const uint8_t*>(d.w);
    Q8GemmForm form = scan(w);
    if (form == Q8GemmForm::int16) {
      const uint8_t low = w_u8 ? 0 : 0x80;  // the weight whose v is −128
      std::vector<uint8_t> moved(w, w + d.m * k_);
      std::vector<std::vector<Corr>> corr(d.group);
      size_t total = 0;
      for (size_t col = 0; col < d.m; ++col)
        for (size_t kk = 0; kk < k_; ++kk)
          if (moved[col * k_ + kk] == low) {
            moved[col * k_ + kk] = static_cast<uint8_t>(zp0_[col]);  // v = 0 in the packing
            corr[col / ng_].push_back({uint32_t(col % ng_), uint32_t(kk), -128});
            ++total;
          }
      // A moved weight costs a scalar multiply-add per row: at most one in 256 (the int16
      // q8-gemm, the alternative, is several times slower than the byte form).
      if (total <= d.m * k_ / 256 + 16) form = scan(moved.data());
      if (form == Q8GemmForm::int16) {
        d_.w_zp = zp, zp0_.clear(), delta_.clear(), off_fn_ = nullptr;
        return form;
      }
      corr_ = std::move(corr);
    }
    return form;
  }

  void set_row_zp() {
    const int32_t z0 = row_zp_base(d_.w_type);
    delta_.assign(d_.w_zp, d_.w_zp + d_.m);
    bool any = false;
    for (int32_t& v : delta_) any |= (v -= z0) != 0;
    if (!any) delta_.clear();
    uniform_delta_ = std::all_of(delta_.begin(), delta_.end(),
                                 [&](int32_t v) { return v == delta_[0]; });
  }

  // One delta for every channel (per-tensor weights), pair_u8 and no moved weights: the
  // kernel's per-row offsets, if it has them; else run_x8 builds per-row biases.
  void pick_row_off(bool pair_u8) {
    off_fn_ = !delta_.empty() && uniform_delta_ && pair_u8 && corr_.empty()
        ? xk_->row_off[d_.x_type == DType::u8 ? 0 : 1][out_index(d_.y_type)] : nullptr;
  }

  // pair_u8 with corrections. Most full-range layers fail the pair_u8 test on a few columns only
  // (a column holding ±127 whose pair partner has the same sign): the layer then runs the faster
  // pair_u8 form on weights with the second weight of each failing pair moved out (w' = 0 in the
  // packing), and each run adds x[k]·w' of every moved weight to its row's bias (per-row biases
  // of the kernel). The sum is the same exact integer. A moved weight costs a few cycles per row
  // (a scalar multiply-add into the row's bias), pair_u8 saves about a quarter of sign_s8's
  // 1/32 cycle per multiply-add: taken for at most one moved weight per 1024 of the layer's
  // weights (MobileNetV2 measured: 1/64 was slower than sign_s8, 1/1024 about 10 % faster); the
  // packing and sums are replaced only on success.
  template <class ScanPack>
  bool pair_with_corrections(ScanPack scan_pack, const uint8_t* w, std::vector<int32_t>& sums) {
    const Q8ConvDesc& d = d_;
    const bool w_u8 = d.w_type == DType::u8;
    std::vector<std::vector<Corr>> corr(d.group);
    size_t total = 0;
    const size_t limit = ng_ * d.group * k_ / 1024;
    auto value = [&](size_t col, size_t kk) {
      return (w_u8 ? int32_t{w[col * k_ + kk]} : int32_t{static_cast<int8_t>(w[col * k_ + kk])}) -
             d.w_zp[col];
    };
    for (size_t gi = 0; gi < d.group; ++gi) {
      for (size_t i = 0; i < ng_; ++i) {
        const size_t col = gi * ng_ + i;
        for (size_t k1 = 1; k1 < k_; k1 += 2) {
          const int32_t w0 = value(col, k1 - 1), w1 = value(col, k1);
          const int32_t pos = std::max(w0, 0) + std::max(w1, 0);
          const int32_t neg = std::min(w0, 0) + std::min(w1, 0);
          if (255 * pos <= 32767 && 255 * neg >= -32768) continue;
          if (++total > limit) return false;
          corr[gi].push_back({uint32_t(i), uint32_t(k1), w1});
        }
      }
    }
    std::vector<uint8_t> moved(w, w + d.m * k_);
    for (size_t gi = 0; gi < d.group; ++gi)
      for (const Corr& c : corr[gi])
        moved[(gi * ng_ + c.col) * k_ + c.k] = static_cast<uint8_t>(d.w_zp[gi * ng_ + c.col]);
    AlignedArray<int8_t> packed = aligned_array<int8_t>(group_packed_ * d.group);
    std::vector<int32_t> msums(d.m);
    for (size_t gi = 0; gi < d.group; ++gi) {
      if (scan_pack(ng_, k_, moved.data() + gi * ng_ * k_, w_u8, k_, d.w_zp + gi * ng_,
                    xk_->nr, packed.get() + gi * group_packed_, msums.data() + gi * ng_) !=
          Q8GemmForm::pair_u8)
        return false;
    }
    packed8_ = std::move(packed);
    sums = std::move(msums);
    corr_ = std::move(corr);
    return true;
  }

  // pair_u8 in another K order. A pair fails the test when its two weights have the same sign
  // and a large sum; in trained layers the large weights sit in a few input channels, so pairing
  // each heavy channel with a light one usually passes for every column. The K order is chosen
  // within groups of 16 (a vpshufb per group reorders an A row, see q8_gemm_x8_permute_rows):
  // greedily, the heaviest channel left takes the heaviest partner it passes with. The
  // order is kept only if the reordered weights pass the test outright (moved weights on top of
  // a reordered row cost more than they save). Tried before moving weights: a reordered row
  // costs one vpshufb per 16 bytes, moved weights scalar work per row and split kernel calls
  // (MobileNetV2, 1 thread: 27 of its 36 GEMM layers pass reordered, 0.13 ms faster than moving
  // weights where both work; its early layers, K 16-192, fail the plain test on 2-20 pairs, too
  // many to move, and ran sign_s8 before: 0.47 ms). Reordering a row costs less than preparing
  // a sign_s8 row, and pair_u8 needs a quarter fewer vector operations.
  template <class ScanPack>
  bool pair_with_permutation(ScanPack scan_pack, std::vector<int32_t>& sums) {
    const Q8ConvDesc& d = d_;
    const size_t n = d.m, k = k_;
    const bool w_u8 = d.w_type == DType::u8;
    const uint8_t* w = static_cast<const uint8_t*>(d.w);
    std::vector<uint8_t> mask = q8_pair_order(w, w_u8, d.w_zp, n, k), order;
    if (mask.empty() && d.group == 1 && xk_->gpermute_rows)
      order = q8_pair_order_global(w, w_u8, d.w_zp, n, k);  // channels moved between groups
    if (mask.empty() && order.empty()) return false;
    std::vector<uint8_t> wp(n * k);
    for (size_t col = 0; col < n; ++col)
      for (size_t kk = 0; kk < k; ++kk)
        wp[col * k + kk] = w[col * k + (order.empty() ? kk / 16 * 16 + mask[kk] : order[kk])];
    AlignedArray<int8_t> packed = aligned_array<int8_t>(group_packed_ * d.group);
    std::vector<int32_t> psums(d.m);
    Q8GemmForm form = Q8GemmForm::pair_u8;
    for (size_t gi = 0; gi < d.group; ++gi)
      form = std::max(form, scan_pack(ng_, k, wp.data() + gi * ng_ * k, w_u8, k,
                                      d.w_zp + gi * ng_, xk_->nr,
                                      packed.get() + gi * group_packed_, psums.data() + gi * ng_));
    // Moved weights on top of the reordering cost more than they save on layers this small.
    if (form != Q8GemmForm::pair_u8) return false;
    packed8_ = std::move(packed);
    sums = std::move(psums);
    perm_ = std::move(mask);
    gperm_ = std::move(order);
    return true;
  }

  // Sizes of prepacked weights against this layer's layout for their column block.
  void check_prepacked(const OpSpec& spec) const {
    const Q8Prepacked& p = d_.pre;
    const size_t ngp = (ng_ + p.nr - 1) / p.nr * p.nr;
    const int64_t w_len = int64_t(q8_gemm_x8_packed_size(ng_, k_, p.nr) * d_.group);
    const int64_t b_len = int64_t(ngp == ng_ ? d_.m : ngp * d_.group);
    EDGERT_EXPECT(spec, p.w_len == w_len, "x8_weight has " + std::to_string(p.w_len) +
                                      " bytes, the layout needs " + std::to_string(w_len));
    EDGERT_EXPECT(spec, p.bias_len == b_len && p.scale_len == b_len,
                "x8_bias and x8_scale need " + std::to_string(b_len) + " entries, have " +
                    std::to_string(p.bias_len) + " and " + std::to_string(p.scale_len));
  }

  // Uses the stored packing in place (the executor keeps the model's buffer alive).
  void adopt_x8(const OpSpec& spec, const Q8GemmX8UKernel* xk) {
    const Q8ConvDesc& d = d_;
    const Q8Prepacked& p = d.pre;
    xk_ = xk;
    sign_ = p.form == int(Q8GemmForm::sign_s8);
    wide_pairs_ = p.form == kWidePairs || p.form == kRowZp;
    if (p.form == kRowZp) set_row_zp();
    x8_fn_ = xk_->fn[sign_ ? 1 : 0][d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
    srow_ = q8_gemm_x8_sign_row_bytes(k_);
    ngp_ = (ng_ + p.nr - 1) / p.nr * p.nr;
    group_packed_ = q8_gemm_x8_packed_size(ng_, k_, p.nr);
    w8_ = p.w;
    corr_ = prepacked_corrections(spec);
    EDGERT_EXPECT(spec, corr_.empty() || !sign_, "x8_corr given for a sign_s8 layer");
    perm_ = prepacked_permutation(spec);
    EDGERT_EXPECT(spec, perm_.empty() || (!sign_ && !wide_pairs_),
                  "x8_perm given for a layer that is not pair_u8");
    gperm_ = prepacked_gpermutation(spec);
    EDGERT_EXPECT(spec, gperm_.empty() || (!sign_ && !wide_pairs_ && perm_.empty() && d.group == 1),
                  "x8_gperm given for a layer that is not a one-group pair_u8 layer without x8_perm");
    pick_row_off(!sign_);
    bias_.assign(p.bias, p.bias + p.bias_len);
    scale_.assign(p.scale, p.scale + p.scale_len);
    finish_x8(xk_->mr, xk_->nr);
  }

  // The stored moved weights (x8_corr triples), checked and grouped; sorted by column.
  std::vector<std::vector<Corr>> prepacked_corrections(const OpSpec& spec) const {
    const Q8Prepacked& p = d_.pre;
    std::vector<std::vector<Corr>> corr;
    if (!p.corr) return corr;
    EDGERT_EXPECT(spec, p.corr_len % 3 == 0, "x8_corr must hold (channel, k, w') triples");
    corr.resize(d_.group);
    for (int64_t i = 0; i < p.corr_len; i += 3) {
      const int32_t col = p.corr[i], kk = p.corr[i + 1], v = p.corr[i + 2];
      if (col < 0 || size_t(col) >= d_.m || kk < 0 || size_t(kk) >= k_ || v < -255 || v > 255)
        spec.fail("x8_corr entry " + std::to_string(i / 3) + " out of range");
      corr[size_t(col) / ng_].push_back({uint32_t(size_t(col) % ng_), uint32_t(kk), v});
    }
    for (auto& g : corr)
      std::stable_sort(g.begin(), g.end(), [](const Corr& a, const Corr& b) { return a.col < b.col; });
    return corr;
  }

  // The stored K order (x8_perm), checked: each group of 16 a permutation of its indices below
  // k, and the identity past k.
  std::vector<uint8_t> prepacked_permutation(const OpSpec& spec) const {
    const Q8Prepacked& p = d_.pre;
    if (!p.perm) return {};
    const size_t kpad = (k_ + 15) / 16 * 16;
    EDGERT_EXPECT(spec, p.perm_len == int64_t(kpad), "x8_perm has " + std::to_string(p.perm_len) +
                                                         " entries, K needs " + std::to_string(kpad));
    for (size_t g0 = 0; g0 < kpad; g0 += 16) {
      const size_t len = std::min<size_t>(16, k_ - g0);
      unsigned seen = 0;
      for (size_t j = 0; j < 16; ++j) {
        const unsigned v = p.perm[g0 + j];
        const bool ok = j < len ? v < len && !(seen >> v & 1) : v == j;
        if (!ok) spec.fail("x8_perm is not a permutation within group " + std::to_string(g0 / 16));
        if (j < len) seen |= 1u << v;
      }
    }
    return std::vector<uint8_t>(p.perm, p.perm + kpad);
  }

  // The stored K order across groups (x8_gperm), checked: a permutation of [0, k) in its first k
  // of round_up(k, 16) entries (k <= kQ8GemmX8MaxGPermK), the identity past k.
  std::vector<uint8_t> prepacked_gpermutation(const OpSpec& spec) const {
    const Q8Prepacked& p = d_.pre;
    if (!p.gperm) return {};
    const size_t kpad = (k_ + 15) / 16 * 16;
    EDGERT_EXPECT(spec, k_ <= kQ8GemmX8MaxGPermK, "x8_gperm given for K " + std::to_string(k_) +
                                                      " (at most " + std::to_string(kQ8GemmX8MaxGPermK) + ")");
    EDGERT_EXPECT(spec, p.gperm_len == int64_t(kpad), "x8_gperm has " + std::to_string(p.gperm_len) +
                                                          " entries, K needs " + std::to_string(kpad));
    uint64_t seen = 0;
    for (size_t j = 0; j < kpad; ++j) {
      const unsigned v = p.gperm[j];
      const bool ok = j < k_ ? v < k_ && !(seen >> v & 1) : v == j;
      if (!ok) spec.fail("x8_gperm is not a permutation of the layer's K channels");
      if (j < k_) seen |= uint64_t(1) << v;
    }
    return std::vector<uint8_t>(p.gperm, p.gperm + kpad);
  }

  // The model's weights back from the byte-form packing (w = w' + w_zp), for an ISA that packs
  // another way; a value outside the weight type's range means a corrupt file.
  void unpack_prepacked(const OpSpec& spec, std::vector<uint8_t>& raw) {
    const Q8Prepacked& p = d_.pre;
    const size_t nr = p.nr, kq = (k_ + 3) / 4, gp = q8_gemm_x8_packed_size(ng_, k_, nr);
    const int lo = d_.w_type == DType::u8 ? 0 : -128, hi = lo + 255;
    raw.resize(d_.m * k_);
    for (size_t gi = 0; gi < d_.group; ++gi) {
      for (size_t i = 0; i < ng_; ++i) {
        const size_t col = gi * ng_ + i, j = i % nr;
        const int8_t* blk = p.w + gi * gp + (i - j) * kq * 4;
        const int zp = d_.pre.form == kRowZp ? row_zp_base(d_.w_type) : d_.w_zp[col];
        for (size_t kk = 0; kk < k_; ++kk) {
          const int v = blk[((kk / 4) * nr + j) * 4 + kk % 4] + zp;
          if (v < lo || v > hi)
            spec.fail("x8_weight holds " + std::to_string(v) + " for output channel " +
                      std::to_string(col) + ", outside the weight type's range");
          raw[col * k_ + kk] = static_cast<uint8_t>(v);
        }
      }
    }
    // Weights moved out of a pair_u8 packing go back in (their packed w' is 0).
    const auto corr = prepacked_corrections(spec);
    for (size_t gi = 0; gi < corr.size(); ++gi) {
      for (const Corr& c : corr[gi]) {
        const size_t at = (gi * ng_ + c.col) * k_ + c.k;
        const int v = (d_.w_type == DType::u8 ? int{raw[at]} : int{static_cast<int8_t>(raw[at])}) + c.d;
        if (v < lo || v > hi) spec.fail("x8_corr moves a weight outside the weight type's range");
        raw[at] = static_cast<uint8_t>(v);
      }
    }
    // A permuted packing: back to the model's K order.
    const std::vector<uint8_t> perm = prepacked_permutation(spec);
    const std::vector<uint8_t> gperm = prepacked_gpermutation(spec);
    EDGERT_EXPECT(spec, perm.empty() || gperm.empty(), "both x8_perm and x8_gperm given");
    if (!perm.empty() || !gperm.empty()) {
      std::vector<uint8_t> row(k_);
      for (size_t col = 0; col < d_.m; ++col) {
        uint8_t* r = raw.data() + col * k_;
        for (size_t kk = 0; kk < k_; ++kk) row[gperm.empty() ? kk / 16 * 16 + perm[kk] : gperm[kk]] = r[kk];
        std::copy(row.begin(), row.end(), r);
      }
    }
    d_.w = raw.data();
    d_.pre = Q8Prepacked{};
  }

  bool finish_x8(size_t mr, size_t nr) {
    const Q8ConvDesc& d = d_;
    const Q8ConvGeom& g = d.geom;
    // A 1x1 conv whose taps never fall in the padding reads its rows straight from NHWC.
    direct_ = g.kh == 1 && g.kw == 1 && g.pt == 0 && g.pl == 0 &&
              (g.oh - 1) * g.sh < g.h && (g.ow - 1) * g.sw < g.w;
    // Stride 1 over the whole image, one group: output pixel p reads input pixel p.
    flat_ = direct_ && d.group == 1 && g.sh == 1 && g.sw == 1 && g.oh == g.h && g.ow == g.w;
    // The same for several groups: a tile's sign_s8 rows are prepared in one call for all
    // groups, each group's row a slice of its pixel's, or of a staging copy with every group's
    // slice padded to whole quads (ShuffleNet's 28x28x24 -> 30 in 3 groups of 8 channels made
    // 2352 small prepare calls a run before: 62 -> 19 us).
    dense_groups_ = direct_ && d.group > 1 && g.sh == 1 && g.sw == 1 && g.oh == g.h &&
                    g.ow == g.w;
    ow_ = g.ow;
    // Prepared sign_s8 rows: the kernel reads them instead of the raw ones.
    prep_sign_ = sign_ && !xk_->exact_pairs;
    // k×k convs of whole channel quads read the input through an indirection table instead of
    // an im2col copy, when the kernel offers it (16+ channels: a tap's loop must amortize its
    // pointer loads; moved weights need contiguous rows).
    // The padded input's dims (run_x8 pads inputs once when that pays, see below).
    pad_h_ = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
    pad_w_ = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    pad_h_ = std::max(pad_h_, g.pt + g.h), pad_w_ = std::max(pad_w_, g.pl + g.w);
    taps_ = g.kh * g.kw;
    ind_fn_ = nullptr;
    const bool table = !direct_ && corr_.empty() && delta_.empty() && perm_.empty() && gperm_.empty() &&
                       !prep_sign_ && mr <= kMaxIndirectMr && xk_->indirect[sign_ ? 1 : 0][0][0];
    if (table && cg_ % 4 == 0 && cg_ >= 16) {
      ind_fn_ = xk_->indirect[sign_ ? 1 : 0][d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
      pad_row_.assign(cg_, static_cast<uint8_t>(d.x_zp));
      ind_cg_ = cg_;
      tap_off_.resize(taps_);
      for (size_t ky = 0, t = 0; ky < g.kh; ++ky)
        for (size_t kx = 0; kx < g.kw; ++kx, ++t)
          tap_off_[t] = (ky * g.dh * g.w + kx * g.dw) * g.c;
    }
    // A kernel that copies its rows anyway (amx) takes the other k×k convs of one group (RGB
    // stems, channel counts that are not whole quads) through the table as well, one entry per
    // kernel row: its kw taps are kw·c contiguous bytes of a padded copy of the input (made once
    // per run, see run_x8), which the kernel copies in one piece. No im2col copy.
    // (Not when the padding would make that copy much larger than the input itself.)
    segments_ = false;
    const size_t in_bytes = d.batch * g.h * g.w * g.c;
    if (table && !ind_fn_ && xk_->copies_rows && d.group == 1 && g.dw == 1 &&
        d.batch * pad_h_ * pad_w_ * g.c <= 2 * in_bytes + (64 << 10)) {
      ind_fn_ = xk_->indirect[sign_ ? 1 : 0][d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
      segments_ = true;
      taps_ = g.kh;
      ind_cg_ = g.kw * g.c;
    }
    // sign_s8 rows in whole quads so a tile is prepared in one call; pair_u8 ones 16-aligned.
    lda_ = prep_sign_ ? (k_ + 3) / 4 * 4 : (k_ + 15) / 16 * 16;
    // Weights larger than the layer's whole im2col (deep layers on small images): one tile of
    // every row, so each weight block comes from memory once and serves all rows from cache.
    const size_t all_rows = pixels_ * lda_;
    const bool one_tile = !direct_ && all_rows <= kOneTileBytes && all_rows <= d.m / d.group * k_;
    const size_t tile_bytes = direct_ ? (64 << 10) : kScratchBytes / 2;
    tile_rows_ = std::clamp<size_t>(tile_bytes / lda_ / mr * mr, 4 * mr, 512);
    tile_rows_ = std::min(tile_rows_, (pixels_ + mr - 1) / mr * mr);
    if (one_tile) tile_rows_ = (pixels_ + mr - 1) / mr * mr;
    tile_rows_ = even_tiles(tile_rows_, mr);
    tile_cap_ = tile_rows_ + mr - 1;  // see tile_span
    const size_t kq4 = (k_ + 3) / 4 * 4;
    const size_t wide = wide_cols(nr);
    col_block_ = std::max(wide, xk_->col_block_bytes / kq4 / wide * wide);
    // Inputs small enough to pad once per run (see run_x8): every tap of every pixel inside.
    const size_t padded = d.batch * pad_h_ * pad_w_ * g.c;
    const bool padding = g.pt || g.pl || pad_h_ > g.h || pad_w_ > g.w;
    pad_input_bytes_ = !direct_ && !ind_fn_ && padding && padded <= (64 << 10) ? padded : 0;
    if (segments_) {  // every kernel row inside the (padded) image, at a fixed offset
      pad_input_bytes_ = padding ? padded : 0;
      const size_t w = padding ? pad_w_ : g.w;
      tap_off_.resize(taps_);
      for (size_t ky = 0; ky < g.kh; ++ky) tap_off_[ky] = ky * g.dh * w * g.c;
    }
    init_gather();
    return true;
  }

  // Stems (one group, tap rows of at most 16 bytes, 16 < k <= 32: a 3x3 conv over RGB):
  // im2col rows gathered straight in the packing's K order by the kernel's gather_taps, per
  // tap row a mask of the 32 row positions it fills (gather_, kh masks of 32 bytes). A 96x96
  // RGB stem, 3x3 stride 2: im2col 4.6 + reordering 3.3 us before.
  void init_gather() {
    const Q8ConvGeom& g = d_.geom;
    gather_.clear();
    const size_t run = g.kw * g.c;
    if (!xk_->gather_taps || direct_ || ind_fn_ || prep_sign_ || !gperm_.empty() ||
        d_.group != 1 || g.dw != 1 || run > 16 || k_ <= 16 || k_ > 32 || lda_ < 32)
      return;
    gather_.assign(g.kh * 32, 0x80);
    for (size_t j = 0; j < 32; ++j) {
      size_t src = j;  // the im2col position row position j takes
      if (!perm_.empty()) src = j < perm_.size() ? j / 16 * 16 + (perm_[j] & 15) : k_;
      if (src < k_) gather_[src / run * 32 + j] = static_cast<uint8_t>(src % run);
    }
  }

  // A tile's im2col rows through gather_ (see init_gather): runs of pixels whose taps are all
  // inside the image in one call, the rest (and those whose 16-byte reads would pass the
  // input's end) by q8_im2col_x8 and permute_rows, a row at a time.
  void gather_rows(const Q8ConvGeom& g, const uint8_t* x, const uint8_t* x_end, uint8_t pad,
                   size_t p0, size_t rows, uint8_t* a) const {
    const size_t step = g.dh * g.w * g.c, pix = g.sw * g.c;
    size_t ow = p0 % g.ow, oh = (p0 / g.ow) % g.oh, n = p0 / (g.ow * g.oh);
    for (size_t r = 0; r < rows;) {
      const ptrdiff_t ih0 = ptrdiff_t(oh * g.sh) - ptrdiff_t(g.pt);
      const ptrdiff_t iw0 = ptrdiff_t(ow * g.sw) - ptrdiff_t(g.pl);
      size_t cnt = 0;
      if (ih0 >= 0 && ih0 + ptrdiff_t((g.kh - 1) * g.dh) < ptrdiff_t(g.h) && iw0 >= 0 &&
          iw0 + ptrdiff_t(g.kw) <= ptrdiff_t(g.w)) {
        const size_t fit = size_t(ptrdiff_t(g.w) - iw0 - ptrdiff_t(g.kw)) / g.sw + 1;
        cnt = std::min({rows - r, g.ow - ow, fit});
        const uint8_t* src = x + ((n * g.h + size_t(ih0)) * g.w + size_t(iw0)) * g.c;
        const ptrdiff_t room = x_end - (src + (g.kh - 1) * step) - 16;  // the last tap row's read
        cnt = room < 0 ? 0 : std::min(cnt, size_t(room) / pix + 1);
        if (cnt) xk_->gather_taps(src, pix, step, g.kh, cnt, gather_.data(), a + r * lda_, lda_);
      }
      if (!cnt) {
        uint8_t* row = a + r * lda_;
        q8_im2col_x8(g, x, pad, 0, g.c, p0 + r, 1, row, lda_);
        if (!perm_.empty()) xk_->permute_rows(row, lda_, 1, k_, true, perm_.data(), row, lda_);
        cnt = 1;
      }
      r += cnt, ow += cnt;
      if (ow == g.ow) {
        ow = 0;
        if (++oh == g.oh) oh = 0, ++n;
      }
    }
  }

  // Tiles of at most `rows` rows, as equal as whole groups of mr make them and, when there are
  // several, a multiple of 4 of them, so that 2 or 4 threads get equal shares: 196 pixels in
  // tiles of 168 rows would be one of 168 and one of 28, which two threads split badly; 4 of 52
  // or fewer. (Fewer tiles than threads are split by columns instead, see split.)
  size_t even_tiles(size_t rows, size_t mr) const {
    size_t tiles = (pixels_ + rows - 1) / rows;
    if (tiles > 1) tiles = (tiles + 3) / 4 * 4;
    return std::max(mr, ((pixels_ + tiles - 1) / tiles + mr - 1) / mr * mr);
  }

  // Work items: (pixel tile, group, column part). Columns are split only when pixel tiles alone
  // cannot keep every thread busy (small M); parts of part_cols columns, whole blocks of nr.
  // Fewer tiles than threads (a small image) are cut into one tile per thread first: items go to
  // the threads in order, so each thread then computes every column of its share of the pixels,
  // and the next op (a depthwise conv, split by rows) reads them from its own core's cache, not
  // half its input from the other core's (MobileNetV2's 14x14 and 7x7 depthwise convs ran slower
  // on 2 threads than on 1 after a column split). Any tiling gives the same exact sums.
  // Tile t holds rows [start(t), start(t + 1)), start(t) = step·⌊t·units / tiles⌋ with units =
  // ⌊pixels / step⌋ whole groups of step rows (mr; 1 for a kernel that copies its rows cut into
  // one tile per thread) and the last tile ending at pixels: tiles differ by at most a group,
  // the partial group goes to a tile with fewer whole ones. MobileNetV2's 7x7 layers (49 rows,
  // 12 groups of 4 and one row) in 24 + 25 rows, not 28 + 21, whose 7 against 5.25 groups kept
  // one thread waiting (2 threads, avx2: the 1x1 convs of 320 -> 1280 and 960 -> 320 channels
  // scaled 1.68x).
  struct Split {
    size_t tile_rows, tile_groups, parts, part_cols, tiles, step;
  };
  // (p0, rows) of tile t; at most tile_cap_ rows.
  std::pair<size_t, size_t> tile_span(const Split& sp, size_t t) const {
    const size_t units = pixels_ / sp.step;
    if (units < sp.tiles) {  // tiny: tiles of tile_rows
      const size_t p0 = t * sp.tile_rows;
      return {p0, std::min(sp.tile_rows, pixels_ - p0)};
    }
    const size_t p0 = sp.step * (t * units / sp.tiles);
    const size_t end = t + 1 == sp.tiles ? pixels_ : sp.step * ((t + 1) * units / sp.tiles);
    return {p0, end - p0};
  }
  // The columns a byte kernel computes at once where a call has them (its nr_wide, or
  // nr_wide_indirect for indirect rows; nr for the others): column blocks and thread parts are
  // multiples of it.
  size_t wide_cols(size_t nr) const {
    return xk_ ? std::max(nr, ind_fn_ ? xk_->nr_wide_indirect : xk_->nr_wide) : nr;
  }
  Split split(size_t mr, size_t nr, const ThreadPool& pool) const {
    const size_t threads = size_t(pool.threads());
    size_t rows = tile_rows_, tiles = (pixels_ + rows - 1) / rows;
    // A kernel that copies its rows (amx) takes any row count at the same cost per panel, so
    // its shares are equal, a panel's worth or more each: MobileNetV2's 14x14 layers (196 rows)
    // in 98 + 98 rather than a split of their columns, whose halves the next (depthwise) op
    // then read from the other core (2 threads: MobileNetV2 0.97-0.99x, ResNet-18 0.98-0.99x,
    // one session alternating run by run). Other kernels' shares are whole groups of mr rows.
    const bool copies = xk_ && xk_->copies_rows;
    size_t step = mr;
    if (threads > 1 && tiles < threads && copies && pixels_ >= threads * mr) {
      rows = (pixels_ + threads - 1) / threads;
      tiles = (pixels_ + rows - 1) / rows;
      step = 1;
    } else if (threads > 1 && tiles < threads && !copies && pixels_ >= 2 * threads * mr) {
      rows = ((pixels_ + threads - 1) / threads + mr - 1) / mr * mr;
      tiles = (pixels_ + rows - 1) / rows;
    }
    const size_t wide = wide_cols(nr);  // parts of whole wide blocks
    const size_t blocks = (ng_ + wide - 1) / wide;
    const size_t want = (xk_ && xk_->copies_rows ? 1 : 4) * threads;
    const size_t tg = tiles * d_.group;
    // (One thread: whole rows, no column parts to balance; an output table then maps each
    // tile's rows in one call.)
    const size_t parts = tg >= want || threads == 1 ? 1 : std::min(blocks, (want + tg - 1) / tg);
    return {rows, tg, parts, (blocks + parts - 1) / parts * wide, tiles, step};
  }

  // s: the fused multiply's S (d_.x_mul; flat_ then holds), else nullptr.
  void run_x8(const uint8_t* x, const uint8_t* s, uint8_t* y, ThreadPool& pool) const {
    const size_t mr = xk_->mr, nr = xk_->nr;
    const Q8ConvGeom& g = d_.geom;
    const Split sp = split(mr, nr, pool);
    if (s && sp.parts > 1) {  // threads share a tile's rows: x·s made once, in a pass of its own
      x = mul_whole(x, s, pool);
      s = nullptr;
    }
    const size_t tg = sp.tile_groups, parts = sp.parts, part_cols = sp.part_cols;
    const size_t tr = sp.tile_rows;  // <= tile_rows_, which sizes the work buffers
    const uint8_t pad = static_cast<uint8_t>(d_.x_zp);
    const uint8_t zero_s = d_.x_type == DType::u8 ? 0x80 : 0;
    const size_t item_macs = tr * std::min(ng_, part_cols) * k_;
    // row_zp: rows per kernel call, so that their per-row biases stay near 16 KiB.
    const size_t zp_cols = std::min(col_block_, (std::min(ng_, part_cols) + nr - 1) / nr * nr);
    const size_t zp_rows =
        std::clamp<size_t>((16 << 10) / (zp_cols * sizeof(int32_t)) / mr * mr, mr, tile_cap_);
    // im2col rows own whole quads (lda_ >= round_up(k, 16)) and the packed weights past k are
    // zero: the kernel reads the last quad whole instead of through its partial-quad path.
    // Reordered rows (perm_) are whole 16-byte groups too.
    const size_t k_row =
        (direct_ && perm_.empty() && gperm_.empty()) || prep_sign_ ? k_ : (k_ + 3) / 4 * 4;
    const size_t prow = (k_ + 15) / 16 * 16;
    // A small padded input (DS-CNN's 49x10 single-channel stem, 10x4 taps: half its pixels
    // touch the padding) is padded once here, so that every im2col row takes the interior path.
    const uint8_t* xi = x;
    Q8ConvGeom gi_geom = g;
    if (pad_input_bytes_) {
      uint8_t* padded = thread_scratch(pad_input_bytes_, 1);
      const size_t hp = pad_h_, wp = pad_w_, c = g.c;
      std::memset(padded, pad, pad_input_bytes_);
      for (size_t n = 0; n < d_.batch; ++n)
        for (size_t h = 0; h < g.h; ++h)
          std::memcpy(padded + ((n * hp + g.pt + h) * wp + g.pl) * c, x + (n * g.h + h) * g.w * c,
                      g.w * c);
      xi = padded;
      gi_geom.h = hp, gi_geom.w = wp, gi_geom.pt = 0, gi_geom.pl = 0;
    }
    const bool gathered = !gather_.empty();
    const uint8_t* const x_end =
        xi + (pad_input_bytes_ ? pad_input_bytes_ : d_.batch * g.h * g.w * g.c);
    pool.parallel_for(tg * parts, grain_for(item_macs), [&](size_t b, size_t e) {
      // Work buffers (thread_scratch: unspecified contents; each is written before it is read).
      // a: im2col rows; sign_s8 ones get their bytes past k filled per tile (read as s = 0),
      // pair_u8 ones meet zero weights there.
      // ind: indirect rows, per group of mr rows each tap's mr pointers (Q8GemmX8IndirectFn).
      // prep: sign_s8 operand rows, or reordered rows of a direct 1x1 conv (im2col ones in
      // place); dense_groups_: each group's slice padded to cq bytes (whole quads), staged in
      // stage when cq > cg_. rb: per-row biases (pair_u8 with corrections).
      const size_t cq = (cg_ + 3) / 4 * 4;
      const bool staged = prep_sign_ && dense_groups_ && cq != cg_;
      ScratchLayout L;
      const size_t a_off = L.add(direct_ || ind_fn_ ? 0 : tile_cap_ * lda_);
      const size_t ind_off = L.add(ind_fn_ ? (tile_cap_ + mr - 1) / mr * mr * taps_ * sizeof(void*) : 0);
      const size_t prep_off = L.add(prep_sign_ ? tile_cap_ * (dense_groups_ ? 2 * d_.group * cq : srow_)
                                    : direct_ && !(perm_.empty() && gperm_.empty()) ? tile_cap_ * prow : 0);
      const size_t stage_off = L.add(staged ? tile_cap_ * d_.group * cq : 0);
      const size_t rowp_off = L.add(tile_cap_ * sizeof(void*));
      const size_t rb_off = L.add(!delta_.empty() ? (off_fn_ ? 0 : zp_rows * zp_cols * sizeof(int32_t))
                                  : corr_.empty() ? 0 : tile_cap_ * nr * sizeof(int32_t));
      const size_t rs_off = L.add(delta_.empty() ? 0 : tile_cap_ * sizeof(int32_t));
      // mul: the tile's rows of x·s (64 bytes past them: kernels may read a row's last quad
      // whole); rep: S's row repeated.
      const size_t mul_off = L.add(s ? tile_cap_ * k_ + 64 : 0);
      const size_t rep_off = L.add(s ? mul_rep_bytes() : 0);
      uint8_t* const scratch = thread_scratch(L.total());
      uint8_t* const a = scratch + a_off;
      const void** const ind = reinterpret_cast<const void**>(scratch + ind_off);
      uint8_t* const prep = scratch + prep_off;
      uint8_t* const stage = scratch + stage_off;
      const void** const rowp = reinterpret_cast<const void**>(scratch + rowp_off);
      int32_t* const rb = reinterpret_cast<int32_t*>(scratch + rb_off);
      int32_t* const rs = reinterpret_cast<int32_t*>(scratch + rs_off);
      size_t prepped = SIZE_MAX;  // dense_groups_: the tile whose rows prep holds
      size_t built = SIZE_MAX;
      for (size_t i = b; i < e; ++i) {
        const size_t tile_group = i / parts, part = i % parts;
        const size_t tile = tile_group / d_.group, gi = tile_group % d_.group;
        const auto [p0, rows] = tile_span(sp, tile);
        if (built != tile_group) {
          // The tile's rows as one run, `step` bytes a row (k, or lda_ for im2col rows).
          const uint8_t* flat = nullptr;
          size_t step = k_;
          bool rows_set = false;  // rowp already holds flat's rows
          if (s) {  // (flat_: checked at creation)
            mul_rows(x, s, p0, rows, scratch + rep_off, scratch + mul_off);
            flat = scratch + mul_off;
          } else if (direct_ && flat_) {
            flat = x + p0 * k_;
          } else if (direct_) {
            const size_t pix = g.sw * g.c, ow0 = p0 % ow_, rest = p0 / ow_;
            // The first input pixel of output row (n, oh), pointers then step by pix.
            auto row_start = [&](size_t nh) {
              return x + ((nh / g.oh * g.h + nh % g.oh * g.sh) * g.w) * g.c + gi * cg_;
            };
            const uint8_t* p = row_start(rest) + ow0 * pix;
            for (size_t r = 0, ow = ow0, nh = rest; r < rows; ++r, p += pix) {
              if (ow == ow_) ow = 0, p = row_start(++nh);
              rowp[r] = p;
              ++ow;
            }
          } else if (ind_fn_) {
            build_indirect(xi, gi_geom, gi, p0, rows, mr, ind);
          } else {
            if (prep_sign_ && lda_ > k_) {  // sign_s8 rows are prepared whole: s = 0 past k
              const size_t k = k_, lda = lda_;  // (locals: the byte stores alias nothing)
              for (size_t r = 0; r < rows; ++r)
                for (size_t j = k; j < lda; ++j) a[r * lda + j] = zero_s;
            }
            if (gathered)
              gather_rows(gi_geom, xi, x_end, pad, p0, rows, a);
            else
              q8_im2col_x8(gi_geom, xi, pad, gi * cg_, cg_, p0, rows, a, lda_);
            flat = a, step = lda_;
            {  // (locals: a pointer store may alias any captured pointer or member to GCC)
              const void** const rp = rowp;
              const uint8_t* const base = a;
              const size_t lda = lda_, n = rows;
              for (size_t r = 0; r < n; ++r) rp[r] = base + r * lda;
            }
            rows_set = true;
          }
          if (!delta_.empty()) {  // the rows' sums (raw rows; K order aside)
            const bool u8 = d_.x_type == DType::u8;
            for (size_t r = 0; r < rows; ++r)
              rs[r] = row_sum(flat ? flat + r * step : static_cast<const uint8_t*>(rowp[r]), k_,
                              u8);
            if (off_fn_) {  // one delta: the rows' offsets −delta·Σx
              const uint32_t dl = static_cast<uint32_t>(delta_[0]);
              for (size_t r = 0; r < rows; ++r)
                rs[r] = static_cast<int32_t>(0u - dl * static_cast<uint32_t>(rs[r]));
            }
          }
          if (prep_sign_ && dense_groups_) {
            if (prepped != tile) {
              const uint8_t* src = x + p0 * g.c;
              if (staged) {
                for (size_t r = 0, slot = 0; r < rows; ++r)
                  for (size_t q = 0; q < d_.group; ++q, ++slot) {
                    q8_copy_small(stage + slot * cq, src + r * g.c + q * cg_, cg_);
                    for (size_t j = cg_; j < cq; ++j) stage[slot * cq + j] = zero_s;  // s = 0
                  }
                src = stage;
              }
              xk_->prepare_sign(src, rows * d_.group * cq, d_.x_type == DType::u8, prep);
              prepped = tile;
            }
            for (size_t r = 0; r < rows; ++r)
              rowp[r] = prep + (r * d_.group + gi) * cq / 4 * 8;
          } else if (prep_sign_) {
            const bool flip = d_.x_type == DType::u8;
            uint8_t* pr = prep;
            // Rows of whole quads (im2col pads them with s = 0 bytes): one call for the tile.
            if (flat && step * 2 == srow_) {
              xk_->prepare_sign(flat, rows * step, flip, pr);
            } else {
              for (size_t r = 0; r < rows; ++r)
                xk_->prepare_sign(flat ? flat + r * step : static_cast<const uint8_t*>(rowp[r]),
                                  k_, flip, pr + r * srow_);
            }
            for (size_t r = 0; r < rows; ++r) rowp[r] = pr + r * srow_;
          } else if (!gperm_.empty()) {
            // im2col rows reordered in place (rowp holds them), direct ones into prep
            if (!direct_) {
              xk_->gpermute_rows(a, lda_, rows, k_, gperm_.data(), a, lda_);
            } else {
              if (flat) xk_->gpermute_rows(flat, step, rows, k_, gperm_.data(), prep, prow);
              for (size_t r = 0; r < rows; ++r) {
                if (!flat)
                  xk_->gpermute_rows(static_cast<const uint8_t*>(rowp[r]), 0, 1, k_, gperm_.data(),
                                     prep + r * prow, prow);
                rowp[r] = prep + r * prow;
              }
            }
          } else if (!perm_.empty()) {
            // Whole 16-byte groups are read where the bytes past a row's k are readable: im2col
            // rows (padded, reordered in place) and flat rows followed by enough of the tile.
            if (gathered) {
              // (in the packing's order already)
            } else if (!direct_) {
              xk_->permute_rows(flat, step, rows, k_, true, perm_.data(), a, lda_);
            } else if (flat) {
              const size_t tail = std::min(rows, (prow - k_ + k_ - 1) / k_);
              xk_->permute_rows(flat, step, rows - tail, k_, true, perm_.data(), prep, prow);
              xk_->permute_rows(flat + (rows - tail) * step, step, tail, k_, false, perm_.data(),
                                prep + (rows - tail) * prow, prow);
            } else {
              for (size_t r = 0; r < rows; ++r)
                xk_->permute_rows(static_cast<const uint8_t*>(rowp[r]), 0, 1, k_, false,
                                  perm_.data(), prep + r * prow, prow);
            }
            if (direct_)  // (im2col rows were reordered in place: rowp holds them already)
              for (size_t r = 0; r < rows; ++r) rowp[r] = prep + r * prow;
          } else if (flat && !rows_set) {  // (12544 pointer stores a run for an RGB stem)
            for (size_t r = 0; r < rows; ++r) rowp[r] = flat + r * step;
          }
          built = tile_group;
        }
        const size_t c_begin = part * part_cols, c_end = std::min(ng_, c_begin + part_cols);
        const int8_t* w = w8_ + gi * group_packed_;
        for (size_t c0 = c_begin; c0 < c_end; c0 += col_block_) {
          const size_t nc = std::min(col_block_, c_end - c0), ch = gi * ng_ + c0;
          const size_t pc = gi * ngp_ + c0;
          // Rows [r, r + rr) and columns [a, b) of this chunk; bias: one row, or rr rows of nr.
          auto call = [&](size_t r, size_t rr, size_t a, size_t b, const int32_t* bias, size_t bs) {
            x8_fn_(rr, b - a, k_row, rowp + r, w + a * ((k_ + 3) / 4 * 4), bias, bs,
                   scale_.data() + pc + (a - c0), y + ((p0 + r) * d_.m + ch + (a - c0)) * y_size_,
                   d_.m, d_.rq);
          };
          auto gemm = [&](size_t a, size_t b) {
            if (ind_fn_) {  // the kernel walks the groups of mr rows
              ind_fn_(rows, b - a, taps_, ind_cg_, ind, w + a * ((k_ + 3) / 4 * 4),
                      bias_.data() + pc + (a - c0), scale_.data() + pc + (a - c0),
                      y + (p0 * d_.m + ch + (a - c0)) * y_size_, d_.m, d_.rq);
              return;
            }
            call(0, rows, a, b, bias_.data() + pc + (a - c0), 0);  // the kernel walks the rows
          };
          if (off_fn_) {  // row_zp with one delta: the kernel adds each row's offset
            off_fn_(rows, nc, k_row, rowp, w + c0 * ((k_ + 3) / 4 * 4), bias_.data() + pc, rs,
                    scale_.data() + pc, y + (p0 * d_.m + ch) * y_size_, d_.m, d_.rq);
            continue;
          }
          if (!delta_.empty()) {
            // row_zp: per-row biases bias − delta·Σx for up to zp_rows rows at a time (in L1),
            // over the kernel's round_up(nc, nr) columns (delta 0 on the padding columns).
            const size_t ncp = (nc + nr - 1) / nr * nr, real = std::min(ncp, ng_ - c0);
            const int32_t* const bcol = bias_.data() + pc;
            const int32_t* const dcol = delta_.data() + ch;
            for (size_t r0 = 0; r0 < rows; r0 += zp_rows) {
              const size_t rr = std::min(zp_rows, rows - r0);
              for (size_t r = 0; r < rr; ++r) {
                int32_t* const row = rb + r * ncp;
                const uint32_t sx = static_cast<uint32_t>(rs[r0 + r]);
                for (size_t j = 0; j < real; ++j)
                  row[j] = static_cast<int32_t>(static_cast<uint32_t>(bcol[j]) -
                                                static_cast<uint32_t>(dcol[j]) * sx);
                for (size_t j = real; j < ncp; ++j) row[j] = bcol[j];
                if (!corr_.empty()) {  // weights moved out of the packing (init_row_zp_moved)
                  const std::vector<Corr>& cs = corr_[gi];
                  auto first = std::lower_bound(cs.begin(), cs.end(), c0,
                                                [](const Corr& c, size_t v) { return c.col < v; });
                  auto last = first;
                  while (last != cs.end() && last->col < c0 + nc) ++last;
                  add_moved(first, last, c0, rowp[r0 + r], row);
                }
              }
              call(r0, rr, c0, c0 + nc, rb, ncp);
            }
            continue;
          }
          if (corr_.empty()) {
            gemm(c0, c0 + nc);
            continue;
          }
          // Column blocks holding moved weights get per-row biases, built for the tile's rows
          // right before their call (a few KiB, in L1); the blocks between run as usual.
          const std::vector<Corr>& cs = corr_[gi];
          auto it = std::lower_bound(cs.begin(), cs.end(), c0,
                                     [](const Corr& c, size_t v) { return c.col < v; });
          for (size_t a = c0; a < c0 + nc;) {
            const size_t next = it != cs.end() && it->col < c0 + nc ? it->col / nr * nr : c0 + nc;
            if (next > a) {
              gemm(a, next);
              a = next;
              continue;
            }
            const size_t b = std::min(a + nr, c0 + nc);
            auto last = it;
            while (last != cs.end() && last->col < b) ++last;
            // The tile's rows at once (at most 512 rows of 16 int32), then one kernel call.
            const int32_t* shared = bias_.data() + pc + (a - c0);
            for (size_t r = 0; r < rows; ++r) {
              int32_t* row = rb + r * nr;
              std::copy_n(shared, nr, row);
              add_moved(it, last, a, rowp[r], row);
            }
            call(0, rows, a, b, rb, nr);
            it = last;
            a = b;
          }
        }
        if (c_begin < c_end)  // (parts past the last column are empty)
          out_lut(y + p0 * d_.m + gi * ng_ + c_begin, rows, d_.m, c_end - c_begin);
      }
    });
  }

  // The fused input multiply (d_.x_mul): pixels [p0, p0 + rows) of x · s (k_ bytes a pixel, S a
  // row of k_ bytes per image) to out, rows contiguous. rep: mul_rep_bytes() of work memory
  // where S's row repeats, so that one kernel call takes many rows.
  static constexpr size_t kMulRepBytes = 2048;
  size_t mul_rep_bytes() const { return std::max(k_, kMulRepBytes); }
  void mul_rows(const uint8_t* x, const uint8_t* s, size_t p0, size_t rows, uint8_t* rep,
                uint8_t* out) const {
    const size_t c = k_, per = std::max<size_t>(1, kMulRepBytes / c);
    const bool x_signed = d_.x_type == DType::i8;
    for (size_t r = 0; r < rows;) {
      const size_t img = (p0 + r) / mul_hw_, end = std::min(rows, (img + 1) * mul_hw_ - p0);
      const uint8_t* sv = s + img * c;
      if (!mul_fn_) {
        for (; r < end; ++r)
          x8_lut2_ukernel__scalar(c, x + (p0 + r) * c, sv, mul_table_.data(), out + r * c);
        continue;
      }
      const size_t reps = std::min(per, end - r);
      for (size_t q = 0; q < reps; ++q) std::memcpy(rep + q * c, sv, c);
      for (; r < end;) {
        const size_t n = std::min(reps, end - r);
        mul_fn_(n * c, x + (p0 + r) * c, rep, false, x_signed, d_.mul_s_signed, d_.mul,
                out + r * c);
        r += n;
      }
    }
  }

  // x · s whole, in the calling thread's scratch slot 1, in one parallel pass.
  const uint8_t* mul_whole(const uint8_t* x, const uint8_t* s, ThreadPool& pool) const {
    uint8_t* const xm = thread_scratch(pixels_ * k_, 1);
    pool.parallel_for(pixels_, std::max<size_t>(1, (16 << 10) / k_), [&](size_t b, size_t e) {
      mul_rows(x, s, b, e - b, thread_scratch(mul_rep_bytes()), xm + b * k_);
    });
    return xm;
  }

  // The output table (lut_fn_) over rows × n bytes at y, rows `stride` apart: the bytes a work
  // item has just written, still in its core's L1.
  void out_lut(uint8_t* y, size_t rows, size_t stride, size_t n) const {
    if (!lut_fn_) return;
    if (n == stride) return lut_fn_(1, rows * n, y, 0, out_lut_, y, 0);  // whole rows: one run
    // A column part: one call, the table loaded once, not once per row part (MobileNetV3-
    // Small's HardSwish expansions at 2 threads: 48-byte parts; 0.99x a run, paired).
    lut_fn_(rows, n, y, stride, out_lut_, y, stride);
  }

  // The indirection table of a tile: for row r (pixel p0 + r) and tap t, the group's channels of
  // the input pixel that tap reads, or the padding row, at out[(r / mr · taps + t) · mr + r % mr];
  // the last group's missing rows repeat its first row. x and g: the input, or its padded copy
  // (segments_: every window inside it, a tap per kernel row). mr <= kMaxIndirectMr.
  void build_indirect(const uint8_t* x, const Q8ConvGeom& g, size_t gi, size_t p0, size_t rows,
                      size_t mr, const void** out) const {
    const ptrdiff_t h = ptrdiff_t(g.h), w = ptrdiff_t(g.w);
    const ptrdiff_t kh_span = ptrdiff_t((g.kh - 1) * g.dh), kw_span = ptrdiff_t((g.kw - 1) * g.dw);
    const size_t taps = taps_;  // (locals: the pointer stores alias neither)
    const size_t* const off = tap_off_.data();
    size_t ow = p0 % g.ow, oh = (p0 / g.ow) % g.oh, n = p0 / (g.ow * g.oh);
    // Per group of mr rows: each row's window origin, then tap by tap the group's pointers in one
    // contiguous run (origin + the tap's fixed offset); rows whose window leaves the image are
    // written tap by tap first, pointing at the padding row where it does.
    const uint8_t* origin[kMaxIndirectMr];
    for (size_t g0 = 0; g0 < rows; g0 += mr) {
      const size_t rn = std::min(mr, rows - g0);
      const void** grp = out + g0 / mr * taps * mr;
      bool all_inside = true;
      for (size_t r = 0; r < rn; ++r) {
        const uint8_t* img = x + n * g.h * g.w * g.c + gi * cg_;
        const ptrdiff_t ih0 = ptrdiff_t(oh * g.sh) - ptrdiff_t(g.pt);
        const ptrdiff_t iw0 = ptrdiff_t(ow * g.sw) - ptrdiff_t(g.pl);
        // (segments_: the padded copy holds every window)
        if (segments_ || (ih0 >= 0 && ih0 + kh_span < h && iw0 >= 0 && iw0 + kw_span < w)) {
          origin[r] = img + (size_t(ih0) * g.w + size_t(iw0)) * g.c;
        } else {
          origin[r] = nullptr, all_inside = false;
          for (size_t ky = 0, t = 0; ky < g.kh; ++ky) {
            const ptrdiff_t ih = ih0 + ptrdiff_t(ky * g.dh);
            const bool in_h = ih >= 0 && ih < h;
            for (size_t kx = 0; kx < g.kw; ++kx, ++t) {
              const ptrdiff_t iw = iw0 + ptrdiff_t(kx * g.dw);
              grp[t * mr + r] = in_h && iw >= 0 && iw < w
                                    ? img + (size_t(ih) * g.w + size_t(iw)) * g.c
                                    : static_cast<const void*>(pad_row_.data());
            }
          }
        }
        if (++ow == g.ow) {
          ow = 0;
          if (++oh == g.oh) oh = 0, ++n;
        }
      }
      for (size_t t = 0; t < taps; ++t) {
        const void** dst = grp + t * mr;
        if (all_inside) {
          for (size_t r = 0; r < rn; ++r) dst[r] = origin[r] + off[t];
        } else {
          for (size_t r = 0; r < rn; ++r)
            if (origin[r]) dst[r] = origin[r] + off[t];
        }
        for (size_t r = rn; r < mr; ++r) dst[r] = dst[0];  // missing rows repeat the first
      }
    }
  }

  // Adds x[k]·w' of the moved weights [first, last) (columns of the block starting at a) to
  // one row's biases; x: the row's raw pair_u8 operand bytes, or its prepared sign_s8 row (s =
  // x ^ 0x80 for u8 inputs, x for i8, at byte 4 of each 8-byte quad record).
  template <class It>
  void add_moved(It first, It last, size_t a, const void* x, int32_t* row) const {
    const bool u8 = d_.x_type == DType::u8;
    for (It c = first; c != last; ++c) {
      uint8_t b = prep_sign_ ? static_cast<const uint8_t*>(x)[c->k / 4 * 8 + 4 + c->k % 4]
                             : static_cast<const uint8_t*>(x)[c->k];
      if (prep_sign_ && u8) b ^= 0x80;
      const int32_t v = u8 ? int32_t{b} : int32_t{static_cast<int8_t>(b)};
      int32_t& dst = row[c->col - a];
      dst = static_cast<int32_t>(static_cast<uint32_t>(dst) + static_cast<uint32_t>(v * c->d));
    }
  }

  // 3x3 depthwise with a row kernel: output pixels whose taps are all inside the image go to it
  // (one call per output row), the border ones to the per-pixel kernel. Padded rows instead
  // (dw_padded_): each input row copied once into a row with the padding columns and channels
  // rounded up to the kernel's 16, then whole output rows in one call: for channel counts the
  // kernel cannot take (ShuffleNet's 30, 60, 120, 240: 14x14x30 took 26.6 us in per-pixel calls
  // through byte copies, 4.3 padded) and narrow images, whose border pixels are a large share
  // (DS-CNN's 25x5x64: 4.9 -> 3.5 us).
  void init_dw_rows(const Q8DwConvUKernel& uk) {
    const Q8ConvDesc& d = d_;
    const Q8ConvGeom& g = d.geom;
    const size_t s = g.sh;
    if (g.kh == 5 && g.kw == 5 && g.dh == 1 && g.dw == 1 && s == g.sw && (s == 1 || s == 2))
      return init_dw_rows5(uk);
    if (!uk.pack3x3 || g.kh != 3 || g.kw != 3 || g.dh != 1 || g.dw != 1 || s != g.sw ||
        (s != 1 && s != 2))
      return;
    dw_row_fn_ = uk.row3x3[s - 1][d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
    if (!dw_row_fn_) return;
    // The byte form where the ISA has it, the output is bytes, there is a whole 64-channel block
    // (or up to 32 channels, two or four pixels a block) and every w' fits in int8 (onnxruntime's
    // symmetric int8 weights always do).
    const bool w_u8 = d.w_type == DType::u8;
    const size_t cp = (d.m + 15) / 16 * 16;
    const Q8DwConvRowFn b8 = d.y_type == DType::f32 || cp == 48 || !uk.pack3x3b8
        ? nullptr
        : uk.row3x3b8[s - 1][d.x_type == DType::u8 ? 0 : 1][out_index(d.y_type)];
    const bool bytes = b8 && q8_dwconv_fits_i8(d.m, 9, d.w, w_u8, d.w_zp);
    if (bytes) dw_row_fn_ = b8;
    auto pack = [&](const void* w, int16_t* out) {  // weights [m][3][3]
      if (bytes)
        uk.pack3x3b8(d.m, 9, w, w_u8, d.w_zp, out);
      else
        uk.pack3x3(d.m, 9, w, w_u8, d.w_zp, out);
    };
    ow_lo_ = std::min(g.ow, (g.pl + s - 1) / s);
    ow_hi_ = g.w + g.pl < 3 ? ow_lo_ : std::max(ow_lo_, std::min(g.ow, (g.w + g.pl - 3) / s + 1));
    const bool edges = ow_lo_ > 0 || ow_hi_ < g.ow;
    dw_padded_ = g.c % 16 != 0 || ow_hi_ == ow_lo_ || (edges && g.ow <= 32);
    const size_t size = q8_dwconv_packed_size_3x3(d.m);
    // Tall narrow outputs (DS-CNN's 25x5): the row kernel walks the columns instead, over a
    // transposed padded copy of the input with the taps transposed (run_dw_columns): 5 calls of
    // 25 pixels instead of 25 of 5, each call's start-up spread over 5 times the pixels
    // (25x5x64: 3.4 -> 2.4 us as a 5x25 image).
    dw_columns_ = g.c % 16 == 0 && g.ow <= 8 && g.oh >= 2 * g.ow;
    if (dw_columns_) {
      const uint8_t* w = static_cast<const uint8_t*>(d.w);
      std::vector<uint8_t> wt(d.m * 9);
      for (size_t c = 0; c < d.m; ++c)
        for (size_t ky = 0; ky < 3; ++ky)
          for (size_t kx = 0; kx < 3; ++kx) wt[c * 9 + kx * 3 + ky] = w[c * 9 + ky * 3 + kx];
      packed_cols_.resize(size);
      pack(wt.data(), packed_cols_.data());
      dw_hp_ = (g.oh - 1) * s + 3;  // input rows from −pt that the walk reads
      dw_wp_ = (g.ow - 1) * s + 3;  // input columns from −pl
    }
    if (d.dw_pre.w3 && d.dw_pre.layout == dw_layout() && d.dw_pre.w3_bytes == int64_t(2 * size)) {
      dw_w3_ = d.dw_pre.w3;
    } else {
      packed_row_.resize(size);
      pack(d.w, packed_row_.data());
      dw_w3_ = packed_row_.data();
    }
    if (!dw_padded_) {
      pad_row_.assign(g.w * g.c, static_cast<uint8_t>(d.x_zp));  // whole padding rows
      return;
    }
    dw_cp_ = (g.c + 15) / 16 * 16;
    dw_wp_ = (g.ow - 1) * s + 3;  // input columns from −pl: within pl + w + pr by the geometry
    pad_row_.assign(dw_wp_ * dw_cp_, static_cast<uint8_t>(d.x_zp));
    dw_bias_.assign(dw_cp_, 0);  // the kernel reads bias and scale for whole 16-channel blocks
    dw_scale_.assign(dw_cp_, 0.0f);
    std::copy(bias_.begin(), bias_.end(), dw_bias_.begin());
    std::copy(scale_.begin(), scale_.end(), dw_scale_.begin());
  }

  // 5x5 depthwise with the byte-form row kernel where the ISA has one, the output is bytes and
  // every w' fits int8 (else the per-pixel kernel): always over padded rows (run_dw_padded, a
  // ring of 5), whole output rows a call; the packing carries the bias and scales.
  void init_dw_rows5(const Q8DwConvUKernel& uk) {
    const Q8ConvDesc& d = d_;
    const Q8ConvGeom& g = d.geom;
    const size_t s = g.sh;
    const bool x_i8 = d.x_type == DType::i8;
    if (!uk.pack5x5b8 || !d.w || d.y_type == DType::f32) return;
    packed5_.resize(q8_dwconv_packed_size_5x5b8(d.m));
    if (!uk.pack5x5b8(d.m, 25, d.w, d.w_type == DType::u8, d.w_zp, bias_.data(), scale_.data(),
                      x_i8, packed5_.data())) {
      packed5_ = {};
      return;
    }
    dw_row_fn_ = uk.row5x5b8[s - 1][x_i8 ? 1 : 0][out_index(d.y_type)];
    dw_w3_ = reinterpret_cast<const int16_t*>(packed5_.data());
    dw_kh_ = 5;
    dw_padded_ = true;
    dw_cp_ = (g.c + 15) / 16 * 16;
    dw_wp_ = (g.ow - 1) * s + 5;  // input columns from −pl
    pad_row_.assign(dw_wp_ * dw_cp_, static_cast<uint8_t>(d.x_zp));
    dw_bias_.assign(dw_cp_, 0);  // (the 5x5 kernel reads the packing's; kept for the call)
    dw_scale_.assign(dw_cp_, 0.0f);
  }

  // Padded rows (see init_dw_rows): per thread a ring of the 3 input rows in use, each built
  // when an output row first needs it (row k in slot k mod 3: the 3 rows of one output row are
  // consecutive), outputs through a padded row when channels are padded.
  void run_dw_padded(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    const Q8ConvGeom& g = d_.geom;
    const size_t rows = d_.batch * g.oh, cp = dw_cp_, row_bytes = dw_wp_ * cp;
    const size_t ys = y_size_, m = d_.m, x_bytes = d_.batch * g.h * g.w * g.c;
    // A thread's ring outlives its chunk: the pool hands a thread about 16 chunks of one row
    // each, and a ring rebuilt per chunk copied three input rows per output row instead of one
    // (MobileNetV2's 14x14 and 7x7 depthwise convs: 2 threads each as busy as one thread alone).
    // t_dw_ring says which call filled a thread's ring, and with which rows.
    const uint64_t call = next_ring_call();
    pool.parallel_for(rows, grain_for(3 * g.ow * m * k_), [&](size_t b, size_t e) {
      ScratchLayout L;
      const size_t kh = dw_kh_;  // rows in the ring: the kernel's height
      const size_t ring_off = L.add(kh * row_bytes), out_off = L.add(cp != m ? g.ow * cp * ys : 0);
      uint8_t* const scratch = thread_scratch(L.total());
      uint8_t* const ring = scratch + ring_off;
      uint8_t* const out = cp != m ? scratch + out_off : nullptr;
      DwRing& held_by = t_dw_ring;
      size_t* const held = held_by.held;
      // The padding columns, x_zp (the copies below fill the rest; a pixel's channels past c
      // meet zero weights): not the whole ring, which for a 14x14x384 layer split a row a chunk
      // over 2 threads was 18 KiB of stores per output row. Once per thread and call.
      if (held_by.call != call || held_by.mem != ring) {
        held_by.call = call, held_by.mem = ring;
        for (size_t k = 0; k < kh; ++k) held[k] = SIZE_MAX;
        const size_t w_end = g.pl >= dw_wp_ ? 0 : std::min(g.w, dw_wp_ - g.pl);
        const size_t lo = std::min(g.pl, dw_wp_) * cp, hi = (std::min(g.pl, dw_wp_) + w_end) * cp;
        for (size_t slot = 0; slot < kh; ++slot) {
          std::memset(ring + slot * row_bytes, static_cast<uint8_t>(d_.x_zp), lo);
          std::memset(ring + slot * row_bytes + hi, static_cast<uint8_t>(d_.x_zp), row_bytes - hi);
        }
      }
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / g.oh, oh = r % g.oh;
        const uint8_t* rows3[5];
        for (size_t ky = 0; ky < kh; ++ky) {
          const ptrdiff_t ih = ptrdiff_t(oh * g.sh + ky) - ptrdiff_t(g.pt);
          if (ih < 0 || ih >= ptrdiff_t(g.h)) {
            rows3[ky] = pad_row_.data();
            continue;
          }
          const size_t key = n * g.h + size_t(ih), slot = key % kh;
          uint8_t* dst = ring + slot * row_bytes;
          if (held[slot] != key) {  // columns −pl.. of input row ih; padding stays x_zp
            const uint8_t* src = x + key * g.w * g.c;
            const size_t w_end = g.pl >= dw_wp_ ? 0 : std::min(g.w, dw_wp_ - g.pl);  // that fit
            if (cp == g.c) {
              std::memcpy(dst + g.pl * cp, src, w_end * g.c);
            } else {
              // Whole 16-byte blocks (a pixel's bytes past c land in its padded channels, whose
              // weights are zero) while the source has cp bytes left; the rest byte-exact.
              const size_t end = size_t(src - x) + w_end * g.c;  // vs the input's bytes
              const size_t fast = w_end && end + (cp - g.c) > x_bytes ? w_end - 1 : w_end;
              // (locals: a byte store may alias any captured value or member, which GCC then
              // reloads for every copy; 56x56x72 stride 2 took 32 us, twice the 80-channel time)
              const size_t c = g.c, dcp = cp;
              uint8_t* const d0 = dst + g.pl * cp;
              for (size_t iw = 0; iw < fast; ++iw)
                for (size_t j = 0; j < dcp; j += 16)
                  std::memcpy(d0 + iw * dcp + j, src + iw * c + j, 16);
              for (size_t iw = fast; iw < w_end; ++iw)
                std::memcpy(d0 + iw * dcp, src + iw * c, c);
            }
            held[slot] = key;
          }
          rows3[ky] = dst;
        }
        uint8_t* yr = y + r * g.ow * m * ys;
        if (out == nullptr) {
          dw_row_fn_(cp, g.ow, rows3, dw_w3_, dw_bias_.data(), dw_scale_.data(), yr, m, d_.rq);
          out_lut(yr, 1, 0, g.ow * m);
          continue;
        }
        dw_row_fn_(cp, g.ow, rows3, dw_w3_, dw_bias_.data(), dw_scale_.data(), out, cp, d_.rq);
        // Whole 16-byte blocks, each pixel's excess overwritten by the next; the last exact
        // (the next row may be another thread's). (Locals, as for the input rows.)
        {
          const size_t ow = g.ow, yb = m * ys, ob = cp * ys;
          const uint8_t* const o = out;
          for (size_t p = 0; p + 1 < ow; ++p)
            for (size_t j = 0; j < ob; j += 16) std::memcpy(yr + p * yb + j, o + p * ob + j, 16);
          std::memcpy(yr + (ow - 1) * yb, o + (ow - 1) * ob, yb);
        }
        out_lut(yr, 1, 0, g.ow * m);
      }
    });
  }

  // Column walks (see init_dw_rows): the input transposed and padded once per run, [n][column
  // from −pl][row from −pt][c], x_zp in the padding; then each output column is one row kernel
  // call down it, outputs ow·m elements apart.
  void run_dw_columns(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    const Q8ConvGeom& g = d_.geom;
    const size_t c = g.c, m = d_.m, s = g.sh, hp = dw_hp_, wp = dw_wp_, plane = wp * hp * c;
    uint8_t* const xt = thread_scratch(d_.batch * plane, 1);
    const uint8_t zp = static_cast<uint8_t>(d_.x_zp);
    const size_t h_end = std::min(g.h, hp - std::min(hp, g.pt));  // input rows the walk reads
    const size_t w_end = std::min(g.w, wp - std::min(wp, g.pl));
    for (size_t n = 0; n < d_.batch; ++n) {
      uint8_t* const img = xt + n * plane;
      for (size_t col = 0; col < wp; ++col) {  // the padding only: the copies write the rest
        uint8_t* const line = img + col * hp * c;
        if (col < g.pl || col >= g.pl + w_end) {
          std::memset(line, zp, hp * c);
          continue;
        }
        const size_t top = std::min(g.pt, hp);
        std::memset(line, zp, top * c);
        std::memset(line + (top + h_end) * c, zp, (hp - top - h_end) * c);
      }
      for (size_t h = 0; h < h_end; ++h) {
        const uint8_t* src = x + (n * g.h + h) * g.w * c;
        uint8_t* dst = img + (g.pl * hp + g.pt + h) * c;
        for (size_t w = 0; w < w_end; ++w, src += c, dst += hp * c)
          for (size_t j = 0; j < c; j += 16) std::memcpy(dst + j, src + j, 16);  // c % 16 == 0
      }
    }
    pool.parallel_for(d_.batch * g.ow, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        const size_t n = i / g.ow, ox = i % g.ow;
        const uint8_t* rows3[3];
        for (size_t k = 0; k < 3; ++k) rows3[k] = xt + n * plane + (ox * s + k) * hp * c;
        dw_row_fn_(c, g.oh, rows3, packed_cols_.data(), bias_.data(), scale_.data(),
                   y + (n * g.oh * g.ow + ox) * m * y_size_, g.ow * m, d_.rq);
        out_lut(y + (n * g.oh * g.ow + ox) * m, g.oh, g.ow * m, m);
      }
    });
  }

  // Otherwise one item per output row: the rows of input each tap row reads are found once per
  // row, so a pixel's tap pointers cost a compare and an add each.
  void run_dw(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    if (dw_columns_) return run_dw_columns(x, y, pool);
    if (dw_padded_) return run_dw_padded(x, y, pool);
    const Q8ConvGeom& g = d_.geom;
    const size_t rows = d_.batch * g.oh;
    // The depthwise kernel does about a third of GEMM's MACs per cycle.
    pool.parallel_for(rows, grain_for(3 * g.ow * d_.m * k_), [&](size_t b, size_t e) {
      ScratchLayout L;
      const size_t taps_off = L.add(k_ * sizeof(void*)), rows_off = L.add(g.kh * sizeof(void*));
      uint8_t* const scratch = thread_scratch(L.total());
      const void** const taps = reinterpret_cast<const void**>(scratch + taps_off);
      const uint8_t** const in_rows = reinterpret_cast<const uint8_t**>(scratch + rows_off);
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / g.oh, oh = r % g.oh;
        for (size_t ky = 0; ky < g.kh; ++ky) {
          const ptrdiff_t ih = ptrdiff_t(oh * g.sh + ky * g.dh) - ptrdiff_t(g.pt);
          in_rows[ky] = ih >= 0 && ih < ptrdiff_t(g.h) ? x + (n * g.h + size_t(ih)) * g.w * g.c
                                                       : nullptr;
        }
        uint8_t* yr = y + r * g.ow * d_.m * y_size_;
        if (dw_row_fn_) {
          const uint8_t* rows3[3];
          const size_t iw = ow_lo_ * g.sw - g.pl;
          for (size_t ky = 0; ky < 3; ++ky)
            rows3[ky] = (in_rows[ky] ? in_rows[ky] : pad_row_.data()) + iw * g.c;
          dw_row_fn_(g.c, ow_hi_ - ow_lo_, rows3, dw_w3_, bias_.data(),
                     scale_.data(), yr + ow_lo_ * d_.m * y_size_, d_.m, d_.rq);
        }
        for (size_t ow = 0; ow < g.ow; ++ow) {
          if (dw_row_fn_ && ow == ow_lo_) ow = ow_hi_;
          if (ow == g.ow) break;
          const ptrdiff_t iw0 = ptrdiff_t(ow * g.sw) - ptrdiff_t(g.pl);
          for (size_t ky = 0, t = 0; ky < g.kh; ++ky) {
            for (size_t kx = 0; kx < g.kw; ++kx, ++t) {
              const size_t iw = size_t(iw0 + ptrdiff_t(kx * g.dw));  // < 0 wraps past g.w
              taps[t] = in_rows[ky] && iw < g.w ? in_rows[ky] + iw * g.c : pad_row_.data();
            }
          }
          dw_fn_(g.c, k_, taps, dw_run_w_, bias_.data(), scale_.data(),
                 yr + ow * d_.m * y_size_, d_.rq);
        }
        out_lut(yr, 1, 0, g.ow * d_.m);
      }
    });
  }

  void run_gemm(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    const size_t mr = uk_->mr;
    const Split sp = split(mr, uk_->nr, pool);
    const size_t tg = sp.tile_groups, parts = sp.parts, part_cols = sp.part_cols;
    const size_t tr = sp.tile_rows;
    const size_t item_macs = tr * std::min(ng_, part_cols) * k_;
    pool.parallel_for(tg * parts, grain_for(item_macs), [&](size_t b, size_t e) {
      // im2col writes whole rows of kp_ (zeros past k)
      int16_t* const a = reinterpret_cast<int16_t*>(thread_scratch(tile_cap_ * kp_ * sizeof(int16_t)));
      size_t built = SIZE_MAX;  // the (tile, group) whose rows `a` holds
      for (size_t i = b; i < e; ++i) {
        const size_t tile_group = i / parts, part = i % parts;
        const size_t tile = tile_group / d_.group, gi = tile_group % d_.group;
        const auto [p0, rows] = tile_span(sp, tile);
        if (built != tile_group) {
          if (d_.x_type == DType::u8)
            q8_im2col_u8(d_.geom, x, d_.x_zp, gi * cg_, cg_, p0, rows, a, kp_);
          else
            q8_im2col_i8(d_.geom, reinterpret_cast<const int8_t*>(x), d_.x_zp, gi * cg_, cg_,
                         p0, rows, a, kp_);
          built = tile_group;
        }
        const size_t c_begin = part * part_cols, c_end = std::min(ng_, c_begin + part_cols);
        const int16_t* w = packed_.data() + gi * group_packed_;
        for (size_t c0 = c_begin; c0 < c_end; c0 += col_block_) {
          const size_t nc = std::min(col_block_, c_end - c0), ch = gi * ng_ + c0;
          for (size_t r = 0; r < rows; r += mr) {
            gemm_fn_(std::min(mr, rows - r), nc, kp_, a + r * kp_, kp_, w + c0 * kp_,
                     bias_.data() + ch, scale_.data() + ch,
                     y + ((p0 + r) * d_.m + ch) * y_size_, d_.m, d_.rq);
          }
        }
        if (c_begin < c_end)  // (parts past the last column are empty)
          out_lut(y + p0 * d_.m + gi * ng_ + c_begin, rows, d_.m, c_end - c_begin);
      }
    });
  }

  Q8ConvDesc d_;
  uint8_t out_lut_[256] = {};  // desc.out_table, applied by out_lut when lut_fn_ is set
  // The fused input multiply (d_.x_mul): the direct kernel, or (none on this ISA) the table.
  size_t mul_hw_ = 1;  // pixels per image
  Q8VmulDirectFn mul_fn_ = nullptr;
  std::vector<uint8_t> mul_table_;
  X8LutRowsFn lut_fn_ = nullptr;
  std::vector<int32_t> bias_;
  std::vector<float> scale_;
  AlignedVector<int16_t> packed_;
  std::vector<std::vector<Corr>> corr_;  // per group, by column; empty: none
  std::vector<int32_t> delta_;  // row_zp layers: w_zp − z0 per output channel; empty: none
  std::vector<int32_t> zp0_;    // init_row_zp_moved's z0 per channel (d_.w_zp points here)
  Q8GemmX8RowOffFn off_fn_ = nullptr;  // row_zp with one delta, when the kernel has it
  bool uniform_delta_ = false;         // every delta_ the same
  std::vector<uint8_t> perm_;  // pair_u8 in another K order (q8_gemm_x8_permute_rows' mask)
  // pair_u8 in a K order across groups of 16 (q8_gemm_x8_gpermute_rows' order; x8_gperm)
  std::vector<uint8_t> gperm_;
  mutable std::vector<int32_t> corr_flat_;  // corr_ as packed_attrs exports it
  AlignedArray<int8_t> packed8_;
  const int8_t* w8_ = nullptr;  // packed8_, or prepacked weights in the model's buffer
  std::vector<uint8_t> pad_row_;
  std::vector<size_t> tap_off_;  // indirect convs: tap t's byte offset from the window's origin
  size_t ind_cg_ = 0;            // indirect convs: the bytes of a tap (cg_, or kw·c: segments_)
  bool segments_ = false;        // indirect taps are whole kernel rows of a padded input copy
  size_t cg_ = 0, ng_ = 0, k_ = 0, kp_ = 0, pixels_ = 0, y_size_ = 1;
  // tile_rows_: a tile's nominal rows; tile_cap_: the most any tile holds (work buffers).
  size_t group_packed_ = 0, tile_rows_ = 0, tile_cap_ = 0, col_block_ = 0;
  bool depthwise_ = false, direct_ = false, sign_ = false, flat_ = false, prep_sign_ = false;
  bool dense_groups_ = false;
  // pair_u8 on weights that fail the pair test, run exactly by an exact_pairs kernel; stored as
  // x8_form 2 so that a kernel with int16 pair sums never takes the packing as it is.
  bool wide_pairs_ = false;
  Q8GemmX8IndirectFn ind_fn_ = nullptr;  // the indirect kernel, when the layer uses it
  size_t taps_ = 0;
  size_t ow_ = 1;
  size_t ngp_ = 0, lda_ = 0, srow_ = 0;
  const Q8GemmX8UKernel* xk_ = nullptr;
  Q8GemmX8Fn x8_fn_ = nullptr;
  const Q8GemmUKernel* uk_ = nullptr;
  Q8GemmFn gemm_fn_ = nullptr;
  Q8DwConvFn dw_fn_ = nullptr;
  Q8DwConvRowFn dw_row_fn_ = nullptr;
  size_t dw_kh_ = 3;                 // rows of dw_row_fn_'s kernel (3, or 5: init_dw_rows5)
  std::vector<int8_t> packed5_;      // the 5x5 row kernel's packing (dw_w3_ points here)
  AlignedVector<int16_t> packed_row_;
  AlignedVector<int16_t> packed_cols_;  // the 3x3 row kernel's packing of the transposed taps
  bool dw_columns_ = false;
  size_t dw_hp_ = 0;
  const int16_t* dw_w_ = nullptr;   // packed_, or prepacked weights in the model's buffer
  const int16_t* dw_run_w_ = nullptr;  // what dw_fn_ reads: dw_w_, or packed_b8_
  std::vector<int8_t> packed_b8_;    // the byte-form per-pixel kernel's packing
  const int16_t* dw_w3_ = nullptr;  // packed_row_, or the same
  size_t ow_lo_ = 0, ow_hi_ = 0;
  bool dw_padded_ = false;
  size_t dw_cp_ = 0, dw_wp_ = 0;  // padded rows: channels, columns
  size_t pad_input_bytes_ = 0, pad_h_ = 0, pad_w_ = 0;  // run_x8's padded input, when used
  std::vector<uint8_t> gather_;  // init_gather's masks, when the layer's rows are gathered
  std::vector<int32_t> dw_bias_;  // bias_ and scale_ padded to dw_cp_
  std::vector<float> dw_scale_;
};

}  // namespace

std::unique_ptr<Op> make_q8_conv(const OpSpec& spec, const Q8ConvDesc& d) {
  return std::make_unique<Q8ConvOp>(spec, d);
}

}  // namespace edgert
