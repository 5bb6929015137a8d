// fp32 softmax / log-softmax along any axis (max-subtracted, sums in double). Work items are
// (outer index, block of lanes along the inner dims), each lane computed whole by one item.
#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/f32-softmax/f32-softmax.h"
#include "ops/f32_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kLanesPerItem = 256;

class SoftmaxOp : public Op {
 public:
  explicit SoftmaxOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& xs = spec.inputs[0].shape;
    EDGERT_EXPECT(spec, xs == spec.outputs[0].shape, "Y shape must equal X shape");
    const int64_t r = static_cast<int64_t>(xs.size());
    const int64_t axis = static_cast<int64_t>(spec.axis(spec.attrs.i("axis", -1), xs.size()));
    const int64_t log = spec.attrs.i("log", 0);
    EDGERT_EXPECT(spec, log == 0 || log == 1, "log must be 0 or 1");
    log_ = log == 1;
    n_ = static_cast<size_t>(xs[axis]);
    outer_ = inner_ = 1;
    for (int64_t d = 0; d < r; ++d) {
      if (d < axis) outer_ *= static_cast<size_t>(xs[d]);
      if (d > axis) inner_ *= static_cast<size_t>(xs[d]);
    }
    if (spec.inputs[0].numel() == 0) outer_ = 0;
    blocks_ = (inner_ + kLanesPerItem - 1) / kLanesPerItem;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    if (inner_ == 1) {
      pool.parallel_for(outer_, std::max<size_t>(1, 4096 / std::max<size_t>(n_, 1)),
                        [&](size_t s, size_t e) {
        for (size_t o = s; o < e; ++o)
          f32_softmax__scalar(n_, 1, 1, x + o * n_, y + o * n_, log_, nullptr, nullptr);
      });
      return;
    }
    pool.parallel_for(outer_ * blocks_, 1, [&](size_t s, size_t e) {
      std::vector<float> fwork(2 * kLanesPerItem);
      std::vector<double> dwork(kLanesPerItem);
      for (size_t item = s; item < e; ++item) {
        const size_t o = item / blocks_, j0 = (item % blocks_) * kLanesPerItem;
        const size_t lanes = std::min(kLanesPerItem, inner_ - j0);
        const size_t off = o * n_ * inner_ + j0;
        f32_softmax__scalar(n_, lanes, inner_, x + off, y + off, log_, fwork.data(),
                            dwork.data());
      }
    });
  }

 private:
  size_t n_ = 0, outer_ = 0, inner_ = 1, blocks_ = 0;
  bool log_ = false;
};

std::unique_ptr<Op> make_softmax(const OpSpec& s) { return std::make_unique<SoftmaxOp>(s); }

}  // namespace

EDGERT_REGISTER_OP("softmax", make_softmax);

}  // namespace edgert
