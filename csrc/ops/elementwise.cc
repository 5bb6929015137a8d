// fp32 elementwise ops: binary (numpy broadcasting, rank <= 6, fused clamp), unary, and
// channel_affine. Broadcasting collapses runs of dims that broadcast alike, so same-shape,
// scalar and per-channel operands all reach the kernel as one long run per row.
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/f32-vaffine/f32-vaffine.h"
#include "kernels/f32-vbinary/f32-vbinary.h"
#include "kernels/f32-vunary/f32-vunary.h"
#include "ops/f32_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kGrainElems = 16384;  // elements per parallel chunk, at least

size_t grain_rows(size_t inner) { return std::max<size_t>(1, kGrainElems / std::max<size_t>(inner, 1)); }

class BinaryOp : public Op {
 public:
  explicit BinaryOp(const OpSpec& spec) {
    spec.expect_arity(2, 1);
    expect_all_f32(spec);
    static const std::pair<const char*, F32BinaryKind> kKinds[] = {
        {"add", F32BinaryKind::add}, {"sub", F32BinaryKind::sub}, {"mul", F32BinaryKind::mul},
        {"div", F32BinaryKind::div}, {"max", F32BinaryKind::max}, {"min", F32BinaryKind::min},
        {"pow", F32BinaryKind::pow}};
    const std::string kind = spec.attrs.s("kind");
    const F32BinaryKind* k = nullptr;
    for (const auto& e : kKinds) if (kind == e.first) k = &e.second;
    EDGERT_EXPECT(spec, k != nullptr, "unknown kind '" + kind + "'");
    clamp_ = parse_clamp(spec);
    const auto& as = spec.inputs[0].shape;
    const auto& bs = spec.inputs[1].shape;
    const auto& ys = spec.outputs[0].shape;
    const size_t r = ys.size();
    EDGERT_EXPECT(spec, r <= 6 && as.size() <= r && bs.size() <= r, "rank must be <= 6 and A, B <= Y");
    struct Dim { int64_t n; bool a_bc, b_bc; };
    std::vector<Dim> dims;
    for (size_t d = 0; d < r; ++d) {
      const int64_t a = d + as.size() >= r ? as[d + as.size() - r] : 1;
      const int64_t b = d + bs.size() >= r ? bs[d + bs.size() - r] : 1;
      EDGERT_EXPECT(spec, (a == b || a == 1 || b == 1) && ys[d] == (a == 1 ? b : a),
                  "shapes " + shape_to_string(as) + " and " + shape_to_string(bs) +
                      " do not broadcast to " + shape_to_string(ys));
      if (ys[d] == 1) continue;
      const Dim cur{ys[d], a == 1, b == 1};
      if (!dims.empty() && dims.back().a_bc == cur.a_bc && dims.back().b_bc == cur.b_bc) {
        dims.back().n *= cur.n;  // bounded by Y's element count
      } else {
        dims.push_back(cur);
      }
    }
    if (dims.empty()) dims.push_back({1, false, false});
    size_t sa = 1, sb = 1;
    for (size_t d = dims.size(); d-- > 0;) {
      dims_.insert(dims_.begin(), static_cast<size_t>(dims[d].n));
      a_str_.insert(a_str_.begin(), dims[d].a_bc ? 0 : sa);
      b_str_.insert(b_str_.begin(), dims[d].b_bc ? 0 : sb);
      if (!dims[d].a_bc) sa *= static_cast<size_t>(dims[d].n);
      if (!dims[d].b_bc) sb *= static_cast<size_t>(dims[d].n);
    }
    inner_ = dims_.back();
    const F32BinaryShape shape = dims.back().a_bc   ? F32BinaryShape::sv
                                 : dims.back().b_bc ? F32BinaryShape::vs
                                                    : F32BinaryShape::vv;
    fn_ = f32_vbinary_minmax__scalar(*k, shape);
    rows_ = 1;
    for (size_t d = 0; d + 1 < dims_.size(); ++d) rows_ *= dims_[d];
    if (spec.outputs[0].numel() == 0) rows_ = 0;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* a = static_cast<const float*>(in[0]);
    const float* b = static_cast<const float*>(in[1]);
    float* y = static_cast<float*>(out[0]);
    const size_t outer = dims_.size() - 1;
    pool.parallel_for(rows_, grain_rows(inner_), [&](size_t s, size_t e) {
      for (size_t row = s; row < e; ++row) {
        size_t oa = 0, ob = 0, rem = row;
        for (size_t d = outer; d-- > 0;) {
          const size_t i = rem % dims_[d];
          rem /= dims_[d];
          oa += i * a_str_[d];
          ob += i * b_str_[d];
        }
        fn_(inner_, a + oa, b + ob, y + row * inner_, clamp_.lo, clamp_.hi);
      }
    });
  }

 private:
  std::vector<size_t> dims_, a_str_, b_str_;  // collapsed dims, element strides (0: broadcast)
  size_t inner_ = 1, rows_ = 0;
  F32VBinaryFn fn_ = nullptr;
  F32Clamp clamp_;
};

