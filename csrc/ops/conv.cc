// fp32 NHWC conv. Depthwise (group == C == M) runs direct; everything else is a GEMM per group
// over im2col rows gathered chunk by chunk into bounded scratch (1x1 stride-1 unpadded convs read
// X in place). Weights are packed per group at creation.
#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/f32-dwconv/f32-dwconv.h"
#include "kernels/f32-gemm/f32-gemm.h"
#include "kernels/f32-im2col/f32-im2col.h"
#include "ops/f32_util.h"
#include "runtime/aligned.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

constexpr size_t kScratchFloats = 64 * 1024;  // im2col rows per chunk stay within ~256 KB
constexpr size_t kMaxChunkRows = 128;

class ConvOp : public Op {
 public:
  explicit ConvOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_all_f32(spec);
    const auto& xs = spec.inputs[0].shape;
    const auto& ys = spec.outputs[0].shape;
    EDGERT_EXPECT(spec, xs.size() == 4 && ys.size() == 4, "X and Y must be NHWC (rank 4)");
    const auto kernel = ints_n(spec, "kernel", 2, 1);
    const auto strides = ints_n(spec, "strides", 2, 1, {1, 1});
    const auto pads = ints_n(spec, "pads", 4, 0, {0, 0, 0, 0});
    const auto dil = ints_n(spec, "dilations", 2, 1, {1, 1});
    group_ = spec.attrs.i("group", 1);
    const int64_t c = xs[3], m = ys[3];
    EDGERT_EXPECT(spec, group_ >= 1 && c % group_ == 0 && m % group_ == 0,
                "group must divide input and output channels");
    cg_ = static_cast<size_t>(c / group_);
    mg_ = static_cast<size_t>(m / group_);
    g_ = F32ConvGeometry{xs[1], xs[2], c, ys[1], ys[2], kernel[0], kernel[1], strides[0],
                         strides[1], pads[0], pads[1], dil[0], dil[1]};
    for (int axis = 0; axis < 2; ++axis) {
      const int64_t in = xs[1 + axis] + pads[axis] + pads[axis + 2];
      const int64_t span = dil[axis] * (kernel[axis] - 1) + 1;
      const int64_t out = in < span ? 0 : (in - span) / strides[axis] + 1;
      EDGERT_EXPECT(spec, ys[1 + axis] == out, "Y spatial dim " + std::to_string(ys[1 + axis]) +
                                           ", expected " + std::to_string(out));
    }
    EDGERT_EXPECT(spec, ys[0] == xs[0], "batch mismatch");
    const Array& w = spec.attrs.array("weight", DType::f32);
    EDGERT_EXPECT(spec, (w.shape == std::vector<int64_t>{m, kernel[0], kernel[1], c / group_}),
                "weight must be [M,KH,KW,C/group] = " +
                    shape_to_string({m, kernel[0], kernel[1], c / group_}));
    std::vector<float> bias(static_cast<size_t>(m), 0.0f);
    if (spec.attrs.has("bias")) {
      const float* b = spec.attrs.array("bias", DType::f32, m).as<float>();
      std::copy(b, b + m, bias.begin());
    }
    clamp_ = parse_clamp(spec);
    pixels_ = static_cast<size_t>(spec.outputs[0].numel() / std::max<int64_t>(m, 1));
    k_ = static_cast<size_t>(mul_checked(spec, mul_checked(spec, kernel[0], kernel[1]),
                                         static_cast<int64_t>(cg_)));
    depthwise_ = group_ == c && m == c;
    direct_ = kernel[0] == 1 && kernel[1] == 1 && strides[0] == 1 && strides[1] == 1 &&
              pads == std::vector<int64_t>{0, 0, 0, 0};
    const float* wd = w.as<float>();
    if (depthwise_) {
      // [C,KH,KW,1] -> [KH*KW, C] so the kernel's inner loop runs over contiguous channels.
      const size_t taps = static_cast<size_t>(kernel[0] * kernel[1]), cc = static_cast<size_t>(c);
      packed_.resize(taps * cc);
      for (size_t ch = 0; ch < cc; ++ch)
        for (size_t t = 0; t < taps; ++t) packed_[t * cc + ch] = wd[ch * taps + t];
      bias_ = std::move(bias);
      return;
    }
    mul_checked(spec, mul_checked(spec, (static_cast<int64_t>(mg_) + 15) / 16 * 16,
                                  static_cast<int64_t>(k_) + 1), group_);
    group_packed_ = f32_gemm_packed_size(mg_, k_);
    packed_.resize(group_packed_ * static_cast<size_t>(group_));
    for (int64_t gi = 0; gi < group_; ++gi) {
      f32_gemm_pack_nk(mg_, k_, wd + gi * mg_ * k_, k_, bias.data() + gi * mg_,
                       packed_.data() + gi * group_packed_);
    }
    rows_ = std::min(kMaxChunkRows, std::max<size_t>(4, kScratchFloats / std::max<size_t>(k_, 1)));
    rows_ = rows_ / 4 * 4;
    chunks_ = (pixels_ + rows_ - 1) / rows_;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    if (pixels_ == 0) return;
    if (depthwise_) {
      const size_t oh = static_cast<size_t>(g_.oh), ow = static_cast<size_t>(g_.ow);
      const size_t row = ow * static_cast<size_t>(g_.c);
      pool.parallel_for(pixels_ / std::max<size_t>(ow, 1), 1, [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r) {
          f32_dwconv_minmax_row__scalar(g_, r / oh, r % oh, x, packed_.data(), bias_.data(),
                                        y + r * row, clamp_.lo, clamp_.hi);
        }
      });
      return;
    }
    const size_t m = mg_ * static_cast<size_t>(group_);
    const size_t panels = (mg_ + kF32GemmNR - 1) / kF32GemmNR;
    pool.parallel_for(chunks_ * static_cast<size_t>(group_), 1, [&](size_t b, size_t e) {
      std::vector<float> scratch(direct_ ? 0 : rows_ * k_);
      for (size_t item = b; item < e; ++item) {
        const size_t gi = item / chunks_, p0 = (item % chunks_) * rows_;
        const size_t p1 = std::min(pixels_, p0 + rows_);
        const float* a;
        size_t lda;
        if (direct_) {
          a = x + p0 * static_cast<size_t>(g_.c) + gi * cg_;
          lda = static_cast<size_t>(g_.c);
        } else {
          f32_im2col_nhwc__scalar(g_, p0, p1, gi * cg_, cg_, x, scratch.data());
          a = scratch.data();
          lda = k_;
        }
        f32_gemm_minmax_rows(0, p1 - p0, 0, panels, mg_, k_, a, lda,
                             packed_.data() + gi * group_packed_, y + p0 * m + gi * mg_, m,
                             clamp_.lo, clamp_.hi);
      }
    });
  }

 private:
  F32ConvGeometry g_{};
  int64_t group_ = 1;
  size_t cg_ = 0, mg_ = 0, k_ = 0, pixels_ = 0, rows_ = 4, chunks_ = 0, group_packed_ = 0;
  bool depthwise_ = false, direct_ = false;
  AlignedVector<float> packed_;
  std::vector<float> bias_;
  F32Clamp clamp_;
};

std::unique_ptr<Op> make_conv(const OpSpec& spec) { return std::make_unique<ConvOp>(spec); }

}  // namespace

EDGERT_REGISTER_OP("conv", make_conv);

}  // namespace edgert
