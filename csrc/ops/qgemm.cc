// qgemm: Y[M,N] = requant(A[M,K]·(W − w_zp)ᵀ + bias), leading dims of A of rank > 2 flattened
// into M. Runs on the conv engine as a 1x1 conv over a [1,1,M,K] image, so it shares the packed
// weights, tiling and thread split (columns are split too when M is small).
#include <string>

#include "ops/f32_util.h"
#include "ops/qconv.h"
#include "runtime/registry.h"

namespace edgert {
namespace {

std::unique_ptr<Op> make_qgemm(const OpSpec& spec) {
  spec.expect_arity(1, 1);
  const auto& as = spec.inputs[0].shape;
  const auto& ys = spec.outputs[0].shape;
  EDGERT_EXPECT(spec, as.size() >= 2, "A must have rank >= 2, got " + shape_to_string(as));
  DType w_type;
  const std::vector<int64_t> ws = q8_weight_shape(spec, &w_type);
  EDGERT_EXPECT(spec, ws.size() == 2 && ws[0] >= 1 && ws[1] >= 1,
              "weight must be [N,K] with positive dims, got " + shape_to_string(ws));
  const int64_t n = ws[0], k = ws[1];
  EDGERT_EXPECT(spec, as.back() == k, "A's last dim " + std::to_string(as.back()) + " != weight K " +
                                  std::to_string(k));
  std::vector<int64_t> want(as.begin(), as.end() - 1);
  want.push_back(n);
  EDGERT_EXPECT(spec, ys == want, "Y shape " + shape_to_string(ys) + ", expected " + shape_to_string(want));
  int64_t m = 1;
  for (size_t i = 0; i + 1 < as.size(); ++i) m = mul_checked(spec, m, as[i]);

  Q8ConvDesc d;
  d.batch = 1;
  const size_t mm = static_cast<size_t>(m), kk = static_cast<size_t>(k);
  d.geom = {1, mm, kk, 1, mm, 1, 1, 1, 1, 1, 1, 0, 0};
  d.group = 1;
  d.m = static_cast<size_t>(n);
  parse_q8_quant(spec, d.m, kk, false, d);
  return make_q8_conv(spec, d);
}

}  // namespace

EDGERT_REGISTER_OP("qgemm", make_qgemm);

}  // namespace edgert
