// q8-dwconv: every variant against the scalar kernel (and scalar against an int64 reference) on
// odd channel counts around every channel block, 1..49 taps and a few thousand, pad rows,
// w − w_zp = ±255 with sums near 2^31, zero points and clamps at their extremes; the 3x3 row
// kernels in q8_dwconv_row_test.cc.
#include <algorithm>
#include <cmath>

#include "kernels/q8-dwconv/q8-dwconv.h"
#include "tests/harness.h"

namespace edgert {
namespace test {

// Bias, scale and output stage (zero point and clamps at their extremes) for `channels` sums of
// `taps` products; values as in Case. Shared with the row-kernel test.
void dw_random_quant(size_t channels, size_t taps, int out, int values, Rng& rng,
                     std::vector<int32_t>& bias, std::vector<float>& scale, Q8Requant& rq) {
  for (size_t ch = 0; ch < channels; ++ch) {
    bias.push_back(rng.below(8) ? rng.range(-(1 << 18), 1 << 18) : int32_t(rng.next()));
    float s = rng.uniform(0.2f, 4.0f) * 64.0f / (255.0f * 128.0f * std::sqrt(float(taps)) + 1);
    if (values == 2) s = rng.uniform(50.0f, 300.0f) / (float(taps) * 65025.0f);
    if (values == 3) s = 1.0f / float(2 << rng.below(3)), bias.back() = rng.range(-40, 40);
    // Scales >= 1 (|float(acc)·scale| past 2^31 and every clamp): the paths that need them.
    if (values == 1 && rng.below(4) == 0) s = rng.coin() ? rng.uniform(1.0f, 70000.0f) : -rng.uniform(0.5f, 9.0f);
    scale.push_back(s);
  }
  rq = random_requant(rng, out == 0);
}

namespace {

size_t& byte_form_cases() {
  static size_t n = 0;
  return n;
}

struct Case {
  size_t channels, taps;
  bool x_u8, w_u8;
  int out;     // 0 u8, 1 i8, 2 f32
  int values;  // 0 random, 1 extremes, 2 maximal sums, 3 exact ties (small sums times 2^−1..3)
  bool fit = false;  // every w' = W − w_zp in int8 (w_zp 0, or 128 for u8): the byte form's
};

struct Data {
  // Input rows of exactly `channels` bytes each (reading past a row is a bug), one per tap;
  // taps share rows through the pointer table as padding rows do.
  std::vector<Fenced<uint8_t>> rows;
  std::vector<const void*> in;
  std::vector<uint8_t> w;  // raw [channels][taps]
  std::vector<int32_t> w_zp;
  std::vector<int16_t> packed;  // q8_dwconv_pack_w's layout, for the reference
  std::vector<int32_t> bias;
  std::vector<float> scale;
  Q8Requant rq{};
  Fenced<int32_t> fbias;  // what kernels read, against a fence page
  Fenced<float> fscale;
};

std::string describe(const Case& c) {
  static const char* const out[] = {"u8", "i8", "f32"};
  return fmt("channels=%zu taps=%zu x=%s w=%s out=%s values=%d%s", c.channels, c.taps,
             c.x_u8 ? "u8" : "i8", c.w_u8 ? "u8" : "i8", out[c.out], c.values,
             c.fit ? " (w' in int8)" : "");
}

Data make_data(const Case& c, Rng& rng) {
  Data d;
  const int32_t xlo = c.x_u8 ? 0 : -128, xhi = c.x_u8 ? 255 : 127;
  const int32_t wlo = c.w_u8 ? 0 : -128, whi = c.w_u8 ? 255 : 127;
  const size_t nrows = std::min<size_t>(c.taps, 40);
  for (size_t r = 0; r < nrows; ++r) {
    std::vector<uint8_t> row(c.channels);
    const int32_t fill = rng.range(xlo, xhi);  // a padding row: one value (x_zp) throughout
    const bool pad = rng.below(5) == 0;
    for (size_t ch = 0; ch < c.channels; ++ch) {
      int32_t x = pad ? fill : rng.range(xlo, xhi);
      if (c.values == 1 && rng.below(3)) x = rng.coin() ? xlo : xhi;
      if (c.values == 2) x = c.x_u8 ? 255 : -128;
      if (c.values == 3) x = rng.range(c.x_u8 ? 0 : -2, c.x_u8 ? 4 : 2);
      row[ch] = static_cast<uint8_t>(x);
    }
    d.rows.emplace_back(row);
  }
  for (size_t t = 0; t < c.taps; ++t) d.in.push_back(d.rows[t < nrows ? t : rng.below(nrows)].data());
  std::vector<uint8_t>& w = d.w;
  std::vector<int32_t>& w_zp = d.w_zp;
  w.resize(c.channels * c.taps);
  w_zp.resize(c.channels);
  for (size_t ch = 0; ch < c.channels; ++ch) {
    const bool up = rng.coin();
    w_zp[ch] = c.values == 0 ? rng.range(wlo, whi) : (up ? wlo : whi);
    for (size_t t = 0; t < c.taps; ++t) {
      int32_t v = rng.range(wlo, whi);
      if (c.values == 1 && rng.below(3)) v = up ? whi : wlo;
      if (c.values == 2) v = up ? whi : wlo;
      if (c.values == 3) v = std::min(whi, std::max(wlo, w_zp[ch] + rng.range(-2, 2)));
      w[ch * c.taps + t] = static_cast<uint8_t>(v);
    }
    if (c.fit) w_zp[ch] = c.w_u8 ? 128 : 0;
  }
  d.packed.resize(c.channels * c.taps);
  q8_dwconv_pack_w(c.channels, c.taps, w.data(), c.w_u8, w_zp.data(), d.packed.data());
  dw_random_quant(c.channels, c.taps, c.out, c.values, rng, d.bias, d.scale, d.rq);
  d.fbias = Fenced<int32_t>(d.bias);
  d.fscale = Fenced<float>(d.scale);
  return d;
}

void reference(const Case& c, const Data& d, uint8_t* y) {
  for (size_t ch = 0; ch < c.channels; ++ch) {
    int64_t s = 0;
    for (size_t t = 0; t < c.taps; ++t) {
      const uint8_t b = static_cast<const uint8_t*>(d.in[t])[ch];
      s += (c.x_u8 ? int64_t{b} : int64_t{static_cast<int8_t>(b)}) * d.packed[t * c.channels + ch];
    }
    const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(s) + uint32_t(d.bias[ch]));
    float v = float(acc) * d.scale[ch];
    if (c.out == 2) {
      std::memcpy(y + ch * 4, &v, 4);
      continue;
    }
    v = std::min(std::max(v, d.rq.lo), d.rq.hi);
    y[ch] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + d.rq.y_zp);
  }
}

void check_case(Family& fam, const Case& c, Rng& rng) {
  const Data d = make_data(c, rng);
  const size_t bytes = c.channels * (c.out == 2 ? 4 : 1);
  const Q8DwConvUKernel& scalar = *scalar_variant<Q8DwConvUKernel>();
  Guarded want(bytes), ref(bytes);
  reference(c, d, ref.data());
  auto run = [&](const Q8DwConvUKernel& uk, uint8_t* y) {
    // Each variant packs with its own function into the shared size, as the engine does.
    std::vector<int16_t> w(q8_dwconv_packed_size(c.channels, c.taps));
    (uk.pack ? uk.pack : q8_dwconv_pack_w)(c.channels, c.taps, d.w.data(), c.w_u8,
                                           d.w_zp.data(), w.data());
    const Fenced<int16_t> packed(w);
    uk.fn[c.x_u8 ? 0 : 1][c.out](c.channels, c.taps, d.in.data(), packed.data(),
                                 d.fbias.data(), d.fscale.data(), y, d.rq);
  };
  set_running(fmt("%s: %s", scalar.name, describe(c).c_str()));
  run(scalar, want.data());
  size_t at = first_diff(want.data(), ref.data(), bytes);
  fam.check(at == SIZE_MAX && want.guard_intact(),
            fmt("%s vs int64 reference: %s, byte %zu", scalar.name, describe(c).c_str(), at));
  for (const Variant<Q8DwConvUKernel>& v : variants<Q8DwConvUKernel>()) {
    if (!isa_runnable(v.isa)) continue;
    Guarded got(bytes);
    set_running(fmt("%s: %s", v.name, describe(c).c_str()));
    run(*v.table, got.data());
    at = first_diff(got.data(), want.data(), bytes);
    fam.check(at == SIZE_MAX && got.guard_intact(),
              fmt("%s: %s, byte %zu%s", v.name, describe(c).c_str(), at,
                  got.guard_intact() ? "" : ", wrote past the output"));
    // The byte-form per-pixel kernel: its packing says whether every w' fits int8 and holds
    // the starting sums and scales (the kernel gets no bias or scale pointer).
    const Q8DwConvUKernel& uk = *v.table;
    if (!uk.pack_b8 || c.out == 2) continue;
    std::vector<int8_t> pk(q8_dwconv_packed_size_b8(c.channels, c.taps));
    const bool packed = uk.pack_b8(c.channels, c.taps, d.w.data(), c.w_u8, d.w_zp.data(),
                                   d.bias.data(), d.scale.data(), !c.x_u8, pk.data());
    const bool fits = q8_dwconv_fits_i8(c.channels, c.taps, d.w.data(), c.w_u8, d.w_zp.data());
    fam.check(packed == fits, fmt("%s pack_b8 says %d, fits_i8 %d: %s", v.name, int(packed),
                                  int(fits), describe(c).c_str()));
    if (!packed) continue;
    const Fenced<int8_t> fpk(pk);
    Guarded got8(bytes);
    set_running(fmt("%s (byte form): %s", v.name, describe(c).c_str()));
    uk.fnb8[c.x_u8 ? 0 : 1][c.out](c.channels, c.taps, d.in.data(),
                                   reinterpret_cast<const int16_t*>(fpk.data()), nullptr,
                                   nullptr, got8.data(), d.rq);
    at = first_diff(got8.data(), want.data(), bytes);
    fam.check(at == SIZE_MAX && got8.guard_intact(),
              fmt("%s (byte form): %s, byte %zu%s", v.name, describe(c).c_str(), at,
                  got8.guard_intact() ? "" : ", wrote past the output"));
    ++byte_form_cases();
  }
}

}  // namespace

