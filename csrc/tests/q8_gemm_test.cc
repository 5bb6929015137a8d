// q8-gemm: every variant against the scalar kernel (and scalar against an int64 reference) on
// K below/at/above every K block, M and N remainders, strides, zero points and clamps at their
// extremes, u8/i8 activations and weights, w − w_zp = ±255 and K up to kQ8GemmMaxK.
#include <algorithm>
#include <cmath>

#include "kernels/q8-gemm/q8-gemm.h"
#include "tests/harness.h"

namespace edgert {
namespace test {
namespace {

enum Out { kU8, kI8, kF32 };
const char* const kOutName[] = {"u8", "i8", "f32"};
// kMaxAcc: every product is +255·255 or 255·(−255); kTies: small sums times 2^−1..2^−3, so
// many outputs fall exactly halfway (round half to even vs away from zero).
enum Values { kRandom, kExtreme, kMaxAcc, kTies };

struct Case {
  size_t m, n, k, a_stride, c_stride;
  bool x_u8, w_u8;
  Out out;
  Values values;
  bool wild_bias;  // bias anywhere in int32: the sum must wrap like an int32 accumulator
};

struct Data {
  std::vector<int16_t> a;  // exactly (m − 1)·a_stride + kp: reading past the last row is a bug
  std::vector<uint8_t> w;  // raw [n][k], u8 or i8 bits
  std::vector<int32_t> w_zp, bias;
  std::vector<float> scale;
  Q8Requant rq{};
  Fenced<int16_t> fa;  // what kernels read: a, bias and scale against a fence page
  Fenced<int32_t> fbias;
  Fenced<float> fscale;
};

std::string describe(const Case& c) {
  return fmt("m=%zu n=%zu k=%zu a_stride=%zu c_stride=%zu x=%s w=%s out=%s values=%d bias=%s",
             c.m, c.n, c.k, c.a_stride, c.c_stride, c.x_u8 ? "u8" : "i8",
             c.w_u8 ? "u8" : "i8", kOutName[c.out], int(c.values), c.wild_bias ? "wild" : "small");
}

int32_t w_value(const Data& d, const Case& c, size_t n, size_t k) {
  const uint8_t b = d.w[n * c.k + k];
  return (c.w_u8 ? int32_t{b} : int32_t{static_cast<int8_t>(b)}) - d.w_zp[n];
}

Data make_data(const Case& c, Rng& rng) {
  Data d;
  const size_t kp = q8_gemm_kp(c.k);
  const int32_t xlo = c.x_u8 ? 0 : -128, xhi = c.x_u8 ? 255 : 127;
  const int32_t wlo = c.w_u8 ? 0 : -128, whi = c.w_u8 ? 255 : 127;
  d.a.assign((c.m - 1) * c.a_stride + kp, 0);
  d.w.resize(c.n * c.k);
  d.w_zp.resize(c.n);
  for (size_t i = 0; i < c.m; ++i)
    for (size_t j = 0; j < c.k; ++j) {
      int32_t x = rng.range(xlo, xhi);
      if (c.values == kExtreme && rng.below(4)) x = rng.coin() ? xlo : xhi;
      if (c.values == kMaxAcc) x = c.x_u8 ? 255 : -128;
      if (c.values == kTies) x = rng.range(c.x_u8 ? 0 : -2, c.x_u8 ? 4 : 2);
      d.a[i * c.a_stride + j] = static_cast<int16_t>(x);
    }
  for (size_t i = 0; i < c.n; ++i) {
    // w − w_zp reaches +255 (w = max, zp = min) or −255 (w = min, zp = max) in extreme modes.
    const bool up = rng.coin();
    d.w_zp[i] = c.values == kRandom ? rng.range(wlo, whi) : (up ? wlo : whi);
    for (size_t j = 0; j < c.k; ++j) {
      int32_t v = rng.range(wlo, whi);
      if (c.values == kExtreme && rng.below(4)) v = up ? whi : wlo;
      if (c.values == kMaxAcc) v = up ? whi : wlo;
      if (c.values == kTies) v = std::min(whi, std::max(wlo, d.w_zp[i] + rng.range(-2, 2)));
      d.w[i * c.k + j] = static_cast<uint8_t>(v);
    }
  }
  // Scales put typical outputs across the range and some past the clamps.
  d.bias.resize(c.n);
  d.scale.resize(c.n);
  for (size_t i = 0; i < c.n; ++i) {
    d.bias[i] = c.wild_bias ? static_cast<int32_t>(rng.next()) : rng.range(-(1 << 20), 1 << 20);
    const float typical = 255.0f * 128.0f * std::sqrt(float(c.k)) + 1.0f;
    d.scale[i] = rng.uniform(0.2f, 4.0f) * 64.0f / typical;
    if (rng.below(8) == 0) d.scale[i] = rng.uniform(1e-9f, 1e-6f);
    if (c.values == kMaxAcc) d.scale[i] = 1.0f / 32768.0f / 65025.0f * rng.uniform(50.0f, 300.0f);
    if (c.values == kTies) d.bias[i] = rng.range(-40, 40), d.scale[i] = 1.0f / float(2 << rng.below(3));
  }
  d.rq = random_requant(rng, c.out == kU8);
  d.fa = Fenced<int16_t>(d.a), d.fbias = Fenced<int32_t>(d.bias), d.fscale = Fenced<float>(d.scale);
  return d;
}

// The catalog's formulas in int64 and nearbyintf, straight from the raw weights.
void reference(const Case& c, const Data& d, uint8_t* out) {
  const size_t es = c.out == kF32 ? 4 : 1;
  for (size_t i = 0; i < c.m; ++i)
    for (size_t n = 0; n < c.n; ++n) {
      int64_t s = 0;
      for (size_t k = 0; k < c.k; ++k) s += int64_t{d.a[i * c.a_stride + k]} * w_value(d, c, n, k);
      const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(s) + uint32_t(d.bias[n]));
      uint8_t* dst = out + (i * c.c_stride + n) * es;
      float v = float(acc) * d.scale[n];
      if (c.out == kF32) {
        std::memcpy(dst, &v, 4);
        continue;
      }
      v = std::min(std::max(v, d.rq.lo), d.rq.hi);
      const int32_t q = static_cast<int32_t>(std::nearbyint(v)) + d.rq.y_zp;
      *dst = static_cast<uint8_t>(q);
    }
}

// Runs a variant over the whole C: rows in tiles of mr, columns in chunks of `chunk` (a
// multiple of nr, as the op's column blocks are) with the packed rows, bias and scale offset.
void run(const Q8GemmUKernel& uk, const Case& c, const Data& d, size_t chunk, uint8_t* out) {
  std::vector<int16_t> w(q8_gemm_packed_size(c.n, c.k, uk.nr));
  uk.pack(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data(), uk.nr, w.data());
  const Fenced<int16_t> packed(w);
  const Q8GemmFn fn = c.out == kU8 ? uk.out_u8 : c.out == kI8 ? uk.out_i8 : uk.out_f32;
  const size_t es = c.out == kF32 ? 4 : 1, kp = q8_gemm_kp(c.k);
  for (size_t c0 = 0; c0 < c.n; c0 += chunk) {
    const size_t nc = std::min(chunk, c.n - c0);
    for (size_t r = 0; r < c.m; r += uk.mr)
      fn(std::min(uk.mr, c.m - r), nc, kp, d.fa.data() + r * c.a_stride, c.a_stride,
         packed.data() + c0 * kp, d.fbias.data() + c0, d.fscale.data() + c0,
         out + (r * c.c_stride + c0) * es, c.c_stride, d.rq);
  }
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  const Data d = make_data(c, rng);
  const size_t es = c.out == kF32 ? 4 : 1;
  const size_t bytes = ((c.m - 1) * c.c_stride + c.n) * es;
  const Q8GemmUKernel& scalar = *scalar_variant<Q8GemmUKernel>();
  Guarded want(bytes), ref(bytes);
  reference(c, d, ref.data());
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  run(scalar, c, d, c.n, want.data());
  size_t at = first_diff(want.data(), ref.data(), bytes);
  fam.check(at == SIZE_MAX && want.guard_intact(),
            fmt("%s vs int64 reference: %s, byte %zu", scalar.name, describe(c).c_str(), at));
  for (const Variant<Q8GemmUKernel>& v : variants<Q8GemmUKernel>()) {
    if (!isa_runnable(v.isa)) continue;
    // Whole N in one call, and N split into column chunks of 1..3 tiles.
    for (size_t chunk : {c.n, v.table->nr * (1 + rng.below(3))}) {
      Guarded got(bytes);
      set_running(fmt("%s (chunk %zu): %s", v.name, chunk, describe(c).c_str()));
      run(*v.table, c, d, chunk, got.data());
      at = first_diff(got.data(), want.data(), bytes);
      fam.check(at == SIZE_MAX && got.guard_intact(),
                fmt("%s (chunk %zu): %s, byte %zu%s", v.name, chunk, describe(c).c_str(), at,
                    got.guard_intact() ? "" : ", wrote past the output"));
    }
  }
}

Values pick_values(size_t r) { return r == 2 ? kTies : Values(r); }

}  // namespace

Family run_q8_gemm(Rng& rng) {
  Family fam("q8-gemm");
  size_t mr = 1, nr = 1;
  for (const Variant<Q8GemmUKernel>& v : variants<Q8GemmUKernel>()) {
    fam.note_variant(v.name, isa_runnable(v.isa));
    mr = std::max(mr, v.table->mr), nr = std::max(nr, v.table->nr);
  }
  if (scalar_variant<Q8GemmUKernel>() == nullptr) {
    fam.fail("q8-gemm.h declares no scalar variant");
    return fam;
  }
  auto random_case = [&](size_t m, size_t n, size_t k, Values values) {
    Case c;
    c.m = m, c.n = n, c.k = k;
    c.a_stride = q8_gemm_kp(k) + (rng.coin() ? 0 : rng.below(3) * 8 + rng.below(2) * 3);
    c.c_stride = n + (rng.coin() ? 0 : 1 + rng.below(9));
    c.x_u8 = rng.coin(), c.w_u8 = rng.coin();
    c.out = Out(rng.below(3));
    c.values = values;
    c.wild_bias = rng.below(8) == 0;
    return c;
  };
  // K around every block size a variant may use (8, 16, 32, 64), remainders of M and N.
  const size_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 100, 257};
  for (size_t k : ks)
    for (size_t m = 1; m <= mr + 1; ++m)
      for (size_t n = 1; n <= nr + 1; ++n) check_case(fam, random_case(m, n, k, pick_values(rng.below(3))), rng);
  // Larger odd tiles, and every dtype combination on a few shapes.
  for (size_t m : {2 * mr + 1, 3 * mr - 1, size_t{13}})
    for (size_t n : {2 * nr + 1, 3 * nr - 1, size_t{33}, size_t{67}})
      for (size_t k : {size_t{27}, size_t{72}, size_t{144}, size_t{577}})
        check_case(fam, random_case(m, n, k, pick_values(rng.below(3))), rng);
  for (int combo = 0; combo < 12; ++combo) {
    Case c = random_case(mr + 1, nr + 3, 45, kExtreme);
    c.x_u8 = combo & 1, c.w_u8 = combo & 2, c.out = Out(combo / 4);
    check_case(fam, c, rng);
  }
  // Large K: a 3x3x512 conv row, and the exactness limit with sums near ±2^31.
  for (size_t k : {size_t{4608}, kQ8GemmMaxK})
    for (Values values : {kRandom, kMaxAcc})
      for (int o = 0; o < 3; ++o) {
        Case c = random_case(k > 5000 ? 3 : mr + 1, nr + 1, k, values);
        c.out = Out(o), c.x_u8 = values == kMaxAcc ? o != 1 : c.x_u8;
        check_case(fam, c, rng);
      }
  return fam;
}

}  // namespace test
}  // namespace edgert
