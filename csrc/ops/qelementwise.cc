// qadd, qmul: 8-bit elementwise add / multiply with numpy broadcasting (rank <= 6), bit-exact
// with onnxruntime's QLinearAdd / QLinearMul. The result depends only on the two input bytes,
// so the op is tabulated once at creation (64 KiB) and a run is byte lookups.
//
// onnxruntime's add formula is not symmetric: it depends on which operand is the broadcast
// scalar of the innermost run (see kernels/q8-vadd). The broadcast pattern is fixed by the
// shapes, so it is decided here at creation, exactly as onnxruntime decides it per run.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/q8-vadd/q8-vadd.h"
#include "kernels/q8-vmul/q8-vmul.h"
#include "kernels/x8-lut/x8-lut.h"
#include "ops/q8_util.h"
#include "runtime/registry.h"
#include "runtime/scratch.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kMaxRank = 6;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// The output iterated as runs of `inner` elements; along a run each operand either advances
// (span) or stays (scalar). Outer dims give each run's operand offsets.
struct Broadcast {
  enum Inner { kBoth, kOnlyA, kOnlyB } mode = kBoth;  // which operands advance along a run
  size_t inner = 1;
  std::vector<size_t> dims, a_stride, b_stride;  // outer dims, outermost first

  Broadcast(const OpSpec& spec, const std::vector<int64_t>& as, const std::vector<int64_t>& bs,
            const std::vector<int64_t>& ys) {
    EDGERT_EXPECT(spec, as.size() <= kMaxRank && bs.size() <= kMaxRank,
                "operands of rank > 6 are not supported");
    const size_t r = std::max(as.size(), bs.size());
    std::vector<int64_t> a(r, 1), b(r, 1), want(r);
    std::copy(as.begin(), as.end(), a.begin() + (r - as.size()));
    std::copy(bs.begin(), bs.end(), b.begin() + (r - bs.size()));
    for (size_t d = 0; d < r; ++d) {
      EDGERT_EXPECT(spec, a[d] == b[d] || a[d] == 1 || b[d] == 1,
                  "shapes " + shape_str(as) + " and " + shape_str(bs) + " do not broadcast");
      want[d] = a[d] == 1 ? b[d] : a[d];
    }
    EDGERT_EXPECT(spec, ys == want, "Y shape " + shape_str(ys) + ", expected " + shape_str(want));
    // Drop size-1 output dims, then merge neighbours with the same advance pattern.
    struct Dim { size_t n; bool a, b; };
    std::vector<Dim> ds;
    for (size_t d = 0; d < r; ++d) {
      if (want[d] == 1) continue;
      const Dim cur{static_cast<size_t>(want[d]), a[d] != 1, b[d] != 1};
      if (!ds.empty() && ds.back().a == cur.a && ds.back().b == cur.b) {
        ds.back().n *= cur.n;
      } else {
        ds.push_back(cur);
      }
    }
    if (ds.empty()) {
      mode = kOnlyB;  // one element: onnxruntime treats A as the scalar
      return;
    }
    const Dim last = ds.back();
    inner = last.n;
    mode = last.a && last.b ? kBoth : (last.a ? kOnlyA : kOnlyB);
    ds.pop_back();
    size_t sa = last.a ? inner : 1, sb = last.b ? inner : 1;
    dims.resize(ds.size());
    a_stride.resize(ds.size());
    b_stride.resize(ds.size());
    for (size_t i = ds.size(); i-- > 0;) {
      dims[i] = ds[i].n;
      a_stride[i] = ds[i].a ? sa : 0;
      b_stride[i] = ds[i].b ? sb : 0;
      if (ds[i].a) sa *= ds[i].n;
      if (ds[i].b) sb *= ds[i].n;
    }
  }

  void offsets(size_t run, size_t* ao, size_t* bo) const {
    size_t a = 0, b = 0;
    for (size_t i = dims.size(); i-- > 0;) {
      const size_t k = run % dims[i];
      run /= dims[i];
      a += k * a_stride[i];
      b += k * b_stride[i];
    }
    *ao = a;
    *bo = b;
  }
};