class UnaryOp : public Op {
 public:
  explicit UnaryOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    EDGERT_EXPECT(spec, spec.inputs[0].shape == spec.outputs[0].shape, "Y shape must equal X shape");
    n_ = static_cast<size_t>(spec.inputs[0].numel());
    static const std::pair<const char*, F32UnaryKind> kKinds[] = {
        {"relu", F32UnaryKind::relu}, {"clip", F32UnaryKind::clip},
        {"leaky_relu", F32UnaryKind::leaky_relu}, {"sigmoid", F32UnaryKind::sigmoid},
        {"tanh", F32UnaryKind::tanh}, {"hard_sigmoid", F32UnaryKind::hard_sigmoid},
        {"hard_swish", F32UnaryKind::hard_swish}, {"exp", F32UnaryKind::exp},
        {"log", F32UnaryKind::log}, {"sqrt", F32UnaryKind::sqrt}, {"neg", F32UnaryKind::neg},
        {"abs", F32UnaryKind::abs}, {"erf", F32UnaryKind::erf}, {"gelu", F32UnaryKind::gelu}};
    const std::string kind = spec.attrs.s("kind");
    bool found = false;
    for (const auto& e : kKinds) {
      if (kind == e.first) { kind_ = e.second; found = true; }
    }
    EDGERT_EXPECT(spec, found, "unknown kind '" + kind + "'");
    const float inf = std::numeric_limits<float>::infinity();
    if (kind_ == F32UnaryKind::clip) {
      p_.lo = static_cast<float>(spec.attrs.f("min", -inf));
      p_.hi = static_cast<float>(spec.attrs.f("max", inf));
      EDGERT_EXPECT(spec, p_.lo <= p_.hi, "clip min must be <= max (and not NaN)");
    } else if (kind_ == F32UnaryKind::leaky_relu) {
      p_.alpha = static_cast<float>(spec.attrs.f("alpha", 0.01));
    } else if (kind_ == F32UnaryKind::hard_sigmoid) {
      p_.alpha = static_cast<float>(spec.attrs.f("alpha", 0.2));
      p_.beta = static_cast<float>(spec.attrs.f("beta", 0.5));
    } else if (kind_ == F32UnaryKind::gelu) {
      const std::string approx = spec.attrs.s("approximate", "none");
      EDGERT_EXPECT(spec, approx == "none" || approx == "tanh", "gelu approximate must be none or tanh");
      if (approx == "tanh") kind_ = F32UnaryKind::gelu_tanh;
    }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    pool.parallel_for(n_, kGrainElems, [&](size_t s, size_t e) {
      f32_vunary__scalar(kind_, e - s, x + s, y + s, p_);
    });
  }

 private:
  size_t n_ = 0;
  F32UnaryKind kind_ = F32UnaryKind::relu;
  F32UnaryParams p_;
};

class ChannelAffineOp : public Op {
 public:
  explicit ChannelAffineOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& xs = spec.inputs[0].shape;
    EDGERT_EXPECT(spec, xs == spec.outputs[0].shape, "Y shape must equal X shape");
    const int64_t r = static_cast<int64_t>(xs.size());
    const int64_t axis = static_cast<int64_t>(spec.axis(spec.attrs.i("axis"), xs.size()));
    c_ = static_cast<size_t>(xs[axis]);
    outer_ = inner_ = 1;
    for (int64_t d = 0; d < r; ++d) {
      if (d < axis) outer_ *= static_cast<size_t>(xs[d]);
      if (d > axis) inner_ *= static_cast<size_t>(xs[d]);
    }
    const float* s = spec.attrs.array("scale", DType::f32, xs[axis]).as<float>();
    const float* t = spec.attrs.array("shift", DType::f32, xs[axis]).as<float>();
    scale_.assign(s, s + c_);
    shift_.assign(t, t + c_);
    if (spec.inputs[0].numel() == 0) outer_ = 0;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    if (inner_ == 1) {
      pool.parallel_for(outer_, grain_rows(c_), [&](size_t s, size_t e) {
        for (size_t r = s; r < e; ++r)
          f32_vaffine_vv__scalar(c_, x + r * c_, scale_.data(), shift_.data(), y + r * c_);
      });
      return;
    }
    pool.parallel_for(outer_ * c_, grain_rows(inner_), [&](size_t s, size_t e) {
      for (size_t r = s; r < e; ++r) {
        const size_t ch = r % c_;
        f32_vaffine_ss__scalar(inner_, x + r * inner_, scale_[ch], shift_[ch], y + r * inner_);
      }
    });
  }

 private:
  size_t c_ = 0, outer_ = 0, inner_ = 1;
  std::vector<float> scale_, shift_;
};

std::unique_ptr<Op> make_binary(const OpSpec& s) { return std::make_unique<BinaryOp>(s); }
std::unique_ptr<Op> make_unary(const OpSpec& s) { return std::make_unique<UnaryOp>(s); }
std::unique_ptr<Op> make_affine(const OpSpec& s) { return std::make_unique<ChannelAffineOp>(s); }

}  // namespace

EDGERT_REGISTER_OP("binary", make_binary);
EDGERT_REGISTER_OP("unary", make_unary);
EDGERT_REGISTER_OP("channel_affine", make_affine);

}  // namespace edgert
