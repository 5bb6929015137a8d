// qconcat, qlut, qsoftmax: 8-bit ops bit-exact with onnxruntime's QLinearConcat, its lookup-table
// activations (QLinearSigmoid, QLinearLeakyRelu, ...; Python builds the table) and
// QLinearSoftmax (com.microsoft).
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"
#include "kernels/q8-softmax/q8-softmax.h"
#include "kernels/x8-lut/x8-lut.h"
#include "ops/f32_util.h"
#include "ops/q8_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

int64_t prod(const std::vector<int64_t>& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= s[i];  // sizes are capped by the executor
  return p;
}

// Each input is either copied (same type, scale and zero point as Y: onnxruntime copies too) or
// requantized through a 256-entry table: quantize(x_scale * float(x - x_zp)) with Y's params.
class QConcatOp : public Op {
 public:
  explicit QConcatOp(const OpSpec& spec) {
    EDGERT_EXPECT(spec, spec.inputs.size() >= 1 && spec.outputs.size() == 1,
                "needs at least one input and one output");
    const auto& ys = spec.outputs[0].shape;
    const DType yt = spec.outputs[0].dtype;
    expect_q8(spec, spec.outputs[0], "Y");
    const size_t rank = ys.size();
    EDGERT_EXPECT(spec, rank >= 1, "Y must have rank >= 1");
    const size_t axis = spec.axis(spec.attrs.i("axis"), rank);
    const float y_scale = q8_scale(spec, "y_scale");
    const int32_t y_zp = q8_zp(spec, "y_zp", yt);
    const std::vector<double> scales = spec.attrs.floats("in_scales");
    const std::vector<int64_t> zps = spec.attrs.ints("in_zps");
    const size_t n = spec.inputs.size();
    EDGERT_EXPECT(spec, scales.size() == n && zps.size() == n, "in_scales and in_zps need one value per input");
    outer_ = static_cast<size_t>(prod(ys, 0, axis));
    const int64_t tail = prod(ys, axis + 1, rank);
    int64_t axis_sum = 0;
    inputs_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const TensorDesc& x = spec.inputs[i];
      const std::string name = "input " + std::to_string(i);
      expect_q8(spec, x, name.c_str());
      EDGERT_EXPECT(spec, x.shape.size() == rank, name + " must have Y's rank");
      for (size_t d = 0; d < rank; ++d) {
        EDGERT_EXPECT(spec, d == axis || x.shape[d] == ys[d],
                    name + " shape " + shape_to_string(x.shape) + " does not fit Y " +
                        shape_to_string(ys));
      }
      axis_sum += x.shape[axis];
      In& in = inputs_[i];
      in.row = static_cast<size_t>(x.shape[axis] * tail);
      const float xs = q8_scale_value(spec, "in_scales", scales[i]);
      const int32_t xz = q8_zp_value(spec, "in_zps", zps[i], x.dtype);
      in.copy = x.dtype == yt && xs == y_scale && xz == y_zp;
      if (!in.copy) {
        float dq[256];
        for (int b = 0; b < 256; ++b) {
          const int32_t v = x.dtype == DType::i8 ? int32_t(int8_t(uint8_t(b))) : b;
          dq[b] = xs * static_cast<float>(v - xz);
        }
        in.table.resize(256);
        if (yt == DType::i8) {
          f32_q8_vcvt_ukernel__scalar(256, dq, y_scale, y_zp,
                                      reinterpret_cast<int8_t*>(in.table.data()));
        } else {
          f32_q8_vcvt_ukernel__scalar(256, dq, y_scale, y_zp, in.table.data());
        }
      }
    }
    EDGERT_EXPECT(spec, axis_sum == ys[axis], "input sizes along the axis do not add up to Y's");
    y_row_ = static_cast<size_t>(ys[axis] * tail);
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    uint8_t* y = static_cast<uint8_t*>(out[0]);
    const size_t n = inputs_.size();
    const size_t grain = std::max<size_t>(1, (size_t(1) << 14) / std::max<size_t>(y_row_, 1));
    const X8LutFn lut = x8_lut_ukernel();
    pool.parallel_for(outer_, grain, [&](size_t b, size_t e) {
      for (size_t o = b; o < e; ++o) {
        uint8_t* dst = y + o * y_row_;
        for (size_t i = 0; i < n; ++i) {
          const In& p = inputs_[i];
          const uint8_t* src = static_cast<const uint8_t*>(in[i]) + o * p.row;
          if (p.copy) {
            if (p.row) std::memcpy(dst, src, p.row);
          } else {
            lut(p.row, src, p.table.data(), dst);
          }
          dst += p.row;
        }
      }
    });
  }

 private:
  struct In {
    size_t row = 0;  // bytes per outer index
    bool copy = false;
    std::vector<uint8_t> table;
  };
  std::vector<In> inputs_;
  size_t outer_ = 0, y_row_ = 0;
};

