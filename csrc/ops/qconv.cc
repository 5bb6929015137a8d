// qconv (NHWC int8 convolution, any group) and the quantization attributes it shares with qgemm:
// parse and validate everything here, then hand a Q8ConvDesc to the engine (qconv_engine.cc).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "ops/f32_util.h"
#include "ops/q8_util.h"
#include "ops/qconv.h"
#include "runtime/registry.h"

namespace edgert {
namespace {


// An int attribute within [lo, hi] (or def when absent and def is given).
int32_t int_in(const OpSpec& spec, const char* name, int64_t lo, int64_t hi, const int64_t* def) {
  const int64_t v = def ? spec.attrs.i(name, *def) : spec.attrs.i(name);
  EDGERT_EXPECT(spec, v >= lo && v <= hi, std::string(name) + " = " + std::to_string(v) +
                                      " outside [" + std::to_string(lo) + ", " +
                                      std::to_string(hi) + "]");
  return static_cast<int32_t>(v);
}

}  // namespace

std::vector<int64_t> q8_weight_shape(const OpSpec& spec, DType* w_type) {
  const Attrs::Entry* w = spec.attrs.find("weight");
  if (!w && spec.attrs.has("x8_weight")) {
    const std::string_view t = spec.attrs.str("weight_dtype");
    EDGERT_EXPECT(spec, parse_dtype(t, w_type), "unknown weight_dtype '" + std::string(t) + "'");
    return spec.attrs.ints("weight_shape");
  }
  EDGERT_EXPECT(spec, w && w->kind == Attrs::Value::Arr, "attribute 'weight' must be an array");
  *w_type = w->arr->dtype;
  return w->arr->shape;
}

void parse_q8_quant(const OpSpec& spec, size_t m, size_t k, bool use_x_zp, Q8ConvDesc& d) {
  d.x_type = spec.inputs[0].dtype;
  d.y_type = spec.outputs[0].dtype;
  EDGERT_EXPECT(spec, is_q8(d.x_type), std::string("input must be u8 or i8, got ") + dtype_name(d.x_type));
  EDGERT_EXPECT(spec, is_q8(d.y_type) || d.y_type == DType::f32,
              std::string("output must be u8, i8 or f32, got ") + dtype_name(d.y_type));
  EDGERT_EXPECT(spec, k >= 1 && k <= kQ8GemmMaxK, "weight has " + std::to_string(k) +
                  " elements per output channel; int32 accumulation is exact only up to " +
                  std::to_string(kQ8GemmMaxK));
  d.w_shape = q8_weight_shape(spec, &d.w_type);
  EDGERT_EXPECT(spec, is_q8(d.w_type), "weight must be u8 or i8");
  if (spec.attrs.has("x8_weight")) {
    // Sizes are checked by the engine, which knows the layout.
    Q8Prepacked& p = d.pre;
    const Array& w = spec.attrs.array("x8_weight", DType::i8);
    const Array& b = spec.attrs.array("x8_bias", DType::i32);
    const Array& s = spec.attrs.array("x8_scale", DType::f32);
    p.w = w.as<int8_t>(), p.w_len = w.numel();
    p.bias = b.as<int32_t>(), p.bias_len = b.numel();
    p.scale = s.as<float>(), p.scale_len = s.numel();
    const int64_t form = spec.attrs.i("x8_form"), nr = spec.attrs.i("x8_nr");
    EDGERT_EXPECT(spec, form >= 0 && form <= 3, "x8_form " + std::to_string(form) + " is not 0, 1, 2 or 3");
    EDGERT_EXPECT(spec, nr >= 1 && nr <= 64, "x8_nr " + std::to_string(nr) + " outside [1, 64]");
    p.form = int(form), p.nr = size_t(nr);
    p.layout = spec.attrs.s("x8_layout");
    if (spec.attrs.has("x8_corr")) {
      const Array& c = spec.attrs.array("x8_corr", DType::i32);
      p.corr = c.as<int32_t>(), p.corr_len = c.numel();
    }
    if (spec.attrs.has("x8_perm")) {
      const Array& pm = spec.attrs.array("x8_perm", DType::u8);
      p.perm = pm.as<uint8_t>(), p.perm_len = pm.numel();
    }
    if (spec.attrs.has("x8_gperm")) {
      const Array& pm = spec.attrs.array("x8_gperm", DType::u8);
      p.gperm = pm.as<uint8_t>(), p.gperm_len = pm.numel();
    }
  } else {
    d.w = spec.attrs.array("weight", d.w_type, static_cast<int64_t>(m * k)).data;
  }
  if (spec.attrs.has("dw_layout")) {  // sizes and the layout are checked by the engine
    Q8DwPrepacked& p = d.dw_pre;
    p.layout = spec.attrs.s("dw_layout");
    const Array& w = spec.attrs.array("dw_packed", DType::u8);
    p.w = static_cast<const int16_t*>(w.data), p.w_bytes = w.numel();
    if (spec.attrs.has("dw_packed3")) {
      const Array& w3 = spec.attrs.array("dw_packed3", DType::u8);
      p.w3 = static_cast<const int16_t*>(w3.data), p.w3_bytes = w3.numel();
    }
    EDGERT_EXPECT(spec, reinterpret_cast<uintptr_t>(p.w) % 2 == 0 &&
                            reinterpret_cast<uintptr_t>(p.w3) % 2 == 0,
                  "dw_packed arrays are misaligned");
  }
  d.w_zp = spec.attrs.array("w_zp", DType::i32, static_cast<int64_t>(m)).as<int32_t>();
  d.bias = spec.attrs.array("bias", DType::i32, static_cast<int64_t>(m)).as<int32_t>();
  d.scale = spec.attrs.array("scale", DType::f32, static_cast<int64_t>(m)).as<float>();
  // Every load checks every output channel: one branch-free pass in integers (it vectorizes),
  // then the message for the first bad channel only when there is one.
  const int32_t zlo = int32_t(q8_min(d.w_type)), zhi = int32_t(q8_max(d.w_type));
  uint32_t bad = 0;
  for (size_t i = 0; i < m; ++i) {
    uint32_t bits;  // all exponent bits set: inf or NaN
    std::memcpy(&bits, d.scale + i, 4);
    bad |= uint32_t(uint32_t(d.w_zp[i]) - uint32_t(zlo) > uint32_t(zhi - zlo)) |
           uint32_t((bits & 0x7f800000u) == 0x7f800000u);
  }
  for (size_t i = 0; bad && i < m; ++i) {
    if (d.w_zp[i] < zlo || d.w_zp[i] > zhi)
      spec.fail("w_zp[" + std::to_string(i) + "] = " + std::to_string(d.w_zp[i]) +
                " outside the weight type's range");
    if (!std::isfinite(d.scale[i])) spec.fail("scale[" + std::to_string(i) + "] is not finite");
  }
  if (use_x_zp) d.x_zp = int_in(spec, "x_zp", q8_min(d.x_type), q8_max(d.x_type), nullptr);
  if (const Attrs::Entry* t = spec.attrs.find("out_table")) {
    EDGERT_EXPECT(spec, t->kind == Attrs::Value::Arr, "out_table must be an array");
    EDGERT_EXPECT(spec, d.y_type != DType::f32, "out_table needs a u8 or i8 output, not f32");
    d.out_table = static_cast<const uint8_t*>(
        spec.attrs.array("out_table", t->arr->dtype == DType::u8 ? DType::u8 : DType::i8, 256)
            .data);
  }
  if (d.y_type == DType::f32) return;
  const int64_t lo = q8_min(d.y_type), hi = q8_max(d.y_type);
  const int32_t y_zp = int_in(spec, "y_zp", lo, hi, nullptr);
  const int32_t qmin = int_in(spec, "qmin", lo, hi, &lo);
  const int32_t qmax = int_in(spec, "qmax", lo, hi, &hi);
  EDGERT_EXPECT(spec, qmin <= qmax, "qmin " + std::to_string(qmin) + " > qmax " + std::to_string(qmax));
  d.rq.lo = static_cast<float>(qmin - y_zp);
  d.rq.hi = static_cast<float>(qmax - y_zp);
  d.rq.y_zp = y_zp;
  // The bound is proved on the model's bias and scale; a compiled model's prepacked scales are
  // copies of them (and zero padding), so one larger than every model scale keeps the guard.
  d.rq.guard = q8_requant_needs_guard(m, k, d.bias, d.scale);
  if (!d.rq.guard && d.pre.scale) {
    float smax = 0;
    for (size_t i = 0; i < m; ++i) smax = std::max(smax, std::fabs(d.scale[i]));
    for (int64_t i = 0; i < d.pre.scale_len; ++i)
      if (!(std::fabs(d.pre.scale[i]) <= smax)) d.rq.guard = true;
  }
}

namespace {

std::unique_ptr<Op> make_qconv(const OpSpec& spec) {
  const bool x_mul = spec.attrs.has("mul_a_scale");
  spec.expect_arity(x_mul ? 2 : 1, 1);
  const auto& xs = spec.inputs[0].shape;
  const auto& ys = spec.outputs[0].shape;
  EDGERT_EXPECT(spec, xs.size() == 4, "X must be NHWC (rank 4), got " + shape_to_string(xs));
  for (size_t i = 0; i < 4; ++i)
    EDGERT_EXPECT(spec, xs[i] >= (i == 0 ? 0 : 1), "X has an empty dim: " + shape_to_string(xs));
  DType w_type;
  const std::vector<int64_t> ws = q8_weight_shape(spec, &w_type);
  EDGERT_EXPECT(spec, ws.size() == 4 && ws[0] >= 1 && ws[1] >= 1 && ws[2] >= 1 && ws[3] >= 1,
              "weight must be [M,KH,KW,C/group] with positive dims, got " + shape_to_string(ws));
  const int64_t c = xs[3], m = ws[0];
  const int64_t group = spec.attrs.i("group", 1);
  EDGERT_EXPECT(spec, group >= 1 && c % group == 0 && m % group == 0,
              "group " + std::to_string(group) + " must divide C " + std::to_string(c) +
                  " and M " + std::to_string(m));
  EDGERT_EXPECT(spec, ws[3] == c / group, "weight " + shape_to_string(ws) + " needs C/group = " +
                                      std::to_string(c / group) + " in its last dim");
  const auto kernel = ints_n(spec, "kernel", 2, 1, {ws[1], ws[2]});
  EDGERT_EXPECT(spec, kernel[0] == ws[1] && kernel[1] == ws[2],
              "kernel " + shape_to_string(kernel) + " differs from weight " + shape_to_string(ws));
  const auto strides = ints_n(spec, "strides", 2, 1, {1, 1});
  const auto dil = ints_n(spec, "dilations", 2, 1, {1, 1});
  const auto pads = ints_n(spec, "pads", 4, 0, {0, 0, 0, 0});
  int64_t out_hw[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t span = dil[i] * (kernel[i] - 1) + 1, in = xs[1 + i] + pads[i] + pads[2 + i];
    EDGERT_EXPECT(spec, in >= span, "kernel span " + std::to_string(span) +
                                " exceeds the padded input " + std::to_string(in));
    out_hw[i] = (in - span) / strides[i] + 1;
  }
  const std::vector<int64_t> want = {xs[0], out_hw[0], out_hw[1], m};
  EDGERT_EXPECT(spec, ys == want, "Y shape " + shape_to_string(ys) + ", expected " + shape_to_string(want));
  mul_checked(spec, mul_checked(spec, ws[1], ws[2]), ws[3]);

  Q8ConvDesc d;
  d.batch = static_cast<size_t>(xs[0]);
  d.geom = {size_t(xs[1]), size_t(xs[2]), size_t(c), size_t(out_hw[0]), size_t(out_hw[1]),
            size_t(kernel[0]), size_t(kernel[1]), size_t(strides[0]), size_t(strides[1]),
            size_t(dil[0]), size_t(dil[1]), size_t(pads[0]), size_t(pads[1])};
  d.group = static_cast<size_t>(group);
  d.m = static_cast<size_t>(m);
  const int64_t k = ws[1] * ws[2] * ws[3];
  EDGERT_EXPECT(spec, k <= int64_t(kQ8GemmMaxK), "weight has " + std::to_string(k) +
                  " elements per output channel; at most " + std::to_string(kQ8GemmMaxK));
  parse_q8_quant(spec, d.m, static_cast<size_t>(k), true, d);
  if (x_mul) {
    EDGERT_EXPECT(spec, kernel[0] == 1 && kernel[1] == 1 && strides[0] == 1 && strides[1] == 1 &&
                            pads[0] == 0 && pads[1] == 0 && pads[2] == 0 && pads[3] == 0 &&
                            group == 1,
                  "a fused input multiply (mul_* attributes) needs a 1x1, stride-1, unpadded "
                  "conv of one group");
    const TensorDesc& st = spec.inputs[1];
    const std::vector<int64_t> want_s = {xs[0], 1, 1, c}, nchw_s = {xs[0], c, 1, 1};
    EDGERT_EXPECT(spec, st.shape == want_s || st.shape == nchw_s,
                  "S must be " + shape_to_string(want_s) + " (or " + shape_to_string(nchw_s) +
                      "), got " + shape_to_string(st.shape));
    EDGERT_EXPECT(spec, is_q8(st.dtype), std::string("S must be u8 or i8, got ") +
                                             dtype_name(st.dtype));
    const DType xt = d.x_type;  // the multiply's A and output type
    const int64_t lo = spec.attrs.i("mul_qmin", q8_min(xt));
    const int64_t hi = spec.attrs.i("mul_qmax", q8_max(xt));
    EDGERT_EXPECT(spec, lo >= q8_min(xt) && hi <= q8_max(xt) && lo <= hi,
                  "mul_qmin/mul_qmax [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "] must be an ordered range within " + dtype_name(xt));
    d.x_mul = true;
    d.mul_s_signed = st.dtype == DType::i8;
    d.mul = q8_vmul_params(q8_scale(spec, "mul_a_scale"), q8_zp(spec, "mul_a_zp", xt),
                           q8_scale(spec, "mul_b_scale"), q8_zp(spec, "mul_b_zp", st.dtype),
                           q8_scale(spec, "mul_y_scale"), q8_zp(spec, "mul_y_zp", xt),
                           static_cast<int32_t>(lo), static_cast<int32_t>(hi));
  }
  return make_q8_conv(spec, d);
}

}  // namespace

EDGERT_REGISTER_OP("qconv", make_qconv);

}  // namespace edgert
