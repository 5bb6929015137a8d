// q8-gemm-x8 (the byte form): every variant and form against the scalar byte kernel and against
// the int64 sum of the original operands (so packing, form choice and bias correction are
// checked too), on K around every quad/vector block, M and N remainders, u8/i8 inputs and
// weights, w' at ±127 (sign_s8) and at the pair limit (pair_u8), zero points and clamps, per-row
// biases and (variants with row_off) per-row offsets against the same sums; and a
// variant's own scan_pack against the generic one (form, sums and packed bytes).
#include <algorithm>
#include <cmath>

#include "kernels/q8-gemm-x8/q8-gemm-x8.h"
#include "tests/harness.h"

namespace edgert {
namespace test {
namespace {

struct Case {
  size_t m, n, k, c_stride;
  bool x_u8, w_u8;
  int out;      // 0 u8, 1 i8, 2 f32
  bool narrow;  // |w'| <= 64: pair_u8 is exact, both forms are run
  bool ties;    // small sums times 2^−1..3: exact halves
};

std::string describe(const Case& c) {
  static const char* const out[] = {"u8", "i8", "f32"};
  return fmt("m=%zu n=%zu k=%zu c_stride=%zu x=%s w=%s out=%s w'=%s%s", c.m, c.n, c.k,
             c.c_stride, c.x_u8 ? "u8" : "i8", c.w_u8 ? "u8" : "i8", out[c.out],
             c.narrow ? "narrow" : "wide", c.ties ? " ties" : "");
}

struct Data {
  std::vector<Fenced<uint8_t>> rows;  // k bytes each: reading at or past k faults
  std::vector<const void*> a;
  std::vector<uint8_t> w;
  std::vector<int32_t> w_zp, bias;
  std::vector<float> scale;
  Q8Requant rq{};
  std::vector<int32_t> row_delta;  // [m][n] added to row i's bias (per-row biases), or empty
  bool neg128 = false;  // a w' of −128: sign_s8 only on kernels with exact pairs
};

Data make_data(const Case& c, Rng& rng) {
  Data d;
  const int32_t xlo = c.x_u8 ? 0 : -128, xhi = c.x_u8 ? 255 : 127;
  const int32_t wlo = c.w_u8 ? 0 : -128, whi = c.w_u8 ? 255 : 127;
  const int32_t lim = c.narrow ? 64 : 127;  // |w'|: 64 fits pair_u8 (255·128 <= 32767)
  for (size_t i = 0; i < c.m; ++i) {
    std::vector<uint8_t> row(c.k);
    for (auto& b : row) {
      int32_t x = rng.below(4) ? rng.range(xlo, xhi) : (rng.coin() ? xlo : xhi);
      if (c.ties) x = rng.range(c.x_u8 ? 0 : -2, c.x_u8 ? 4 : 2);
      b = static_cast<uint8_t>(x);
    }
    d.rows.emplace_back(row);
    d.a.push_back(d.rows.back().data());
  }
  d.w.resize(c.n * c.k);
  for (size_t i = 0; i < c.n; ++i) {
    // A zero point that leaves w − w_zp = ±lim reachable inside the weight type's range.
    const int32_t zp = c.w_u8 ? rng.range(lim, 255 - lim) : (rng.below(3) ? 0 : rng.range(-128 + lim, 127 - lim));
    d.w_zp.push_back(zp);
    for (size_t j = 0; j < c.k; ++j) {
      int32_t v = rng.below(3) ? zp + rng.range(-lim, lim) : zp + (rng.coin() ? lim : -lim);
      if (c.ties) v = zp + rng.range(-2, 2);
      d.w[i * c.k + j] = static_cast<uint8_t>(std::min(whi, std::max(wlo, v)));
    }
    const float typical = 255.0f * 64.0f * std::sqrt(float(c.k)) + 1.0f;
    d.bias.push_back(rng.below(8) ? rng.range(-(1 << 20), 1 << 20) : int32_t(rng.next()));
    d.scale.push_back(rng.uniform(0.2f, 4.0f) * 64.0f / typical);
    if (c.ties) d.bias.back() = rng.range(-40, 40), d.scale.back() = 1.0f / float(2 << rng.below(3));
    // Now and then a product far outside int32 either way (a float clamp or a cvtps2dq overflow
    // guard must saturate it, not wrap).
    if (!c.ties && rng.below(8) == 0) d.scale.back() = (rng.coin() ? 1e6f : -1e6f) * rng.uniform(1.0f, 1e3f);
  }
  // Narrow layers now and then hold a w' of −128 beside a partner >= 0 (the pair test passes:
  // pair_u8 takes it, sign_s8 could not), where the zero point leaves room for it.
  if (c.narrow && !c.ties && rng.coin()) {
    const size_t i = rng.below(c.n), j = rng.below(c.k) & ~size_t{1};
    if (d.w_zp[i] - 128 >= wlo) {
      d.w[i * c.k + j] = static_cast<uint8_t>(d.w_zp[i] - 128);
      d.neg128 = true;
      if (j + 1 < c.k) d.w[i * c.k + j + 1] = static_cast<uint8_t>(d.w_zp[i] + rng.range(0, lim));
    }
  }
  d.rq = random_requant(rng, c.out == 0);
  return d;
}

void reference(const Case& c, const Data& d, uint8_t* out) {
  const size_t es = c.out == 2 ? 4 : 1;
  for (size_t i = 0; i < c.m; ++i)
    for (size_t n = 0; n < c.n; ++n) {
      int64_t s = 0;
      for (size_t k = 0; k < c.k; ++k) {
        const uint8_t xb = static_cast<const uint8_t*>(d.a[i])[k], wb = d.w[n * c.k + k];
        const int64_t x = c.x_u8 ? xb : static_cast<int8_t>(xb);
        const int64_t w = c.w_u8 ? wb : static_cast<int8_t>(wb);
        s += x * (w - d.w_zp[n]);
      }
      const uint32_t delta = d.row_delta.empty() ? 0 : uint32_t(d.row_delta[i * c.n + n]);
      const int32_t acc =
          static_cast<int32_t>(static_cast<uint32_t>(s) + uint32_t(d.bias[n]) + delta);
      float v = float(acc) * d.scale[n];
      uint8_t* dst = out + (i * c.c_stride + n) * es;
      if (c.out == 2) {
        std::memcpy(dst, &v, 4);
        continue;
      }
      v = std::min(std::max(v, d.rq.lo), d.rq.hi);
      *dst = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + d.rq.y_zp);
    }
}

// The engine's sequence: pack for the variant's nr, correct bias for form and input type, pad
// bias/scale to whole tiles, run rows in tiles of mr and columns in chunks of `chunk` (multiple
// of nr).
// row_off: the variant's per-row offset entry (row_off, pair_u8) with row_delta's first column as
// each row's offset (the case's deltas are then one per row), instead of a bias matrix.
void run(const Q8GemmX8UKernel& uk, Q8GemmForm form, const Case& c, const Data& d, size_t chunk,
         bool all_rows, uint8_t* out, bool row_off = false) {
  const size_t nr = uk.nr, np = (c.n + nr - 1) / nr * nr, kq4 = (c.k + 3) / 4 * 4;
  std::vector<int8_t> w(q8_gemm_x8_packed_size(c.n, c.k, nr));
  q8_gemm_pack_x8(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data(), nr, w.data());
  std::vector<int32_t> bias(np, 0);
  std::vector<float> scale(np, 1.0f);
  q8_gemm_x8_bias(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data(), form, c.x_u8, d.bias.data(),
                  bias.data());
  std::copy(d.scale.begin(), d.scale.end(), scale.begin());
  // Per-row biases: an [m][np] matrix, row i = the corrected bias + row_delta[i].
  const size_t bstride = d.row_delta.empty() || row_off ? 0 : np;
  std::vector<int32_t> offs(c.m, 0);
  if (row_off)
    for (size_t i = 0; i < c.m; ++i) offs[i] = d.row_delta[i * c.n];
  const Fenced<int32_t> fo(offs);
  if (bstride) {
    std::vector<int32_t> rows(c.m * np, 0);
    for (size_t i = 0; i < c.m; ++i)
      for (size_t n = 0; n < c.n; ++n)
        rows[i * np + n] = int32_t(uint32_t(bias[n]) + uint32_t(d.row_delta[i * c.n + n]));
    bias = rows;
  }
  const Fenced<int8_t> fw(w);
  const Fenced<int32_t> fb(bias);
  const Fenced<float> fs(scale);
  const Q8GemmX8Fn fn = uk.fn[form == Q8GemmForm::pair_u8 ? 0 : 1][c.x_u8 ? 0 : 1][c.out];
  // sign_s8 takes prepared rows (the variant's prepare_sign, as the engine calls it), each
  // against a fence too, unless the variant has exact pairs; pair_u8 the raw rows.
  std::vector<Fenced<uint8_t>> prepared;
  std::vector<const void*> a = d.a;
  if (form == Q8GemmForm::sign_s8 && !uk.exact_pairs) {
    auto prep = uk.prepare_sign ? uk.prepare_sign : q8_gemm_x8_prepare_sign;
    for (size_t i = 0; i < c.m; ++i) {
      std::vector<uint8_t> row(8 * ((c.k + 3) / 4));
      prep(static_cast<const uint8_t*>(d.a[i]), c.k, c.x_u8, row.data());
      prepared.emplace_back(row);
      a[i] = prepared.back().data();
    }
  }
  // Rows in tiles of the kernel's mr, or all in one call (the kernel walks them itself).
  const size_t es = c.out == 2 ? 4 : 1, step = all_rows ? c.m : uk.mr;
  for (size_t c0 = 0; c0 < c.n; c0 += chunk)
    for (size_t r = 0; r < c.m; r += step) {
      if (row_off) {
        uk.row_off[c.x_u8 ? 0 : 1][c.out](std::min(step, c.m - r), std::min(chunk, c.n - c0), c.k,
                                          a.data() + r, fw.data() + c0 * kq4, fb.data() + c0,
                                          fo.data() + r, fs.data() + c0,
                                          out + (r * c.c_stride + c0) * es, c.c_stride, d.rq);
        continue;
      }
      fn(std::min(step, c.m - r), std::min(chunk, c.n - c0), c.k, a.data() + r,
         fw.data() + c0 * kq4, fb.data() + r * bstride + c0, bstride, fs.data() + c0,
         out + (r * c.c_stride + c0) * es, c.c_stride, d.rq);
    }
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  Data d = make_data(c, rng);
  bool one_per_row = false;  // the deltas of a row all equal: the row_off entries run too
  if (rng.below(3) == 0) {  // per-row biases (the engine's pair_u8 corrections)
    d.row_delta.resize(c.m * c.n);
    for (auto& v : d.row_delta) v = rng.range(-(1 << 16), 1 << 16);
    if (rng.coin()) {  // one offset a row (the engine's row_zp layers), at times a huge one
      one_per_row = true;
      for (size_t i = 0; i < c.m; ++i) {
        const int32_t o = rng.below(4) ? d.row_delta[i * c.n] : rng.range(-(1 << 30), 1 << 30);
        std::fill_n(d.row_delta.begin() + i * c.n, c.n, o);
      }
    }
  }
  if (rng.coin()) {  // a tame layer, as nearly all are: no huge product, no huge bias
    for (size_t n = 0; n < c.n; ++n) {
      if (std::fabs(d.scale[n]) > 1e3f) d.scale[n] = rng.uniform(-1.0f, 1.0f);
      d.bias[n] = std::min(std::max(d.bias[n], -(1 << 24)), 1 << 24);
    }
  }
  // The engine's proof on this data: with it false, kernels that round before they clamp skip
  // their overflow guard, which every huge-product case above keeps. The row deltas (the engine's
  // moved-weight corrections, part of the exact sum there) widen each column's bias.
  std::vector<int32_t> worst(c.n);
  for (size_t n = 0; n < c.n; ++n) {
    int64_t b = std::abs(int64_t(d.bias[n]));
    for (size_t i = 0; i < d.row_delta.size() / c.n; ++i)
      b = std::max(b, std::abs(int64_t(d.bias[n]) + d.row_delta[i * c.n + n]));
    worst[n] = int32_t(std::min<int64_t>(b, INT32_MAX));
  }
  d.rq.guard = q8_requant_needs_guard(c.n, c.k, worst.data(), d.scale.data());
  const Q8GemmForm chosen =
      q8_gemm_choose_form(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data());
  // Every w' is in int8 here, so the choice must be a byte form; narrow weights allow pair_u8.
  fam.check(chosen != Q8GemmForm::int16 && (!c.narrow || chosen == Q8GemmForm::pair_u8),
            fmt("q8_gemm_choose_form picked %d: %s", int(chosen), describe(c).c_str()));
  const size_t bytes = ((c.m - 1) * c.c_stride + c.n) * (c.out == 2 ? 4 : 1);
  Guarded want(bytes);
  reference(c, d, want.data());
  for (Q8GemmForm form : {Q8GemmForm::sign_s8, Q8GemmForm::pair_u8})
    for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
      // pair_u8 on wide weights only where the variant sums pairs exactly.
      if (!isa_runnable(v.isa)) continue;
      if (form == Q8GemmForm::pair_u8 && chosen != Q8GemmForm::pair_u8 && !v.table->exact_pairs)
        continue;
      if (form == Q8GemmForm::sign_s8 && d.neg128 && !v.table->exact_pairs) continue;
      for (size_t chunk : {c.n, v.table->nr * (1 + rng.below(2))}) {
        Guarded got(bytes);
        set_running(fmt("%s form %d (chunk %zu): %s", v.name, int(form), chunk, describe(c).c_str()));
        const bool all_rows = rng.coin();
        run(*v.table, form, c, d, chunk, all_rows, got.data());
        const size_t at = first_diff(got.data(), want.data(), bytes);
        fam.check(at == SIZE_MAX && got.guard_intact(),
                  fmt("%s form %s (chunk %zu%s, %s): %s, byte %zu%s", v.name,
                      form == Q8GemmForm::pair_u8 ? "pair_u8" : "sign_s8", chunk,
                      all_rows ? ", all rows" : "",
                      d.rq.guard ? "guarded" : "unguarded", describe(c).c_str(), at,
                      got.guard_intact() ? "" : ", wrote past the output"));
        if (form != Q8GemmForm::pair_u8 || !one_per_row || !v.table->row_off[0][0]) continue;
        Guarded got2(bytes);
        set_running(fmt("%s row_off (chunk %zu): %s", v.name, chunk, describe(c).c_str()));
        run(*v.table, form, c, d, chunk, all_rows, got2.data(), true);
        const size_t at2 = first_diff(got2.data(), want.data(), bytes);
        fam.check(at2 == SIZE_MAX && got2.guard_intact(),
                  fmt("%s row_off (chunk %zu%s, %s): %s, byte %zu%s", v.name, chunk,
                      all_rows ? ", all rows" : "", d.rq.guard ? "guarded" : "unguarded",
                      describe(c).c_str(), at2, got2.guard_intact() ? "" : ", wrote past the output"));
      }
    }
}

// A variant's indirect form (taps of cg bytes behind separate pointers, each against its own
// fence) against the int64 reference of the concatenated rows; both forms, any weights (the
// indirect form is only offered by exact_pairs kernels), column chunks as the engine makes them.
void check_indirect(Family& fam, const Q8GemmX8UKernel& uk, const char* name, size_t m, size_t n,
                    size_t taps, size_t cg, Rng& rng) {
  Case c{m, n, taps * cg, n + (rng.coin() ? 0 : 1 + rng.below(5)), rng.coin(), rng.coin(),
         int(rng.below(3)), rng.coin(), false};
  const Data d = make_data(c, rng);
  const size_t bytes = ((c.m - 1) * c.c_stride + c.n) * (c.out == 2 ? 4 : 1);
  Guarded want(bytes);
  reference(c, d, want.data());
  // Groups of mr rows, each taps·mr pointers (row r of group g, tap t at (g·taps + t)·mr + r).
  const size_t mr = uk.mr, groups = (m + mr - 1) / mr;
  std::vector<Fenced<uint8_t>> pieces;
  pieces.reserve(m * taps);
  std::vector<const void*> a(groups * taps * mr);
  for (size_t t = 0; t < taps; ++t)
    for (size_t r = 0; r < m; ++r) {
      const uint8_t* row = static_cast<const uint8_t*>(d.a[r]) + t * cg;
      pieces.emplace_back(std::vector<uint8_t>(row, row + cg));
      a[(r / mr * taps + t) * mr + r % mr] = pieces.back().data();
    }
  for (size_t t = 0; t < taps; ++t)  // the last group's rows past m: any readable pointer
    for (size_t r = m; r < groups * mr; ++r)
      a[(r / mr * taps + t) * mr + r % mr] = a[(r / mr * taps + t) * mr];
  const size_t nr = uk.nr, np = (c.n + nr - 1) / nr * nr, kq4 = (c.k + 3) / 4 * 4;
  std::vector<int8_t> w(q8_gemm_x8_packed_size(c.n, c.k, nr));
  q8_gemm_pack_x8(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data(), nr, w.data());
  const Fenced<int8_t> fw(w);
  for (Q8GemmForm form : {Q8GemmForm::pair_u8, Q8GemmForm::sign_s8}) {
    std::vector<int32_t> bias(np, 0);
    std::vector<float> scale(np, 1.0f);
    q8_gemm_x8_bias(c.n, c.k, d.w.data(), c.w_u8, c.k, d.w_zp.data(), form, c.x_u8,
                    d.bias.data(), bias.data());
    std::copy(d.scale.begin(), d.scale.end(), scale.begin());
    const Fenced<int32_t> fb(bias);
    const Fenced<float> fs(scale);
    const size_t chunk = rng.coin() ? c.n : nr * (1 + rng.below(2)), es = c.out == 2 ? 4 : 1;
    const int fi = form == Q8GemmForm::pair_u8 ? 0 : 1;
    const std::string what = fmt("%s indirect form %d taps=%zu cg=%zu: %s", name, fi, taps, cg,
                                 describe(c).c_str());
    set_running(what);
    Guarded got(bytes);
    for (size_t c0 = 0; c0 < c.n; c0 += chunk)
      uk.indirect[fi][c.x_u8 ? 0 : 1][c.out](m, std::min(chunk, c.n - c0), taps, cg, a.data(),
                                             fw.data() + c0 * kq4, fb.data() + c0, fs.data() + c0,
                                             got.data() + c0 * es, c.c_stride, d.rq);
    const size_t at = first_diff(got.data(), want.data(), bytes);
    fam.check(at == SIZE_MAX && got.guard_intact(),
              fmt("%s, byte %zu%s", what.c_str(), at, got.guard_intact() ? "" : ", wrote past the output"));
  }
}

// A variant's scan_pack against the generic q8_gemm_x8_scan_pack: the same form, the same sums
// and (unless the form is int16, whose bytes are meaningless) the same packed bytes, every one of
// them written (the two outputs start from different fills) and none past the packed size.
// target: 0 pair_u8 with pairs exactly at its limit, 1 one pair just past it, 2 w' at ±127,
// 3 one w' past ±127 (−128, or ±255 from u8 weights with a zero point), at any k position: int16,
// but for a −128 in a layer whose pairs all pass the pair test (pair_u8 takes it).
void check_scan_pack(Family& fam, const Q8GemmX8UKernel& uk, const char* name, size_t n,
                     size_t k, size_t nr, bool w_u8, int target, Rng& rng) {
  const size_t ldw = k + (rng.coin() ? 0 : rng.below(9));
  const int32_t wlo = w_u8 ? 0 : -128, whi = w_u8 ? 255 : 127;
  const int32_t lim = target == 0 || target == 1 ? 64 : 127;
  std::vector<uint8_t> w((n - 1) * ldw + k, 0xEE);
  std::vector<int32_t> zp(n);
  const size_t si = rng.below(n), sj = rng.coin() ? k - 1 : rng.below(k);  // the special weight
  for (size_t i = 0; i < n; ++i) {
    zp[i] = w_u8 ? rng.range(lim, 255 - lim) : (rng.below(3) ? 0 : rng.range(-128 + lim, 127 - lim));
    if (i == si && target == 1) zp[i] = w_u8 ? 128 : 0;
    if (i == si && target == 3) zp[i] = w_u8 ? (rng.coin() ? 0 : 255) : 0;
    for (size_t j = 0; j < k; ++j) {
      const int32_t v = rng.below(3) ? zp[i] + rng.range(-lim, lim) : zp[i] + (rng.coin() ? lim : -lim);
      w[i * ldw + j] = static_cast<uint8_t>(std::min(whi, std::max(wlo, v)));
    }
  }
  uint8_t* const row = w.data() + si * ldw;
  const size_t j0 = std::min(sj, k - 2 + (k < 2)) & ~size_t{1};  // an aligned pair (2j, 2j + 1)
  const int32_t sgn = rng.coin() ? 1 : -1;
  if ((target == 1 || target == 2) && k > 1) {  // 65 + 64 = 129 (just past pair_u8), or 127 + 127
    row[j0] = static_cast<uint8_t>(zp[si] + sgn * (target == 1 ? 65 : 127));
    row[j0 + 1] = static_cast<uint8_t>(zp[si] + sgn * (target == 1 ? 64 : 127));
  }
  if (target == 3) row[sj] = static_cast<uint8_t>(w_u8 ? 255 - zp[si] : 0x80);
  const Fenced<uint8_t> fw(w);
  const size_t bytes = q8_gemm_x8_packed_size(n, k, nr);
  Guarded want(bytes), got(bytes);
  std::memset(got.data(), 0x3C, bytes);
  std::vector<int32_t> want_sums(n), got_sums(n, 0x7A7A7A7A);
  const std::string what = fmt("%s scan_pack n=%zu k=%zu ldw=%zu nr=%zu w=%s target=%d", name, n,
                               k, ldw, nr, w_u8 ? "u8" : "i8", target);
  set_running(what);
  const Q8GemmForm f0 = q8_gemm_x8_scan_pack(n, k, fw.data(), w_u8, ldw, zp.data(), nr,
                                             reinterpret_cast<int8_t*>(want.data()), want_sums.data());
  const Q8GemmForm f1 = uk.scan_pack(n, k, fw.data(), w_u8, ldw, zp.data(), nr,
                                     reinterpret_cast<int8_t*>(got.data()), got_sums.data());
  // Whether every weight pair (2j, 2j + 1), the last one's partner 0 past k, passes pair_u8.
  bool pairs_pass = true;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < k; j += 2) {
      auto wp = [&](size_t jj) {
        if (jj >= k) return 0;
        const uint8_t b = w[i * ldw + jj];
        return (w_u8 ? int32_t{b} : int32_t{static_cast<int8_t>(b)}) - zp[i];
      };
      const int32_t a = wp(j), b = wp(j + 1);
      pairs_pass &= 255 * (std::max(a, 0) + std::max(b, 0)) <= 32767 &&
                    255 * (std::min(a, 0) + std::min(b, 0)) >= -32768;
    }
  const Q8GemmForm expect = target == 3 ? (!w_u8 && pairs_pass ? Q8GemmForm::pair_u8
                                                                : Q8GemmForm::int16)
                            : target == 0 ? Q8GemmForm::pair_u8 : Q8GemmForm::sign_s8;
  fam.check(f0 == expect || (k == 1 && target != 3 && f0 == Q8GemmForm::pair_u8),
            fmt("generic form %d, want %d: %s", int(f0), int(expect), what.c_str()));
  const size_t at = f1 == Q8GemmForm::int16 ? SIZE_MAX : first_diff(got.data(), want.data(), bytes);
  fam.check(f1 == f0 && want_sums == got_sums && at == SIZE_MAX && got.guard_intact(),
            fmt("%s: form %d vs %d, sums %s, byte %zu%s", what.c_str(), int(f1), int(f0),
                want_sums == got_sums ? "same" : "differ", at,
                got.guard_intact() ? "" : ", wrote past the packed size"));
  // Without sums (the engine may pass none): the same form and bytes.
  Guarded again(bytes);
  const Q8GemmForm f2 = uk.scan_pack(n, k, fw.data(), w_u8, ldw, zp.data(), nr,
                                     reinterpret_cast<int8_t*>(again.data()), nullptr);
  fam.check(f2 == f0 && (f2 == Q8GemmForm::int16 || first_diff(again.data(), want.data(), bytes) == SIZE_MAX),
            fmt("%s without sums: form %d vs %d", what.c_str(), int(f2), int(f0)));
}

