// quantize (f32 -> u8/i8) and dequantize (u8/i8/i32 -> f32), per tensor or per axis, with
// onnxruntime's QuantizeLinear / DequantizeLinear arithmetic (kernels f32-q8-vcvt, q8-f32-vcvt).
#include <memory>
#include <vector>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"
#include "kernels/q8-f32-vcvt/q8-f32-vcvt.h"
#include "ops/q8_util.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

// Per-tensor (one scale) or per-axis (C = shape[axis] scales) parameters, read from array or
// scalar attributes: scale f32, zp i32 (default 0), axis (default 1, only used per axis).
struct QuantParams {
  std::vector<float> scale;
  std::vector<int32_t> zp;
  size_t outer = 1, channels = 1, inner = 1;  // the tensor as [outer, channels, inner]

  QuantParams(const OpSpec& spec, const std::vector<int64_t>& shape, DType qtype) {
    const Attrs::Entry* scale_attr = spec.attrs.find("scale");
    if (scale_attr && scale_attr->kind == Attrs::Value::Arr) {
      const Array& a = spec.attrs.array("scale", DType::f32);
      for (int64_t i = 0; i < a.numel(); ++i) scale.push_back(a.as<float>()[i]);
    } else {
      scale.push_back(static_cast<float>(spec.attrs.f("scale")));
    }
    EDGERT_EXPECT(spec, !scale.empty(), "scale must not be empty");
    for (float s : scale) q8_scale_value(spec, "scale", s);
    const Attrs::Entry* zp_attr = spec.attrs.find("zp");
    if (zp_attr && zp_attr->kind == Attrs::Value::Arr) {
      const Array& a = spec.attrs.array("zp", DType::i32);
      for (int64_t i = 0; i < a.numel(); ++i) zp.push_back(a.as<int32_t>()[i]);
    } else {
      zp.assign(scale.size(), static_cast<int32_t>(0));
      if (zp_attr) {
        const int64_t z = spec.attrs.i("zp");
        EDGERT_EXPECT(spec, z >= INT32_MIN && z <= INT32_MAX, "zp out of int32 range");
        zp.assign(scale.size(), static_cast<int32_t>(z));
      }
    }
    EDGERT_EXPECT(spec, zp.size() == scale.size(), "zp must have as many values as scale");
    if (qtype != DType::i32) {
      for (int32_t z : zp) q8_zp_value(spec, "zp", z, qtype);
    }
    const int64_t numel = TensorDesc{DType::f32, shape}.numel();
    if (scale.size() == 1) {
      inner = static_cast<size_t>(numel);
      return;
    }
    const int64_t r = static_cast<int64_t>(shape.size());
    int64_t axis = spec.attrs.i("axis", 1);
    EDGERT_EXPECT(spec, axis >= -r && axis < r, "axis out of range");
    if (axis < 0) axis += r;
    EDGERT_EXPECT(spec, shape[axis] == static_cast<int64_t>(scale.size()),
                "per-axis scale needs shape[axis] = " + std::to_string(scale.size()) + " values");
    channels = scale.size();
    for (int64_t d = 0; d < axis; ++d) outer *= static_cast<size_t>(shape[d]);
    for (int64_t d = axis + 1; d < r; ++d) inner *= static_cast<size_t>(shape[d]);
  }

  // Calls f(begin, end, channel) over the flat element range [b, e), split at channel changes.
  template <class F>
  void for_range(size_t b, size_t e, F f) const {
    while (b < e) {
      const size_t ch = (b / inner) % channels;
      const size_t stop = std::min(e, (b / inner + 1) * inner);
      f(b, stop, ch);
      b = stop;
    }
  }
  size_t numel() const { return outer * channels * inner; }
};

class QuantizeOp : public Op {
 public:
  explicit QuantizeOp(const OpSpec& spec)
      : p_((spec.expect_arity(1, 1), spec), spec.inputs[0].shape, spec.outputs[0].dtype) {
    EDGERT_EXPECT(spec, spec.inputs[0].dtype == DType::f32, "X must be f32");
    expect_q8(spec, spec.outputs[0], "Y");
    EDGERT_EXPECT(spec, spec.inputs[0].shape == spec.outputs[0].shape, "X and Y must have one shape");
    signed_ = spec.outputs[0].dtype == DType::i8;
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const float* x = static_cast<const float*>(in[0]);
    const F32Q8VCvtUKernel& uk = f32_q8_vcvt_ukernel();
    pool.parallel_for(p_.numel(), 1 << 14, [&](size_t b, size_t e) {
      p_.for_range(b, e, [&](size_t i0, size_t i1, size_t c) {
        if (signed_) {
          uk.i8(i1 - i0, x + i0, p_.scale[c], p_.zp[c], static_cast<int8_t*>(out[0]) + i0);
        } else {
          uk.u8(i1 - i0, x + i0, p_.scale[c], p_.zp[c], static_cast<uint8_t*>(out[0]) + i0);
        }
      });
    });
  }

 private:
  QuantParams p_;
  bool signed_ = false;
};

class DequantizeOp : public Op {
 public:
  explicit DequantizeOp(const OpSpec& spec)
      : p_((spec.expect_arity(1, 1), spec), spec.inputs[0].shape, spec.inputs[0].dtype) {
    type_ = spec.inputs[0].dtype;
    EDGERT_EXPECT(spec, is_q8(type_) || type_ == DType::i32, "X must be u8, i8 or i32");
    EDGERT_EXPECT(spec, spec.outputs[0].dtype == DType::f32, "Y must be f32");
    EDGERT_EXPECT(spec, spec.inputs[0].shape == spec.outputs[0].shape, "X and Y must have one shape");
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    float* y = static_cast<float*>(out[0]);
    pool.parallel_for(p_.numel(), 1 << 14, [&](size_t b, size_t e) {
      p_.for_range(b, e, [&](size_t i0, size_t i1, size_t c) {
        const size_t n = i1 - i0;
        switch (type_) {
          case DType::u8:
            return q8_f32_vcvt_ukernel__scalar(n, static_cast<const uint8_t*>(in[0]) + i0,
                                               p_.scale[c], p_.zp[c], y + i0);
          case DType::i8:
            return q8_f32_vcvt_ukernel__scalar(n, static_cast<const int8_t*>(in[0]) + i0,
                                               p_.scale[c], p_.zp[c], y + i0);
          default:
            return q8_f32_vcvt_ukernel__scalar(n, static_cast<const int32_t*>(in[0]) + i0,
                                               p_.scale[c], p_.zp[c], y + i0);
        }
      });
    });
  }

 private:
  QuantParams p_;
  DType type_;
};

}  // namespace

EDGERT_REGISTER_OP("quantize", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<QuantizeOp>(s);
});
EDGERT_REGISTER_OP("dequantize", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<DequantizeOp>(s);
});

}  // namespace edgert
