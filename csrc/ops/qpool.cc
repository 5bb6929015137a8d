// qavgpool (8-bit average pool, bit-exact with onnxruntime's QLinearAveragePool and
// QLinearGlobalAveragePool) and maxpool (u8 / i8 / f32) on NHWC tensors. Work is split over
// output pixels (qavgpool; channel blocks for a global pool) or output rows (maxpool); each
// output element is computed by one call in a fixed order, so results do not depend on the
// thread count.
#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/q8-avgpool/q8-avgpool.h"
#include "kernels/x-maxpool/x-maxpool.h"
#include "ops/f32_util.h"
#include "ops/q8_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

// Shapes and window attributes shared by both pools: X [N,H,W,C] -> Y [N,OH,OW,C].
struct PoolGeometry {
  int64_t n, h, w, c, oh, ow;
  std::vector<int64_t> kernel, strides, pads, dilations;

  PoolGeometry(const OpSpec& spec, bool has_dilations) {
    spec.expect_arity(1, 1);
    const auto& xs = spec.inputs[0].shape;
    const auto& ys = spec.outputs[0].shape;
    EDGERT_EXPECT(spec, xs.size() == 4 && ys.size() == 4, "X and Y must be NHWC (rank 4)");
    n = xs[0], h = xs[1], w = xs[2], c = xs[3], oh = ys[1], ow = ys[2];
    EDGERT_EXPECT(spec, ys[0] == n && ys[3] == c, "Y " + shape_to_string(ys) +
                                              " must keep X's batch and channels " +
                                              shape_to_string(xs));
    EDGERT_EXPECT(spec, spec.inputs[0].dtype == spec.outputs[0].dtype, "X and Y must have one dtype");
    kernel = ints_n(spec, "kernel", 2, 1);
    strides = ints_n(spec, "strides", 2, 1, {1, 1});
    pads = ints_n(spec, "pads", 4, 0, {0, 0, 0, 0});
    dilations = has_dilations ? ints_n(spec, "dilations", 2, 1, {1, 1}) : std::vector<int64_t>{1, 1};
    // Windows lying entirely in the padding (possible with ceil_mode) are allowed: maxpool
    // gives the type's lowest value there, qavgpool the zero point.
  }
  size_t pixels_out() const { return static_cast<size_t>(n * oh * ow); }
};

class QAvgPoolOp : public Op {
 public:
  explicit QAvgPoolOp(const OpSpec& spec) : g_(spec, false) {
    const DType t = spec.inputs[0].dtype;
    expect_q8(spec, spec.inputs[0], "X");
    const float xs = q8_scale(spec, "x_scale"), ys = q8_scale(spec, "y_scale");
    const int32_t xz = q8_zp(spec, "x_zp", t), yz = q8_zp(spec, "y_zp", t);
    const Q8Clamp c = q8_clamp(spec, t);
    count_include_pad_ = spec.attrs.i("count_include_pad", 0) != 0;
    signed_ = t == DType::i8;
    // onnxruntime runs a pool whose window is the whole unpadded image as a global pool.
    global_ = g_.kernel[0] == g_.h && g_.kernel[1] == g_.w && g_.pads[0] == 0 &&
              g_.pads[1] == 0 && g_.pads[2] == 0 && g_.pads[3] == 0;
    if (global_) {
      EDGERT_EXPECT(spec, g_.oh == 1 && g_.ow == 1, "a whole-image window gives a 1x1 output");
      EDGERT_EXPECT(spec, g_.h * g_.w < (int64_t(1) << 23), "image too large for a global pool");
      gp_ = q8_gavgpool_params(static_cast<size_t>(g_.h * g_.w), xs, xz, ys, yz, c.lo, c.hi);
    } else {
      q8_avgpool_params(xs, xz, signed_, ys, yz, c.lo, c.hi, &p_);
    }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (signed_) {
      run_typed(static_cast<const int8_t*>(in[0]), static_cast<int8_t*>(out[0]), pool);
    } else {
      run_typed(static_cast<const uint8_t*>(in[0]), static_cast<uint8_t*>(out[0]), pool);
    }
  }