// A variant's permute_rows against q8_gemm_x8_permute_rows on `rows` rows of k bytes, with a
// random mask of the documented kind (each 16-group a permutation of its indices below k, the
// identity past k). Not whole: the source ends at a fenced page after its last row's k bytes and
// all round_up(k, 16) output bytes must match; whole: rows are readable to round_up(k, 16) and
// the first k bytes must match. Also in place (dst == src, rows round_up(k, 16) or more apart),
// as the engine reorders im2col rows.
void check_permute_rows(Family& fam, const Q8GemmX8UKernel& uk, const char* name, size_t rows,
                        size_t k, bool whole, Rng& rng) {
  const size_t kp = (k + 15) / 16 * 16;
  const size_t stride = (whole ? kp : k) + rng.below(3) * 16;
  const size_t dstride = kp + rng.below(2) * 16;
  std::vector<uint8_t> mask(kp);
  for (size_t g = 0; g < kp; g += 16) {
    const size_t len = std::min<size_t>(16, k - g);
    for (size_t j = 0; j < 16; ++j) mask[g + j] = static_cast<uint8_t>(j);
    for (size_t j = len; j-- > 1;) std::swap(mask[g + j], mask[g + rng.below(j + 1)]);
  }
  std::vector<uint8_t> src((rows - 1) * stride + (whole ? kp : k));
  for (auto& b : src) b = static_cast<uint8_t>(rng.below(256));
  const Fenced<uint8_t> fsrc(src);
  const std::string what = fmt("%s permute_rows rows=%zu k=%zu whole=%d", name, rows, k, int(whole));
  set_running(what);
  const size_t bytes = (rows - 1) * dstride + kp;
  Guarded want(bytes), got(bytes);
  q8_gemm_x8_permute_rows(fsrc.data(), stride, rows, k, whole, mask.data(), want.data(), dstride);
  uk.permute_rows(fsrc.data(), stride, rows, k, whole, mask.data(), got.data(), dstride);
  bool same = got.guard_intact();
  for (size_t r = 0; r < rows; ++r)
    same = same && first_diff(got.data() + r * dstride, want.data() + r * dstride, whole ? k : kp) == SIZE_MAX;
  fam.check(same, what);
  // In place (rows at least round_up(k, 16) apart): the rows of a copy reordered where they are.
  if (stride < kp) return;
  std::vector<uint8_t> inplace((rows - 1) * stride + kp + kGuard, kFill);
  std::memcpy(inplace.data(), src.data(), src.size());
  uk.permute_rows(inplace.data(), stride, rows, k, whole, mask.data(), inplace.data(), stride);
  bool same2 = true;
  for (size_t r = 0; r < rows; ++r)
    same2 = same2 && first_diff(inplace.data() + r * stride, want.data() + r * dstride, k) == SIZE_MAX;
  fam.check(same2, what + " in place");
}