class QLutOp : public Op {
 public:
  explicit QLutOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_q8(spec, spec.inputs[0], "X");
    expect_q8(spec, spec.outputs[0], "Y");
    EDGERT_EXPECT(spec, spec.inputs[0].shape == spec.outputs[0].shape, "X and Y must have one shape");
    const Attrs::Entry* e = spec.attrs.find("table");
    EDGERT_EXPECT(spec, e && e->kind == Attrs::Value::Arr, "needs the array attribute 'table'");
    // The table holds output bytes; either signedness of the array is accepted.
    const DType want = e->arr->dtype == DType::u8 ? DType::u8 : DType::i8;
    const Array& t = spec.attrs.array("table", want, 256);
    std::memcpy(table_, t.data, 256);
    numel_ = static_cast<size_t>(spec.outputs[0].numel());
    lut_ = x8_lut_ukernel();
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const uint8_t* x = static_cast<const uint8_t*>(in[0]);
    uint8_t* y = static_cast<uint8_t*>(out[0]);
    pool.parallel_for(numel_, 1 << 15, [&](size_t b, size_t e) {
      lut_(e - b, x + b, table_, y + b);
    });
  }

 private:
  uint8_t table_[256];
  X8LutFn lut_ = nullptr;
  size_t numel_ = 0;
};

class QSoftmaxOp : public Op {
 public:
  explicit QSoftmaxOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    const TensorDesc& x = spec.inputs[0];
    expect_q8(spec, x, "X");
    EDGERT_EXPECT(spec, spec.outputs[0].dtype == x.dtype && spec.outputs[0].shape == x.shape,
                "Y must have X's dtype and shape");
    EDGERT_EXPECT(spec, !x.shape.empty(), "X must have rank >= 1");
    const size_t axis = spec.axis(spec.attrs.i("axis", -1), x.shape.size());
    const float xs = q8_scale(spec, "x_scale"), ys = q8_scale(spec, "y_scale");
    q8_zp(spec, "x_zp", x.dtype);  // validated; softmax does not depend on it
    p_.y_zp = q8_zp(spec, "y_zp", x.dtype);
    const Q8Clamp c = q8_clamp(spec, x.dtype);
    p_.qmin = c.lo;
    p_.qmax = c.hi;
    p_.y_mult = std::floor(1.0f / ys);
    d_ = static_cast<size_t>(x.shape[axis]);
    inner_ = static_cast<size_t>(prod(x.shape, axis + 1, x.shape.size()));
    rows_ = d_ == 0 ? 0 : static_cast<size_t>(x.numel()) / d_;
    if (d_ > 0) q8_softmax_exp_table(xs, d_, table_);
    p_.table = table_;
    signed_ = x.dtype == DType::i8;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (signed_) {
      run_typed(static_cast<const int8_t*>(in[0]), static_cast<int8_t*>(out[0]), pool);
    } else {
      run_typed(static_cast<const uint8_t*>(in[0]), static_cast<uint8_t*>(out[0]), pool);
    }
  }

 private:
  template <class T>
  void run_typed(const T* x, T* y, ThreadPool& pool) const {
    Q8SoftmaxParams p = p_;
    p.table = table_;  // the object may have moved since creation
    const size_t grain = std::max<size_t>(1, 4096 / std::max<size_t>(d_, 1));
    pool.parallel_for(rows_, grain, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const size_t base = (r / inner_) * d_ * inner_ + r % inner_;
        q8_softmax_ukernel__scalar(d_, inner_, x + base, p, y + base);
      }
    });
  }

  float table_[256] = {};
  Q8SoftmaxParams p_{};
  size_t d_ = 0, inner_ = 1, rows_ = 0;
  bool signed_ = false;
};

}  // namespace

EDGERT_REGISTER_OP("qconcat", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QConcatOp>(s);
});
EDGERT_REGISTER_OP("qlut", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QLutOp>(s);
});
EDGERT_REGISTER_OP("qsoftmax", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QSoftmaxOp>(s);
});

}  // namespace edgert
