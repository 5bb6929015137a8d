// q8-dwconv row kernels (row3x3, both strides, u8/i8 in, u8/i8/f32 out; row3x3b8 and
// row5x5b8 on symmetric weights, u8/i8 out) and their packings:
// every variant that has them against the scalar per-pixel kernel run over the same taps, on
// channel counts 16..160+, 1..odd pixels, output strides with gaps, pad rows shared by several
// tap rows, w' at ±127/−128 and ±255 (u8 weights with a zero point), maximal sums, zero points
// and clamps at their extremes. A variant without row kernels is skipped (none to run).
#include <algorithm>

#include "kernels/q8-dwconv/q8-dwconv.h"
#include "tests/harness.h"

namespace edgert {
namespace test {

void dw_random_quant(size_t channels, size_t taps, int out, int values, Rng& rng,
                     std::vector<int32_t>& bias, std::vector<float>& scale, Q8Requant& rq);

namespace {

struct RowCase {
  size_t stride, channels, npix, y_gap;  // y_stride = channels + y_gap (elements)
  bool x_u8, w_u8;
  int out;     // 0 u8, 1 i8, 2 f32
  int values;  // 0 random, 1 extremes, 2 maximal sums, 3 exact ties
  bool sym = false;  // w_zp 0 (i8) or 128 (u8): every w' in int8, so the byte form runs too
};

std::string describe(const RowCase& c) {
  static const char* const out[] = {"u8", "i8", "f32"};
  return fmt("3x3 row s%zu channels=%zu npix=%zu y_gap=%zu x=%s w=%s out=%s values=%d%s", c.stride,
             c.channels, c.npix, c.y_gap, c.x_u8 ? "u8" : "i8", c.w_u8 ? "u8" : "i8", out[c.out],
             c.values, c.sym ? " sym" : "");
}

struct RowData {
  std::vector<Fenced<uint8_t>> rows;  // each exactly the pixels the row's taps read
  const uint8_t* row_ptr[3];
  std::vector<uint8_t> w;  // raw [channels][9]
  std::vector<int32_t> w_zp, bias;
  std::vector<float> scale;
  Q8Requant rq{};
  Fenced<int32_t> fbias;
  Fenced<float> fscale;
};

// k input rows of exactly the pixels a row of c.npix outputs of a k x k kernel reads; one in
// six a row above or below the image (x_zp throughout).
std::vector<Fenced<uint8_t>> random_rows(const RowCase& c, size_t k, Rng& rng) {
  const int32_t xlo = c.x_u8 ? 0 : -128, xhi = c.x_u8 ? 255 : 127;
  const size_t width = ((c.npix - 1) * c.stride + k) * c.channels;
  const int32_t x_zp = rng.range(xlo, xhi);
  std::vector<Fenced<uint8_t>> rows;
  for (size_t r = 0; r < k; ++r) {
    std::vector<uint8_t> row(width);
    const bool pad = rng.below(6) == 0;
    for (uint8_t& b : row) {
      int32_t x = pad ? x_zp : rng.range(xlo, xhi);
      if (c.values == 1 && rng.below(3)) x = rng.coin() ? xlo : xhi;
      if (c.values == 2) x = c.x_u8 ? 255 : -128;
      if (c.values == 3) x = rng.range(c.x_u8 ? 0 : -2, c.x_u8 ? 4 : 2);
      b = static_cast<uint8_t>(x);
    }
    rows.emplace_back(row);
  }
  return rows;
}

RowData make_row_data(const RowCase& c, Rng& rng) {
  RowData d;
  const int32_t wlo = c.w_u8 ? 0 : -128, whi = c.w_u8 ? 255 : 127;
  d.rows = random_rows(c, 3, rng);
  for (size_t r = 0; r < 3; ++r) d.row_ptr[r] = d.rows[r].data();
  if (rng.below(5) == 0) d.row_ptr[1] = d.row_ptr[0];  // the engine's pad row serves two taps
  d.w.resize(c.channels * 9);
  d.w_zp.resize(c.channels);
  for (size_t ch = 0; ch < c.channels; ++ch) {
    const bool up = rng.coin();
    // Extremes: i8 weights with zp 0 give w' = 127 and −128; u8 with zp 0/255 give ±255.
    d.w_zp[ch] = c.values == 0 ? rng.range(wlo, whi) : c.w_u8 ? (up ? wlo : whi) : 0;
    if (c.sym) d.w_zp[ch] = c.w_u8 ? 128 : 0;
    for (size_t t = 0; t < 9; ++t) {
      int32_t v = rng.range(wlo, whi);
      if (c.values == 1 && rng.below(3)) v = rng.coin() ? whi : wlo;
      if (c.values == 2) v = c.w_u8 ? (up ? whi : wlo) : (c.x_u8 ? whi : wlo);
      if (c.values == 3) v = std::min(whi, std::max(wlo, d.w_zp[ch] + rng.range(-2, 2)));
      d.w[ch * 9 + t] = static_cast<uint8_t>(v);
    }
  }
  dw_random_quant(c.channels, 9, c.out, c.values, rng, d.bias, d.scale, d.rq);
  d.fbias = Fenced<int32_t>(d.bias);
  d.fscale = Fenced<float>(d.scale);
  return d;
}

// The scalar per-pixel kernel over each output's 9 tap pointers, as the engine's border path.
void reference_row(const RowCase& c, const RowData& d, uint8_t* y) {
  const Q8DwConvUKernel& scalar = *scalar_variant<Q8DwConvUKernel>();
  std::vector<int16_t> packed(c.channels * 9);
  q8_dwconv_pack_w(c.channels, 9, d.w.data(), c.w_u8, d.w_zp.data(), packed.data());
  const size_t es = c.out == 2 ? 4 : 1;
  for (size_t p = 0; p < c.npix; ++p) {
    const void* taps[9];
    for (size_t t = 0; t < 9; ++t)
      taps[t] = d.row_ptr[t / 3] + (p * c.stride + t % 3) * c.channels;
    scalar.fn[c.x_u8 ? 0 : 1][c.out](c.channels, 9, taps, packed.data(), d.bias.data(),
                                     d.scale.data(), y + p * (c.channels + c.y_gap) * es, d.rq);
  }
}

void check_row_case(Family& fam, const RowCase& c, Rng& rng) {
  const RowData d = make_row_data(c, rng);
  const size_t es = c.out == 2 ? 4 : 1, ys = c.channels + c.y_gap;
  const size_t bytes = ((c.npix - 1) * ys + c.channels) * es;
  Guarded want(bytes);
  reference_row(c, d, want.data());
  const size_t psize = q8_dwconv_packed_size_3x3(c.channels);
  const bool fits = q8_dwconv_fits_i8(c.channels, 9, d.w.data(), c.w_u8, d.w_zp.data());
  fam.check(!c.sym || fits, fmt("symmetric weights that do not fit int8: %s", describe(c).c_str()));
  for (const Variant<Q8DwConvUKernel>& v : variants<Q8DwConvUKernel>())
    for (int form = 0; form < 2; ++form) {
    const Q8DwConvUKernel& uk = *v.table;
    const Q8DwConvRowFn fn = form == 0 ? uk.row3x3[c.stride - 1][c.x_u8 ? 0 : 1][c.out]
                             : c.out == 2 ? nullptr
                                          : uk.row3x3b8[c.stride - 1][c.x_u8 ? 0 : 1][c.out];
    if (!isa_runnable(v.isa) || !uk.pack3x3 || !fn) continue;
    if (form == 1 && (!uk.pack3x3b8 || !fits)) continue;
    const char* pname = form == 0 ? "pack3x3" : "pack3x3b8";
    // The packing writes all of its size and nothing past it: two differently filled buffers.
    Guarded pa(psize * 2), pb(psize * 2);
    std::memset(pb.data(), 0x3C, psize * 2);
    set_running(fmt("%s %s: %s", v.name, pname, describe(c).c_str()));
    auto pack = [&](uint8_t* out) {
      int16_t* o = reinterpret_cast<int16_t*>(out);
      if (form == 0) return uk.pack3x3(c.channels, 9, d.w.data(), c.w_u8, d.w_zp.data(), o), true;
      return uk.pack3x3b8(c.channels, 9, d.w.data(), c.w_u8, d.w_zp.data(), o);
    };
    fam.check(pack(pa.data()) && pack(pb.data()),
              fmt("%s %s refuses weights that fit: %s", v.name, pname, describe(c).c_str()));
    fam.check(pa.guard_intact() && first_diff(pa.data(), pb.data(), psize * 2) == SIZE_MAX,
              fmt("%s %s leaves bytes unwritten or writes past its size: %s", v.name, pname,
                  describe(c).c_str()));
    std::vector<int16_t> w(psize);
    std::memcpy(w.data(), pa.data(), psize * 2);
    const Fenced<int16_t> packed(w);
    Guarded got(bytes);
    const char* kname = form == 0 ? "" : " row3x3b8";
    set_running(fmt("%s%s: %s", v.name, kname, describe(c).c_str()));
    fn(c.channels, c.npix, d.row_ptr, packed.data(), d.fbias.data(), d.fscale.data(), got.data(),
       ys, d.rq);
    const size_t at = first_diff(got.data(), want.data(), bytes);
    fam.check(at == SIZE_MAX && got.guard_intact(),
              fmt("%s%s: %s, byte %zu%s", v.name, kname, describe(c).c_str(), at,
                  got.guard_intact() ? "" : ", wrote past the output"));
    }
}

// 5x5 byte-form rows (row5x5b8 on symmetric weights, u8/i8 out) against the scalar per-pixel
// kernel over each output's 25 tap pointers; the packing against fits_i8, and it writes all of
// its size and nothing past it.
size_t check_row5_case(Family& fam, const RowCase& c, Rng& rng) {
  const int32_t wlo = c.w_u8 ? 0 : -128, whi = c.w_u8 ? 255 : 127;
  const std::vector<Fenced<uint8_t>> rows = random_rows(c, 5, rng);
  const uint8_t* row_ptr[5];
  for (size_t r = 0; r < 5; ++r) row_ptr[r] = rows[r].data();
  if (rng.below(5) == 0) row_ptr[4] = row_ptr[3];  // a pad row serving two taps
  std::vector<uint8_t> w(c.channels * 25);
  std::vector<int32_t> w_zp(c.channels, c.w_u8 ? 128 : 0), bias;
  std::vector<float> scale;
  for (size_t i = 0; i < w.size(); ++i) {
    int32_t v = rng.range(wlo, whi);
    if (c.values >= 1 && rng.below(3)) v = rng.coin() ? whi : wlo;
    w[i] = static_cast<uint8_t>(v);
  }
  Q8Requant rq{};
  dw_random_quant(c.channels, 25, c.out, c.values, rng, bias, scale, rq);
  const size_t ys = c.channels + c.y_gap, bytes = (c.npix - 1) * ys + c.channels;
  Guarded want(bytes);
  {
    const Q8DwConvUKernel& scalar = *scalar_variant<Q8DwConvUKernel>();
    std::vector<int16_t> packed(c.channels * 25);
    q8_dwconv_pack_w(c.channels, 25, w.data(), c.w_u8, w_zp.data(), packed.data());
    for (size_t p = 0; p < c.npix; ++p) {
      const void* taps[25];
      for (size_t t = 0; t < 25; ++t)
        taps[t] = row_ptr[t / 5] + (p * c.stride + t % 5) * c.channels;
      scalar.fn[c.x_u8 ? 0 : 1][c.out](c.channels, 25, taps, packed.data(), bias.data(),
                                       scale.data(), want.data() + p * ys, rq);
    }
  }
  size_t ran = 0;
  const std::string what = fmt("5x5 row s%zu channels=%zu npix=%zu y_gap=%zu x=%s w=%s out=%s values=%d",
                               c.stride, c.channels, c.npix, c.y_gap, c.x_u8 ? "u8" : "i8",
                               c.w_u8 ? "u8" : "i8", c.out == 0 ? "u8" : "i8", c.values);
  for (const Variant<Q8DwConvUKernel>& v : variants<Q8DwConvUKernel>()) {
    const Q8DwConvUKernel& uk = *v.table;
    if (!isa_runnable(v.isa) || !uk.pack5x5b8) continue;
    const Q8DwConvRowFn fn = uk.row5x5b8[c.stride - 1][c.x_u8 ? 0 : 1][c.out];
    const size_t psize = q8_dwconv_packed_size_5x5b8(c.channels);
    Guarded pa(psize), pb(psize);
    std::memset(pb.data(), 0x3C, psize);
    auto pack = [&](uint8_t* o) {
      return uk.pack5x5b8(c.channels, 25, w.data(), c.w_u8, w_zp.data(), bias.data(),
                          scale.data(), !c.x_u8, reinterpret_cast<int8_t*>(o));
    };
    fam.check(pack(pa.data()) && pack(pb.data()),
              fmt("%s pack5x5b8 refuses weights that fit: %s", v.name, what.c_str()));
    fam.check(pa.guard_intact() && first_diff(pa.data(), pb.data(), psize) == SIZE_MAX,
              fmt("%s pack5x5b8 leaves bytes unwritten or writes past its size: %s", v.name,
                  what.c_str()));
    const Fenced<uint8_t> packed(std::vector<uint8_t>(pa.data(), pa.data() + psize));
    Guarded got(bytes);
    set_running(fmt("%s row5x5b8: %s", v.name, what.c_str()));
    fn(c.channels, c.npix, row_ptr, reinterpret_cast<const int16_t*>(packed.data()), nullptr,
       nullptr, got.data(), ys, rq);
    const size_t at = first_diff(got.data(), want.data(), bytes);
    fam.check(at == SIZE_MAX && got.guard_intact(),
              fmt("%s row5x5b8: %s, byte %zu%s", v.name, what.c_str(), at,
                  got.guard_intact() ? "" : ", wrote past the output"));
    ++ran;
  }
  return ran;
}

}  // namespace

// Adds the row-kernel checks to the q8-dwconv family; returns the names of the variants that
// have row kernels (for the report line).
std::string check_q8_dwconv_rows(Family& fam, Rng& rng) {
  std::string names;
  for (const Variant<Q8DwConvUKernel>& v : variants<Q8DwConvUKernel>())
    if (v.table->pack3x3 && isa_runnable(v.isa)) names += std::string(names.empty() ? "" : ", ") + v.name;
  auto random_case = [&](size_t s, size_t ch, size_t npix, int values) {
    return RowCase{s, ch, npix, rng.below(3) ? 0 : 1 + rng.below(40), rng.coin(), rng.coin(),
                   int(rng.below(3)), values};
  };
  for (size_t s : {1, 2})
    for (size_t ch : {16, 32, 48, 64, 96, 144, 160, 192})
      for (size_t npix : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 17, 28, 56})
        check_row_case(fam, random_case(s, ch, npix, int(rng.below(4))), rng);
  // Symmetric weights (the byte form where a variant has it): channel counts around the 64
  // block with int16 tails of 16, 32 and 48, every value kind.
  for (size_t s : {1, 2})
    for (size_t ch : {16, 32, 64, 80, 96, 112, 128, 144, 192, 208})
      for (size_t npix : {1, 2, 3, 5, 8, 13, 28}) {
        RowCase c = random_case(s, ch, npix, int(rng.below(4)));
        c.sym = true;
        c.out = int(rng.below(2));  // the byte form has byte outputs only
        check_row_case(fam, c, rng);
      }
  // Every (input, weight, output) type at both strides, with extreme and maximal values.
  for (int combo = 0; combo < 48; ++combo) {
    RowCase c = random_case(1 + combo % 2, combo % 3 == 0 ? 144 : 48, 1 + rng.below(19), 1 + combo / 24);
    c.x_u8 = combo & 2, c.w_u8 = combo & 4, c.out = combo / 8 % 3;
    check_row_case(fam, c, rng);
  }
  // 5x5 byte-form rows: channel counts around the 64-channel block, outputs around the
  // kernel's chunk of 8, both strides, every value kind but maximal sums (w' in int8).
  size_t row5 = 0;
  for (size_t s : {1, 2})
    for (size_t ch : {16, 48, 64, 80, 100, 128, 240, 256})
      for (size_t npix : {1, 2, 3, 7, 8, 9, 14, 17})
        for (int values : {0, 1, 3}) {
          RowCase c = random_case(s, ch, npix, values);
          c.out = int(rng.below(2));
          row5 += check_row5_case(fam, c, rng);
        }
  std::printf("q8-dwconv  5x5 byte-form row cases: %zu\n", row5);
  return names.empty() ? "none" : names;
}

}  // namespace test
}  // namespace edgert