 private:
  static constexpr size_t kChannelBlock = 64;

  template <class T>
  void run_typed(const T* x, T* y, ThreadPool& pool) const {
    const size_t c = static_cast<size_t>(g_.c);
    if (global_) {
      const Q8AvgPoolUKernel& uk = q8_avgpool_ukernel();
      Q8GAvgPoolFn<T> global;
      if constexpr (std::is_same<T, uint8_t>::value) global = uk.global_u8;
      else global = uk.global_i8;
      const size_t pixels = static_cast<size_t>(g_.h * g_.w);
      const size_t blocks = (c + kChannelBlock - 1) / kChannelBlock;
      pool.parallel_for(static_cast<size_t>(g_.n) * blocks, 1, [&](size_t b, size_t e) {
        int32_t acc[kChannelBlock];
        for (size_t i = b; i < e; ++i) {
          const size_t img = i / blocks, c0 = (i % blocks) * kChannelBlock;
          const size_t nc = std::min(kChannelBlock, c - c0);
          global(pixels, nc, c, x + img * pixels * c + c0, acc, gp_,
                                      y + img * c + c0);
        }
      });
      return;
    }
    const Q8AvgPoolF32AccFn<T> kernel = q8_avgpool_f32acc_ukernel<T>();
    pool.parallel_for(g_.pixels_out(), 1, [&](size_t b, size_t e) {
      std::vector<float> acc(c);
      for (size_t i = b; i < e; ++i) {
        const int64_t ow = static_cast<int64_t>(i) % g_.ow;
        const int64_t oh = static_cast<int64_t>(i) / g_.ow % g_.oh;
        const int64_t img = static_cast<int64_t>(i) / (g_.ow * g_.oh);
        int64_t h0, h1, w0, w1;
        pool_window(oh, g_.strides[0], g_.pads[0], g_.kernel[0], 1, g_.h, &h0, &h1);
        pool_window(ow, g_.strides[1], g_.pads[1], g_.kernel[1], 1, g_.w, &w0, &w1);
        const int64_t hs = oh * g_.strides[0] - g_.pads[0] + h0;
        const int64_t ws = ow * g_.strides[1] - g_.pads[1] + w0;
        h1 = std::max(h0, h1);
        w1 = std::max(w0, w1);
        const int64_t count =
            count_include_pad_ ? g_.kernel[0] * g_.kernel[1] : (h1 - h0) * (w1 - w0);
        const float divisor = static_cast<float>(std::max<int64_t>(count, 1));
        const bool empty = h0 == h1 || w0 == w1;
        const T* px = empty ? x : x + ((img * g_.h + hs) * g_.w + ws) * g_.c;
        kernel(static_cast<size_t>(h1 - h0),
                                          static_cast<size_t>(w1 - w0),
                                          static_cast<size_t>(g_.w) * c, c, px, divisor, p_,
                                          acc.data(), y + i * c);
      }
    });
  }

  PoolGeometry g_;
  bool count_include_pad_ = false, signed_ = false, global_ = false;
  Q8GAvgPoolParams gp_{};
  Q8AvgPoolParams p_{};
};

