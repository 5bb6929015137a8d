// fp32 gemm (weights packed at creation) and matmul (both operands at run time, batch dims
// broadcast). Work is split over (panel group, block of M rows); every output element is computed
// by one tile with a fixed summation order, so results do not depend on the thread count.
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/f32-gemm/f32-gemm.h"
#include "ops/f32_util.h"
#include "runtime/aligned.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kRowsPerItem = 64;   // M rows of one work item
constexpr size_t kPanelsPerItem = 4;  // NR-column panels of one work item

struct Tiling {
  size_t m, n, k, row_blocks, panel_groups, panels;
  Tiling(size_t m_, size_t n_, size_t k_) : m(m_), n(n_), k(k_) {
    row_blocks = (m + kRowsPerItem - 1) / kRowsPerItem;
    panels = (n + kF32GemmNR - 1) / kF32GemmNR;
    panel_groups = (panels + kPanelsPerItem - 1) / kPanelsPerItem;
  }
  size_t items() const { return row_blocks * panel_groups; }
  // Item i: panel group outer so consecutive items of one thread reuse the same panels.
  void run_item(size_t i, const float* a, const float* packed, float* c, float lo,
                float hi) const {
    const size_t g = i / row_blocks, rb = i % row_blocks;
    const size_t m0 = rb * kRowsPerItem, m1 = std::min(m, m0 + kRowsPerItem);
    const size_t p0 = g * kPanelsPerItem, p1 = std::min(panels, p0 + kPanelsPerItem);
    f32_gemm_minmax_rows(m0, m1, p0, p1, n, k, a, k, packed, c, n, lo, hi);
  }
};

class GemmOp : public Op {
 public:
  explicit GemmOp(const OpSpec& spec) : tiling_(0, 0, 0) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& as = spec.inputs[0].shape;
    const auto& ys = spec.outputs[0].shape;
    EDGERT_EXPECT(spec, !as.empty(), "A must have rank >= 1");
    const Array& w = spec.attrs.array("weight", DType::f32);
    EDGERT_EXPECT(spec, w.shape.size() == 2, "weight must be [N,K]");
    const int64_t n = w.shape[0], k = w.shape[1];
    EDGERT_EXPECT(spec, as.back() == k, "A's last dim " + std::to_string(as.back()) +
                                    " != weight K " + std::to_string(k));
    std::vector<int64_t> want(as.begin(), as.end() - 1);
    want.push_back(n);
    EDGERT_EXPECT(spec, ys == want, "Y shape " + shape_to_string(ys) + ", expected " +
                                shape_to_string(want));
    const float* bias = nullptr;
    if (spec.attrs.has("bias")) bias = spec.attrs.array("bias", DType::f32, n).as<float>();
    clamp_ = parse_clamp(spec);
    int64_t m = 1;
    for (size_t d = 0; d + 1 < as.size(); ++d) m = mul_checked(spec, m, as[d]);
    mul_checked(spec, (n + 15) / 16 * 16, k + 1);
    tiling_ = Tiling(static_cast<size_t>(m), static_cast<size_t>(n), static_cast<size_t>(k));
    packed_.resize(f32_gemm_packed_size(n, k));
    f32_gemm_pack_nk(n, k, w.as<float>(), k, bias, packed_.data());
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* a = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const Tiling& t = tiling_;
    pool.parallel_for(t.items(), 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) t.run_item(i, a, packed_.data(), y, clamp_.lo, clamp_.hi);
    });
  }

 private:
  Tiling tiling_;
  AlignedVector<float> packed_;
  F32Clamp clamp_;
};

// Batch dims of one operand broadcast to the output's: offset (in matrices) per output batch.
std::vector<size_t> batch_offsets(const std::vector<int64_t>& in_batch,
                                  const std::vector<int64_t>& out_batch) {
  const size_t r = out_batch.size(), pad = r - in_batch.size();
  size_t total = 1;
  for (int64_t d : out_batch) total *= static_cast<size_t>(d);
  std::vector<size_t> offs(total);
  std::vector<int64_t> idx(r, 0);
  for (size_t o = 0; o < total; ++o) {
    size_t off = 0;
    for (size_t d = pad; d < r; ++d) {
      const int64_t dim = in_batch[d - pad];
      off = off * static_cast<size_t>(dim) + static_cast<size_t>(dim == 1 ? 0 : idx[d]);
    }
    offs[o] = off;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < out_batch[d]) break;
      idx[d] = 0;
    }
  }
  return offs;
}

