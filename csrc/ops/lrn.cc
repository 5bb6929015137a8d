// fp32 LRN (ONNX LocalResponseNormalization) across the channel axis given by `axis`; in NHWC
// that is the last axis. One work item per (outer index, block of inner lanes).
#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/f32-lrn/f32-lrn.h"
#include "ops/f32_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

class LrnOp : public Op {
 public:
  explicit LrnOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& xs = spec.inputs[0].shape;
    EDGERT_EXPECT(spec, xs == spec.outputs[0].shape, "Y shape must equal X shape");
    const int64_t r = static_cast<int64_t>(xs.size());
    const int64_t axis = static_cast<int64_t>(spec.axis(spec.attrs.i("axis"), xs.size()));
    const int64_t size = spec.attrs.i("size");
    EDGERT_EXPECT(spec, size >= 1 && size <= (int64_t(1) << 30), "size must be >= 1");
    size_ = static_cast<size_t>(size);
    alpha_ = static_cast<float>(spec.attrs.f("alpha", 1e-4));
    beta_ = static_cast<float>(spec.attrs.f("beta", 0.75));
    bias_ = static_cast<float>(spec.attrs.f("bias", 1.0));
    c_ = static_cast<size_t>(xs[axis]);
    outer_ = inner_ = 1;
    for (int64_t d = 0; d < r; ++d) {
      if (d < axis) outer_ *= static_cast<size_t>(xs[d]);
      if (d > axis) inner_ *= static_cast<size_t>(xs[d]);
    }
    if (spec.inputs[0].numel() == 0) outer_ = 0;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const size_t slice = c_ * inner_;
    pool.parallel_for(outer_, 1, [&](size_t s, size_t e) {
      std::vector<float> sq(inner_);
      for (size_t o = s; o < e; ++o)
        f32_lrn__scalar(c_, inner_, x + o * slice, y + o * slice, size_, alpha_, beta_, bias_,
                        sq.data());
    });
  }

 private:
  size_t c_ = 0, outer_ = 0, inner_ = 1, size_ = 1;
  float alpha_ = 0, beta_ = 0, bias_ = 0;
};

std::unique_ptr<Op> make_lrn(const OpSpec& s) { return std::make_unique<LrnOp>(s); }

}  // namespace

EDGERT_REGISTER_OP("lrn", make_lrn);

}  // namespace edgert