// A variant's gpermute_rows against q8_gemm_x8_gpermute_rows: a random permutation of [0, k)
// (channels moved between groups of 16), the source fenced right after each row's k bytes of the
// last row, all round_up(k, 16) output bytes compared (zeros past k); also in place.
void check_gpermute_rows(Family& fam, const Q8GemmX8UKernel& uk, const char* name, size_t rows,
                         size_t k, Rng& rng) {
  const size_t kp = (k + 15) / 16 * 16;
  const size_t stride = k + rng.below(3) * 16;
  const size_t dstride = kp + rng.below(2) * 16;
  std::vector<uint8_t> order(kp);
  for (size_t j = 0; j < kp; ++j) order[j] = static_cast<uint8_t>(j);
  for (size_t j = k; j-- > 1;) std::swap(order[j], order[rng.below(j + 1)]);
  std::vector<uint8_t> src((rows - 1) * stride + k);
  for (auto& b : src) b = static_cast<uint8_t>(rng.below(256));
  const Fenced<uint8_t> fsrc(src);
  const std::string what = fmt("%s gpermute_rows rows=%zu k=%zu", name, rows, k);
  set_running(what);
  const size_t bytes = (rows - 1) * dstride + kp;
  Guarded want(bytes), got(bytes);
  q8_gemm_x8_gpermute_rows(fsrc.data(), stride, rows, k, order.data(), want.data(), dstride);
  uk.gpermute_rows(fsrc.data(), stride, rows, k, order.data(), got.data(), dstride);
  bool same = got.guard_intact();
  for (size_t r = 0; r < rows; ++r) {
    same = same && first_diff(got.data() + r * dstride, want.data() + r * dstride, kp) == SIZE_MAX;
    for (size_t j = 0; j < k; ++j) same = same && want.data()[r * dstride + j] == src[r * stride + order[j]];
  }
  fam.check(same, what);
  std::vector<uint8_t> inplace((rows - 1) * kp + kp + kGuard, kFill);
  for (size_t r = 0; r < rows; ++r) std::memcpy(inplace.data() + r * kp, src.data() + r * stride, k);
  uk.gpermute_rows(inplace.data(), kp, rows, k, order.data(), inplace.data(), kp);
  bool same2 = true;
  for (size_t r = 0; r < rows; ++r)
    same2 = same2 && first_diff(inplace.data() + r * kp, want.data() + r * dstride, kp) == SIZE_MAX;
  fam.check(same2, what + " in place");
}