class MatMulOp : public Op {
 public:
  explicit MatMulOp(const OpSpec& spec) : tiling_(0, 0, 0) {
    spec.expect_arity(2, 1);
    expect_all_f32(spec);
    auto as = spec.inputs[0].shape, bs = spec.inputs[1].shape;
    EDGERT_EXPECT(spec, !as.empty() && !bs.empty(), "operands must have rank >= 1");
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);  // numpy: a vector A is one row, dropped from Y
    if (b_vec) bs.push_back(1);           // a vector B is one column, dropped from Y
    const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    EDGERT_EXPECT(spec, bs[bs.size() - 2] == k, "K mismatch: A " + shape_to_string(spec.inputs[0].shape) +
                                            ", B " + shape_to_string(spec.inputs[1].shape));
    std::vector<int64_t> ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    const size_t r = std::max(ab.size(), bb.size());
    EDGERT_EXPECT(spec, r <= 8, "too many batch dims");
    std::vector<int64_t> yb(r);
    for (size_t d = 0; d < r; ++d) {
      const int64_t x = d + ab.size() >= r ? ab[d + ab.size() - r] : 1;
      const int64_t z = d + bb.size() >= r ? bb[d + bb.size() - r] : 1;
      EDGERT_EXPECT(spec, x == z || x == 1 || z == 1, "batch dims do not broadcast");
      yb[d] = x == 1 ? z : x;
    }
    std::vector<int64_t> want = yb;
    if (!a_vec) want.push_back(m);
    if (!b_vec) want.push_back(n);
    EDGERT_EXPECT(spec, spec.outputs[0].shape == want, "Y shape " +
                shape_to_string(spec.outputs[0].shape) + ", expected " + shape_to_string(want));
    // An empty Y has nothing to compute (and its batch count may be huge with M or N zero).
    empty_ = spec.outputs[0].numel() == 0;
    if (empty_) return;
    a_offs_ = batch_offsets(ab, yb);
    b_offs_ = batch_offsets(bb, yb);
    b_count_ = 1;
    for (int64_t d : bb) b_count_ *= static_cast<size_t>(d);
    // One shared B and an unbroadcast A: the batch folds into M, one taller gemm.
    size_t a_count = 1;
    for (int64_t d : ab) a_count *= static_cast<size_t>(d);
    fold_ = b_count_ == 1 && a_count == a_offs_.size();
    packed_one_ = f32_gemm_packed_size(n, k);
    mul_checked(spec, static_cast<int64_t>(packed_one_), static_cast<int64_t>(b_count_));
    const size_t rows = fold_ ? m * a_offs_.size() : m;
    tiling_ = Tiling(rows, static_cast<size_t>(n), static_cast<size_t>(k));
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (empty_) return;
    const float* a = static_cast<const float*>(in[0]);
    const float* b = static_cast<const float*>(in[1]);
    float* y = static_cast<float*>(out[0]);
    const Tiling& t = tiling_;
    AlignedVector<float> packed(packed_one_ * b_count_);
    pool.parallel_for(b_count_, 1, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i)
        f32_gemm_pack_kn(t.n, t.k, b + i * t.k * t.n, t.n, packed.data() + i * packed_one_);
    });
    const float inf = std::numeric_limits<float>::infinity();
    if (fold_) {
      pool.parallel_for(t.items(), 1, [&](size_t s, size_t e) {
        for (size_t i = s; i < e; ++i) t.run_item(i, a, packed.data(), y, -inf, inf);
      });
      return;
    }
    const size_t per = t.items(), a_mat = t.m * t.k, y_mat = t.m * t.n;
    pool.parallel_for(a_offs_.size() * per, 1, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) {
        const size_t bi = i / per;
        t.run_item(i % per, a + a_offs_[bi] * a_mat, packed.data() + b_offs_[bi] * packed_one_,
                   y + bi * y_mat, -inf, inf);
      }
    });
  }

 private:
  Tiling tiling_;
  std::vector<size_t> a_offs_, b_offs_;
  size_t b_count_ = 1, packed_one_ = 0;
  bool fold_ = false, empty_ = false;
};

std::unique_ptr<Op> make_gemm(const OpSpec& spec) { return std::make_unique<GemmOp>(spec); }
std::unique_ptr<Op> make_matmul(const OpSpec& spec) { return std::make_unique<MatMulOp>(spec); }

}  // namespace

EDGERT_REGISTER_OP("gemm", make_gemm);
EDGERT_REGISTER_OP("matmul", make_matmul);

}  // namespace edgert