std::string check_q8_dwconv_rows(Family& fam, Rng& rng);  // q8_dwconv_row_test.cc

Family run_q8_dwconv(Rng& rng) {
  Family fam("q8-dwconv");
  for (const Variant<Q8DwConvUKernel>& v : variants<Q8DwConvUKernel>())
    fam.note_variant(v.name, isa_runnable(v.isa));
  if (scalar_variant<Q8DwConvUKernel>() == nullptr) {
    fam.fail("q8-dwconv.h declares no scalar variant");
    return fam;
  }
  auto random_case = [&](size_t channels, size_t taps, int values) {
    return Case{channels, taps, rng.coin(), rng.coin(), int(rng.below(3)), values};
  };
  const size_t channels[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33,
                             47, 48, 49, 63, 64, 65, 96, 100, 129, 257};
  for (size_t ch : channels)
    for (size_t taps : {1, 2, 3, 4, 9, 10, 25, 49}) check_case(fam, random_case(ch, taps, int(rng.below(4)) % 3 == 2 ? 3 : int(rng.below(2))), rng);
  for (int combo = 0; combo < 12; ++combo) {
    Case c = random_case(37, 9, 1);
    c.x_u8 = combo & 1, c.w_u8 = combo & 2, c.out = combo / 4;
    check_case(fam, c, rng);
  }
  // Long sums: many taps, and the exactness limit with every product at ±255·255.
  for (size_t taps : {size_t{4608}, kQ8GemmMaxK})
    for (int values : {0, 2})
      for (int o = 0; o < 3; ++o) {
        Case c = random_case(taps > 5000 ? 19 : 33, taps, values);
        c.out = o, c.x_u8 = values == 2 ? o != 1 : c.x_u8;
        check_case(fam, c, rng);
      }
  // The byte form (w' in int8): channel counts around its 64-channel block, tap counts around
  // its groups of 4, both input types, extremes and exact ties.
  for (size_t ch : {size_t{1}, size_t{16}, size_t{63}, size_t{64}, size_t{65}, size_t{100},
                    size_t{136}, size_t{240}, size_t{257}})
    for (size_t taps : {1, 2, 3, 4, 5, 8, 9, 25, 49})
      for (int values : {0, 1, 3}) {
        Case c = random_case(ch, taps, values);
        c.fit = true;
        if (c.out == 2) c.out = int(rng.below(2));
        check_case(fam, c, rng);
      }
  std::printf("q8-dwconv  byte-form per-pixel cases: %zu\n", byte_form_cases());
  const std::string rows = check_q8_dwconv_rows(fam, rng);
  std::printf("q8-dwconv  3x3 row kernels tested: %s\n", rows.c_str());
  return fam;
}

}  // namespace test
}  // namespace edgert