// A variant's gather_taps against q8_gemm_x8_gather_taps: random masks (entries below 16 or
// 0x80, several segments may fill one byte), rows pix bytes apart, segments step apart, the source
// fenced right after the last row's last 16-byte segment, 32 bytes a row compared.
void check_gather_taps(Family& fam, const Q8GemmX8UKernel& uk, const char* name, size_t segs,
                       size_t rows, Rng& rng) {
  const size_t pix = 1 + rng.below(12), step = 16 + rng.below(300);
  const size_t dstride = 32 + rng.below(2) * 16;
  std::vector<uint8_t> masks(32 * segs);
  for (auto& m : masks) m = rng.below(3) ? 0x80 : static_cast<uint8_t>(rng.below(16));
  std::vector<uint8_t> src((rows - 1) * pix + (segs - 1) * step + 16);
  for (auto& b : src) b = static_cast<uint8_t>(rng.below(256));
  const Fenced<uint8_t> fsrc(src);
  const std::string what = fmt("%s gather_taps segs=%zu rows=%zu pix=%zu", name, segs, rows, pix);
  set_running(what);
  const size_t bytes = (rows - 1) * dstride + 32;
  Guarded want(bytes), got(bytes);
  q8_gemm_x8_gather_taps(fsrc.data(), pix, step, segs, rows, masks.data(), want.data(), dstride);
  uk.gather_taps(fsrc.data(), pix, step, segs, rows, masks.data(), got.data(), dstride);
  bool same = got.guard_intact();
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < 32; ++j) {
      uint8_t v = 0;  // the contract, spelled out
      for (size_t t = 0; t < segs; ++t)
        if (masks[32 * t + j] < 16) v |= src[r * pix + t * step + masks[32 * t + j]];
      same = same && want.data()[r * dstride + j] == v && got.data()[r * dstride + j] == v;
    }
  fam.check(same, what);
}

}  // namespace