class QBinaryOp : public Op {
 public:
  QBinaryOp(const OpSpec& spec, bool is_add)
      : bc_((spec.expect_arity(2, 1), spec), spec.inputs[0].shape, spec.inputs[1].shape,
            spec.outputs[0].shape) {
    const DType at = spec.inputs[0].dtype, bt = spec.inputs[1].dtype;
    const DType yt = spec.outputs[0].dtype;
    expect_q8(spec, spec.inputs[0], "A");
    expect_q8(spec, spec.inputs[1], "B");
    expect_q8(spec, spec.outputs[0], "Y");
    const float as = q8_scale(spec, "a_scale"), bs = q8_scale(spec, "b_scale");
    const float ys = q8_scale(spec, "y_scale");
    const int32_t az = q8_zp(spec, "a_zp", at), bz = q8_zp(spec, "b_zp", bt);
    const int32_t yz = q8_zp(spec, "y_zp", yt);
    const Q8Clamp c = q8_clamp(spec, yt);
    numel_ = static_cast<size_t>(spec.outputs[0].numel());
    const bool a_signed = at == DType::i8, b_signed = bt == DType::i8;
    // The direct kernels take the operand that advances along a run first: B when A is the
    // run's broadcast scalar (onnxruntime's add formula then also takes B as its first operand).
    const bool swap = bc_.mode == Broadcast::kOnlyB;
    x_signed_ = swap ? b_signed : a_signed;
    s_signed_ = swap ? a_signed : b_signed;
    if (is_add) {
      add_ = swap ? q8_vadd_params(bs, bz, as, az, ys, yz, c.lo, c.hi)
                  : q8_vadd_params(as, az, bs, bz, ys, yz, c.lo, c.hi);
      add_fn_ = q8_vadd_direct();
    } else {
      mul_ = swap ? q8_vmul_params(bs, bz, as, az, ys, yz, c.lo, c.hi)
                  : q8_vmul_params(as, az, bs, bz, ys, yz, c.lo, c.hi);
      mul_fn_ = q8_vmul_direct();
    }
    // B repeating one run of A's contiguous bytes (a squeeze-and-excitation scale, x[N,H,W,C] ·
    // s[C]): runs of C elements, each a kernel call and an offset computation; instead a thread
    // repeats B's run into a buffer and the kernel takes many runs a call (MobileNetV3-Small's
    // 56x56x16 multiply: 3136 calls of 16 bytes).
    periodic_b_ = bc_.mode == Broadcast::kBoth && bc_.dims.size() == 1 && bc_.b_stride[0] == 0 &&
                  bc_.a_stride[0] == bc_.inner && bc_.inner < kPeriodBytes / 2;
    if (add_fn_ || mul_fn_) return;  // a SIMD ISA computes the formula directly: no table
    lut_ = x8_lut_ukernel();
    // Table rows are indexed by the operand that stays constant along a run (A in kBoth).
    table_.resize(65536);
    const bool row_is_a = bc_.mode != Broadcast::kOnlyA;
    if (is_add) {
      q8_vadd_fp32_table(add_, x_signed_, s_signed_, /*row_is_x=*/!swap && row_is_a,
                         table_.data());
    } else {
      // The product is symmetric: the swapped parameters give the same table.
      q8_vmul_fp32_table(q8_vmul_params(as, az, bs, bz, ys, yz, c.lo, c.hi), a_signed, b_signed,
                         row_is_a, table_.data());
    }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const uint8_t* a = static_cast<const uint8_t*>(in[0]);
    const uint8_t* b = static_cast<const uint8_t*>(in[1]);
    uint8_t* y = static_cast<uint8_t*>(out[0]);
    if (periodic_b_ && (add_fn_ || mul_fn_)) return run_periodic(a, b, y, pool);
    pool.parallel_for(numel_, 1 << 14, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end;) {
        const size_t run = i / bc_.inner, off = i % bc_.inner;
        const size_t len = std::min(bc_.inner - off, end - i);
        size_t ao, bo;
        bc_.offsets(run, &ao, &bo);
        if (add_fn_ || mul_fn_) {
          const uint8_t* x = bc_.mode == Broadcast::kOnlyB ? b + bo + off : a + ao + off;
          const uint8_t* sv = bc_.mode == Broadcast::kBoth    ? b + bo + off
                              : bc_.mode == Broadcast::kOnlyA ? b + bo
                                                              : a + ao;
          const bool scalar = bc_.mode != Broadcast::kBoth;
          if (add_fn_) add_fn_(len, x, sv, scalar, x_signed_, s_signed_, add_, y + i);
          else mul_fn_(len, x, sv, scalar, x_signed_, s_signed_, mul_, y + i);
          i += len;
          continue;
        }
        switch (bc_.mode) {
          case Broadcast::kBoth:
            x8_lut2_ukernel__scalar(len, a + ao + off, b + bo + off, table_.data(), y + i);
            break;
          case Broadcast::kOnlyA:
            lut_(len, a + ao + off, table_.data() + size_t(b[bo]) * 256, y + i);
            break;
          case Broadcast::kOnlyB:
            lut_(len, b + bo + off, table_.data() + size_t(a[ao]) * 256, y + i);
            break;
        }
        i += len;
      }
    });
  }

 private:
  static constexpr size_t kPeriodBytes = 2048;  // B's run repeated up to this many bytes

  // periodic_b_: y[i] = f(a[i], b[i % inner]) through B's run repeated in a thread's buffer.
  void run_periodic(const uint8_t* a, const uint8_t* b, uint8_t* y, ThreadPool& pool) const {
    const size_t c = bc_.inner, span = kPeriodBytes / c * c;  // whole runs
    pool.parallel_for(numel_, 1 << 14, [&](size_t begin, size_t end) {
      uint8_t* const rep = thread_scratch(span);
      for (size_t k = 0; k < span; k += c) std::memcpy(rep + k, b, c);
      for (size_t i = begin; i < end;) {
        const size_t off = i % c, len = std::min(span - off, end - i);
        if (add_fn_) add_fn_(len, a + i, rep + off, false, x_signed_, s_signed_, add_, y + i);
        else mul_fn_(len, a + i, rep + off, false, x_signed_, s_signed_, mul_, y + i);
        i += len;
      }
    });
  }

  Broadcast bc_;
  bool periodic_b_ = false;
  size_t numel_ = 0;
  bool x_signed_ = false, s_signed_ = false;
  Q8AddParams add_{};
  Q8MulParams mul_{};
  Q8VaddDirectFn add_fn_ = nullptr;
  Q8VmulDirectFn mul_fn_ = nullptr;
  std::vector<uint8_t> table_;  // the scalar form: every result, by operand bytes
  X8LutFn lut_ = nullptr;
};

}  // namespace

EDGERT_REGISTER_OP("qadd", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QBinaryOp>(s, true);
});
EDGERT_REGISTER_OP("qmul", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QBinaryOp>(s, false);
});

}  // namespace edgert
