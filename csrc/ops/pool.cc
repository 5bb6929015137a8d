// fp32 NHWC average pooling (global pooling is kernel = [H, W]) with onnxruntime's divisor; the
// output size, ceil_mode included, is Y's. One work item per output row.
#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/f32-avgpool/f32-avgpool.h"
#include "ops/f32_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

class AvgPoolOp : public Op {
 public:
  explicit AvgPoolOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& xs = spec.inputs[0].shape;
    const auto& ys = spec.outputs[0].shape;
    EDGERT_EXPECT(spec, xs.size() == 4 && ys.size() == 4, "X and Y must be NHWC (rank 4)");
    EDGERT_EXPECT(spec, xs[0] == ys[0] && xs[3] == ys[3], "batch and channels of X and Y must match");
    const auto kernel = ints_n(spec, "kernel", 2, 1);
    const auto strides = ints_n(spec, "strides", 2, 1, {1, 1});
    const auto pads = ints_n(spec, "pads", 4, 0, {0, 0, 0, 0});
    const auto dil = ints_n(spec, "dilations", 2, 1, {1, 1});
    const int64_t cip = spec.attrs.i("count_include_pad", 0);
    EDGERT_EXPECT(spec, cip == 0 || cip == 1, "count_include_pad must be 0 or 1");
    include_pad_ = cip == 1;
    g_ = F32ConvGeometry{xs[1], xs[2], xs[3], ys[1], ys[2], kernel[0], kernel[1], strides[0],
                         strides[1], pads[0], pads[1], dil[0], dil[1]};
    pb_ = pads[2];
    pr_ = pads[3];
    for (int axis = 0; axis < 2; ++axis) {
      // Y's size is the planner's (floor or ceil mode); accept exactly those two values, and
      // require every window to start inside X or its leading padding.
      const int64_t in = xs[1 + axis] + pads[axis] + pads[axis + 2];
      const int64_t span = dil[axis] * (kernel[axis] - 1) + 1;
      EDGERT_EXPECT(spec, in >= span, "kernel larger than padded input");
      const int64_t fl = (in - span) / strides[axis] + 1;
      const int64_t ce = (in - span + strides[axis] - 1) / strides[axis] + 1;
      const int64_t out = ys[1 + axis];
      EDGERT_EXPECT(spec, out == fl || out == ce, "Y spatial dim " + std::to_string(out) +
                                              " is neither floor nor ceil mode");
      EDGERT_EXPECT(spec, (out - 1) * strides[axis] < xs[1 + axis] + pads[axis],
                  "last window starts past the input");
    }
    rows_ = static_cast<size_t>(ys[0] * ys[1]);
    if (spec.outputs[0].numel() == 0) rows_ = 0;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const size_t oh = static_cast<size_t>(g_.oh), row = static_cast<size_t>(g_.ow * g_.c);
    pool.parallel_for(rows_, 1, [&](size_t s, size_t e) {
      for (size_t r = s; r < e; ++r)
        f32_avgpool_row__scalar(g_, pb_, pr_, include_pad_, r / oh, r % oh, x, y + r * row);
    });
  }

 private:
  F32ConvGeometry g_{};
  int64_t pb_ = 0, pr_ = 0;
  bool include_pad_ = false;
  size_t rows_ = 0;
};

std::unique_ptr<Op> make_avgpool(const OpSpec& s) { return std::make_unique<AvgPoolOp>(s); }

}  // namespace

EDGERT_REGISTER_OP("avgpool", make_avgpool);

}  // namespace edgert