Family run_q8_gemm_x8(Rng& rng) {
  Family fam("q8-gemm-x8");
  size_t mr = 1, nr = 1;
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    fam.note_variant(v.name, isa_runnable(v.isa));
    mr = std::max(mr, v.table->mr), nr = std::max(nr, v.table->nr);
  }
  if (variants<Q8GemmX8UKernel>().empty()) return fam;
  auto random_case = [&](size_t m, size_t n, size_t k) {
    return Case{m, n, k, n + (rng.coin() ? 0 : 1 + rng.below(5)), rng.coin(), rng.coin(),
                int(rng.below(3)), rng.coin(), rng.below(4) == 0};
  };
  for (size_t k : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100})
    for (size_t m = 1; m <= mr + 1; ++m)
      for (size_t n : {size_t{1}, size_t{3}, nr / 2, nr - 1, nr, nr + 1, nr + nr / 2})
        check_case(fam, random_case(m, n, k), rng);
  for (size_t m : {2 * mr + 1, size_t{11}, size_t{13}})
    for (size_t n : {2 * nr + 1, 3 * nr - 1, size_t{67}})
      for (size_t k : {size_t{27}, size_t{144}, size_t{577}}) check_case(fam, random_case(m, n, k), rng);
  for (int combo = 0; combo < 24; ++combo) {
    Case c = random_case(mr + 1, nr + 3, 45);
    c.x_u8 = combo & 1, c.w_u8 = combo & 2, c.narrow = combo & 4, c.out = combo / 8;
    check_case(fam, c, rng);
  }
  for (size_t k : {size_t{4608}, kQ8GemmMaxK}) check_case(fam, random_case(2, nr + 1, k), rng);
  // Rows past what one chunk of the amx kernel's panels holds (384 KiB: two panels of k = 4608).
  check_case(fam, random_case(3 * mr + 5, 2 * nr + 3, 4608), rng);
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    if (!v.table->indirect[0][0][0] || !isa_runnable(v.isa)) continue;
    for (size_t m = 1; m <= v.table->mr; ++m)
      for (size_t taps : {1, 2, 9})
        for (size_t cg : {4, 8, 12, 64}) check_indirect(fam, *v.table, v.name, m, 1 + rng.below(40), taps, cg, rng);
    check_indirect(fam, *v.table, v.name, v.table->mr, 2 * v.table->nr + 3, 9, 512, rng);
    for (size_t m : {v.table->mr + 1, 2 * v.table->mr, 3 * v.table->mr - 5})  // several groups
      check_indirect(fam, *v.table, v.name, m, 1 + rng.below(70), 1 + rng.below(9),
                     4 * (1 + rng.below(40)), rng);
  }
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    if (!v.table->permute_rows || !isa_runnable(v.isa)) continue;
    for (size_t k : {4, 5, 15, 16, 17, 24, 27, 31, 32, 33, 47, 48, 63, 64, 65, 96, 100, 144, 577})
      for (size_t rows : {1, 2, 5})
        for (bool whole : {false, true}) check_permute_rows(fam, *v.table, v.name, rows, k, whole, rng);
  }
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    if (!v.table->gpermute_rows || !isa_runnable(v.isa)) continue;
    for (size_t k : {4, 5, 15, 16, 17, 24, 27, 31, 32, 33, 47, 48, 63, 64})
      for (size_t rows : {1, 2, 5}) check_gpermute_rows(fam, *v.table, v.name, rows, k, rng);
  }
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    if (!v.table->gather_taps || !isa_runnable(v.isa)) continue;
    for (size_t segs : {1, 2, 3, 4, 5})
      for (size_t rows : {1, 2, 7}) check_gather_taps(fam, *v.table, v.name, segs, rows, rng);
  }
  for (const Variant<Q8GemmX8UKernel>& v : variants<Q8GemmX8UKernel>()) {
    if (!v.table->scan_pack || !isa_runnable(v.isa)) continue;
    const size_t vnr = v.table->nr;
    for (size_t n : {size_t{1}, size_t{3}, vnr - 1, vnr, vnr + 1, 2 * vnr + 5, size_t{47}})
      for (size_t k : {1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 577})
        check_scan_pack(fam, *v.table, v.name, n, k, rng.below(8) ? vnr : 4, rng.coin(),
                        int(rng.below(4)), rng);
    for (int combo = 0; combo < 8; ++combo)  // every target and weight type on one shape
      check_scan_pack(fam, *v.table, v.name, 2 * vnr + 3, 4608, vnr, combo & 1, combo / 2, rng);
  }
  return fam;
}

}  // namespace test
}  // namespace edgert