class MaxPoolOp : public Op {
 public:
  explicit MaxPoolOp(const OpSpec& spec) : g_(spec, true) {
    type_ = spec.inputs[0].dtype;
    EDGERT_EXPECT(spec, is_q8(type_) || type_ == DType::f32, "X must be u8, i8 or f32");
    // The outputs of a row whose windows are not clipped in W form one interval [full_lo_,
    // full_hi_) (the window start is linear in ow): one kernel call per output row covers them.
    full_lo_ = full_hi_ = g_.ow;
    for (int64_t ow = 0; ow < g_.ow; ++ow) {
      int64_t w0, w1;
      pool_window(ow, g_.strides[1], g_.pads[1], g_.kernel[1], g_.dilations[1], g_.w, &w0, &w1);
      if (w0 == 0 && w1 == g_.kernel[1]) {
        full_lo_ = std::min(full_lo_, ow);
        full_hi_ = ow + 1;
      }
    }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const XMaxPoolUKernel& uk = x_maxpool_ukernel();
    switch (type_) {
      case DType::u8:
        return run_typed(uk.u8, static_cast<const uint8_t*>(in[0]), static_cast<uint8_t*>(out[0]),
                         pool);
      case DType::i8:
        return run_typed(uk.i8, static_cast<const int8_t*>(in[0]), static_cast<int8_t*>(out[0]),
                         pool);
      default:
        return run_typed(uk.f32, static_cast<const float*>(in[0]), static_cast<float*>(out[0]),
                         pool);
    }
  }

 private:
  // Output rows are the parallel items; each output pixel is computed by exactly one call.
  template <class T>
  void run_typed(XMaxPoolFn<T> kernel, const T* x, T* y, ThreadPool& pool) const {
    const size_t c = static_cast<size_t>(g_.c), ow_n = static_cast<size_t>(g_.ow);
    const size_t row_step = static_cast<size_t>(g_.dilations[0] * g_.w) * c;
    const size_t col_step = static_cast<size_t>(g_.dilations[1]) * c;
    pool.parallel_for(static_cast<size_t>(g_.n * g_.oh), 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        const int64_t oh = static_cast<int64_t>(i) % g_.oh, img = static_cast<int64_t>(i) / g_.oh;
        T* yrow = y + i * ow_n * c;
        int64_t h0, h1;
        pool_window(oh, g_.strides[0], g_.pads[0], g_.kernel[0], g_.dilations[0], g_.h, &h0, &h1);
        if (h0 >= h1) {
          std::fill(yrow, yrow + ow_n * c, std::numeric_limits<T>::lowest());
          continue;
        }
        const size_t rows = static_cast<size_t>(h1 - h0);
        const T* xrow = x + (img * g_.h + oh * g_.strides[0] - g_.pads[0] + h0 * g_.dilations[0]) *
                                g_.w * g_.c;
        auto one = [&](int64_t ow) {  // an output whose window may be clipped in W
          int64_t w0, w1;
          pool_window(ow, g_.strides[1], g_.pads[1], g_.kernel[1], g_.dilations[1], g_.w, &w0, &w1);
          T* py = yrow + static_cast<size_t>(ow) * c;
          if (w0 >= w1) {
            std::fill(py, py + c, std::numeric_limits<T>::lowest());
            return;
          }
          const int64_t ws = ow * g_.strides[1] - g_.pads[1] + w0 * g_.dilations[1];
          kernel(1, rows, static_cast<size_t>(w1 - w0), row_step, col_step, 0, c,
                 xrow + static_cast<size_t>(ws) * c, py);
        };
        for (int64_t ow = 0; ow < full_lo_; ++ow) one(ow);
        if (full_lo_ < full_hi_) {
          const int64_t ws = full_lo_ * g_.strides[1] - g_.pads[1];
          kernel(static_cast<size_t>(full_hi_ - full_lo_), rows, static_cast<size_t>(g_.kernel[1]),
                 row_step, col_step, static_cast<size_t>(g_.strides[1]) * c, c,
                 xrow + static_cast<size_t>(ws) * c, yrow + static_cast<size_t>(full_lo_) * c);
        }
        for (int64_t ow = full_hi_; ow < g_.ow; ++ow) one(ow);
      }
    });
  }

  PoolGeometry g_;
  DType type_;
  int64_t full_lo_, full_hi_;
};

}  // namespace

EDGERT_REGISTER_OP("qavgpool", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QAvgPoolOp>(s);
});
EDGERT_REGISTER_OP("maxpool", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<MaxPoolOp>(s);
});

}  // namespace edgert
