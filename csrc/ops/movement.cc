// Data movement for any dtype: concat, transpose, pad, copy. Pure byte/element moves, so every
// output element has exactly one source and results cannot depend on the thread split.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/x8-transpose/x8-transpose.h"
#include "kernels/x8-zip/x8-zip.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace edgert {
namespace {

using Shape = std::vector<int64_t>;
constexpr size_t kGrainBytes = 1 << 16;  // below this, a chunk is not worth a thread hand-off

std::string str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

size_t grain_for(size_t bytes_per_item) {
  return std::max<size_t>(1, kGrainBytes / std::max<size_t>(bytes_per_item, 1));
}

void expect_same_dtype(const OpSpec& spec) {
  DType t = spec.outputs[0].dtype;
  for (const auto& d : spec.inputs) EDGERT_EXPECT(spec, d.dtype == t, "all tensors must share one dtype");
}

// concat: Y rows are the inputs' rows side by side; a "row" is everything from `axis` inward.
class ConcatOp : public Op {
 public:
  explicit ConcatOp(const OpSpec& spec) {
    EDGERT_EXPECT(spec, !spec.inputs.empty() && spec.outputs.size() == 1,
                "expects >= 1 inputs and 1 output");
    expect_same_dtype(spec);
    const Shape& ys = spec.outputs[0].shape;
    const int64_t rank = static_cast<int64_t>(ys.size()), axis = spec.attrs.i("axis");
    EDGERT_EXPECT(spec, axis >= 0 && axis < rank, "axis " + std::to_string(axis) + " not in [0, " +
                                              std::to_string(rank) + ")");
    const size_t es = dtype_size(spec.outputs[0].dtype);
    size_t inner = es;
    for (int64_t d = axis + 1; d < rank; ++d) inner *= ys[d];
    int64_t sum = 0;
    for (const auto& in : spec.inputs) {
      Shape want = ys;
      want[axis] = in.shape.size() == ys.size() ? in.shape[axis] : -1;
      EDGERT_EXPECT(spec, want[axis] >= 0 && in.shape == want,
                  "input shape " + str(in.shape) + " does not fit output " + str(ys) +
                      " on axis " + std::to_string(axis));
      sum += in.shape[axis];
      row_bytes_.push_back(in.shape[axis] * inner);
    }
    EDGERT_EXPECT(spec, sum == ys[axis], "inputs sum to " + std::to_string(sum) + " on axis, output has " +
                                     std::to_string(ys[axis]));
    outer_ = 1;
    for (int64_t d = 0; d < axis; ++d) outer_ *= ys[d];
    out_row_ = ys[axis] * inner;
    if (out_row_ == 0) outer_ = 0;
  }
  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    char* y = static_cast<char*>(out[0]);
    pool.parallel_for(outer_, grain_for(out_row_), [&](size_t b, size_t e) {
      for (size_t o = b; o < e; ++o) {
        char* dst = y + o * out_row_;
        for (size_t i = 0; i < row_bytes_.size(); ++i) {
          std::memcpy(dst, static_cast<const char*>(in[i]) + o * row_bytes_[i], row_bytes_[i]);
          dst += row_bytes_[i];
        }
      }
    });
  }

 private:
  std::vector<size_t> row_bytes_;
  size_t outer_, out_row_;
};

// copy: a reshape the planner could not alias; only the byte count must agree.
class CopyOp : public Op {
 public:
  explicit CopyOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    bytes_ = spec.inputs[0].bytes();
    EDGERT_EXPECT(spec, bytes_ == spec.outputs[0].bytes(),
                "input has " + std::to_string(bytes_) + " bytes, output " +
                    std::to_string(spec.outputs[0].bytes()));
  }
  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    const char* x = static_cast<const char*>(in[0]);
    char* y = static_cast<char*>(out[0]);
    pool.parallel_for(bytes_, kGrainBytes * 4, [&](size_t b, size_t e) {
      std::memcpy(y + b, x + b, e - b);
    });
  }

 private:
  size_t bytes_;
};

// Element copies by size class: dtypes only matter through their width here.
template <class F>
void by_width(size_t es, F&& f) {
  switch (es) {
    case 1: f(uint8_t{}); break;
    case 4: f(uint32_t{}); break;
    default: f(uint64_t{}); break;
  }
}


// transpose: Y[i0..] = X[perm-ordered]; dims of size 1 are dropped and runs of dims that stay
// adjacent are merged, so NHWC<->NCHW becomes a 3-d move with a contiguous inner copy when the
// last dim is kept.
class TransposeOp : public Op {
 public:
  explicit TransposeOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_same_dtype(spec);
    const Shape& xs = spec.inputs[0].shape;
    const Shape& ys = spec.outputs[0].shape;
    const size_t r = xs.size();
    Shape perm = spec.attrs.ints("perm");
    EDGERT_EXPECT(spec, r <= 6, "rank above 6");
    EDGERT_EXPECT(spec, perm.size() == r, "perm has " + std::to_string(perm.size()) +
                                      " entries for rank " + std::to_string(r));
    std::vector<char> seen(r, 0);
    for (int64_t p : perm) {
      EDGERT_EXPECT(spec, p >= 0 && p < static_cast<int64_t>(r) && !seen[p]++,
                  "perm " + str(perm) + " is not a permutation");
    }
    Shape want(r), xstride(r, 1);
    for (size_t i = 0; i < r; ++i) want[i] = xs[perm[i]];
    EDGERT_EXPECT(spec, ys == want, "output shape " + str(ys) + ", expected " + str(want));
    for (size_t d = r; d-- > 1;) xstride[d - 1] = xstride[d] * xs[d];
    es_ = dtype_size(spec.inputs[0].dtype);
    numel_ = spec.outputs[0].numel();
    for (size_t i = 0; i < r; ++i) {
      if (ys[i] == 1) continue;
      const int64_t st = xstride[perm[i]];
      if (!size_.empty() && stride_.back() == st * ys[i]) {
        size_.back() *= ys[i];
        stride_.back() = st;
      } else {
        size_.push_back(ys[i]);
        stride_.push_back(st);
      }
    }
    if (size_.empty()) { size_.push_back(1); stride_.push_back(1); }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (numel_ == 0) return;
    by_width(es_, [&](auto tag) {
      using T = decltype(tag);
      run_typed(static_cast<const T*>(in[0]), static_cast<T*>(out[0]), pool);
    });
  }

 private:
  // Output rows of `inner` elements gathered with stride istride, where the row before the last
  // dim is contiguous in X (stride 1): a batch of 2-d transposes (NCHW<->NHWC). Rows are then
  // moved in blocks of kBlock: each X run of kBlock contiguous elements feeds kBlock rows, so
  // loads stay sequential and stores stay within a few cache lines.
  static constexpr size_t kBlock = 16;
  template <class T, size_t J>
  static void transpose_block(const T* x, int64_t js, size_t nj, size_t ni, T* y) {
    const size_t jn = J ? J : nj;  // J > 0: the row length known at compile time
    for (size_t j = 0; j < jn; ++j) {
      const T* s = x + j * js;
      for (size_t i = 0; i < ni; ++i) y[i * jn + j] = s[i];
    }
  }
  template <class T>
  static void transpose_rows(const T* x, int64_t js, size_t nj, size_t ni, T* y) {
    switch (nj) {  // small channel counts: let the compiler unroll the row
      case 2: transpose_block<T, 2>(x, js, nj, ni, y); break;
      case 3: transpose_block<T, 3>(x, js, nj, ni, y); break;
      case 4: transpose_block<T, 4>(x, js, nj, ni, y); break;
      default: transpose_block<T, 0>(x, js, nj, ni, y); break;
    }
  }

  // X offset of the first element of 2-d slice `slice` (the dims before the last two).
  int64_t slice_offset(size_t slice) const {
    int64_t src = 0;
    for (size_t d = size_.size() - 2, rem = slice; d-- > 0;) {
      src += static_cast<int64_t>(rem % size_[d]) * stride_[d];
      rem /= size_[d];
    }
    return src;
  }

  // Bytes whose output rows are 2-4 planes interleaved (NCHW -> NHWC of an image's channels):
  // the x8-zip kernel over ranges of kZipPixels pixels.
  static constexpr size_t kZipPixels = 4096;
  bool run_zip(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    const size_t k = size_.size(), n = k >= 2 ? size_[k - 1] : 0;
    if (n < 2 || n > 4 || stride_[k - 2] != 1) return false;
    const X8ZipUKernel& uk = x8_zip_ukernel();
    const X8ZipFn zip = n == 2 ? uk.x2 : n == 3 ? uk.x3 : uk.x4;
    const size_t pixels = size_[k - 2], per = (pixels + kZipPixels - 1) / kZipPixels;
    const size_t plane = static_cast<size_t>(stride_[k - 1]);
    pool.parallel_for(numel_ / (n * pixels) * per, 1, [&](size_t b, size_t e) {
      for (size_t it = b; it < e; ++it) {
        const size_t slice = it / per, p0 = (it % per) * kZipPixels;
        zip(std::min(kZipPixels, pixels - p0), plane, x + slice_offset(slice) + p0,
            y + (slice * pixels + p0) * n);
      }
    });
    return true;
  }

  // Other 2-d transposes of bytes: the x8-transpose kernel over ranges of kTransposeRows output
  // rows (the last range takes the remainder, so ranges stay whole 16-row tiles or more).
  static constexpr size_t kTransposeRows = 64;
  void run_x8_transpose(const uint8_t* x, uint8_t* y, ThreadPool& pool) const {
    const size_t k = size_.size(), cols = size_[k - 1], rows = size_[k - 2];
    const size_t per = std::max<size_t>(1, rows / kTransposeRows);
    const size_t x_stride = static_cast<size_t>(stride_[k - 1]);
    const X8TransposeFn transpose = x8_transpose_ukernel().fn;
    pool.parallel_for(numel_ / (rows * cols) * per, 1, [&](size_t b, size_t e) {
      for (size_t it = b; it < e; ++it) {
        const size_t slice = it / per, part = it % per, i0 = part * kTransposeRows;
        const size_t n = part + 1 == per ? rows - i0 : kTransposeRows;
        transpose(n, cols, x_stride, cols, x + slice_offset(slice) + i0,
                  y + (slice * rows + i0) * cols);
      }
    });
  }

  template <class T>
  void run_typed(const T* x, T* y, ThreadPool& pool) const {
    const size_t k = size_.size(), inner = size_[k - 1];
    const int64_t istride = stride_[k - 1];
    if constexpr (sizeof(T) == 1) {
      if (run_zip(x, y, pool)) return;
    }
    if (k >= 2 && istride != 1 && stride_[k - 2] == 1 && size_[k - 2] >= int64_t(kBlock)) {
      if constexpr (sizeof(T) == 1) return run_x8_transpose(x, y, pool);
      // Blocks of kBlock output rows (within one 2-d slice) are the parallel items.
      const size_t ni = size_[k - 2], per = (ni + kBlock - 1) / kBlock;
      const size_t items = numel_ / (inner * ni) * per;
      pool.parallel_for(items, grain_for(inner * kBlock * sizeof(T)), [&](size_t b, size_t e) {
        for (size_t it = b; it < e; ++it) {
          size_t slice = it / per, i0 = (it % per) * kBlock;
          transpose_rows(x + slice_offset(slice) + i0, istride, inner, std::min(kBlock, ni - i0),
                         y + (slice * ni + i0) * inner);
        }
      });
      return;
    }
    const size_t rows = numel_ / inner;
    pool.parallel_for(rows, grain_for(inner * sizeof(T)), [&](size_t b, size_t e) {
      int64_t idx[6] = {0}, src = 0;
      for (size_t d = k - 1, rem = b; d-- > 0;) {  // the first row's multi-index
        idx[d] = rem % size_[d];
        rem /= size_[d];
        src += idx[d] * stride_[d];
      }
      for (size_t row = b; row < e; ++row) {
        T* dst = y + row * inner;
        const T* s = x + src;
        if (istride == 1) {
          std::memcpy(dst, s, inner * sizeof(T));
        } else {
          for (size_t j = 0; j < inner; ++j) dst[j] = s[j * istride];
        }
        for (size_t d = k - 1; d-- > 0;) {  // next row: odometer increment
          src += stride_[d];
          if (++idx[d] < size_[d]) break;
          src -= stride_[d] * size_[d];
          idx[d] = 0;
        }
      }
    });
  }
  size_t es_, numel_;
  Shape size_, stride_;  // merged output dims and their strides in X (elements)
};

// pad: each output element reads X at the mapped index of every dim, or is `value` (constant).
class PadOp : public Op {
 public:
  explicit PadOp(const OpSpec& spec) {
    spec.expect_arity(1, 1);
    expect_same_dtype(spec);
    xs_ = spec.inputs[0].shape;
    const Shape& ys = spec.outputs[0].shape;
    const size_t r = xs_.size();
    Shape pads = spec.attrs.ints("pads");
    EDGERT_EXPECT(spec, pads.size() == 2 * r, "pads must have 2*rank = " + std::to_string(2 * r) +
                                          " entries, got " + std::to_string(pads.size()));
    std::string mode = spec.attrs.s("mode", "constant");
    if (mode == "constant") mode_ = kConstant;
    else if (mode == "reflect") mode_ = kReflect;
    else if (mode == "edge") mode_ = kEdge;
    else spec.fail("unknown mode '" + mode + "'");
    Shape want(r);
    for (size_t d = 0; d < r; ++d) {
      const int64_t b = pads[d], e = pads[r + d];
      EDGERT_EXPECT(spec, b >= 0 && e >= 0, "pads must be non-negative, got " + str(pads));
      if (mode_ == kReflect && (b || e)) {
        EDGERT_EXPECT(spec, b < xs_[d] && e < xs_[d], "reflect pads must be < the dim (" +
                                                  std::to_string(xs_[d]) + ")");
      }
      if (mode_ == kEdge && (b || e)) EDGERT_EXPECT(spec, xs_[d] > 0, "edge pad of an empty dim");
      EDGERT_EXPECT(spec, b <= kMaxNumel && e <= kMaxNumel, "pads too large");
      want[d] = xs_[d] + b + e;
      begin_.push_back(b);
    }
    EDGERT_EXPECT(spec, ys == want, "output shape " + str(ys) + ", expected " + str(want));
    ys_ = ys;
    es_ = dtype_size(spec.inputs[0].dtype);
    numel_ = spec.outputs[0].numel();
    parse_value(spec);
    if (r == 0) { xs_ = ys_ = {1}; begin_ = {0}; }
  }

  void run(const void* const* in, void* const* out, ThreadPool& pool) const override {
    if (numel_ == 0) return;
    by_width(es_, [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, value_, sizeof(T));
      run_typed(static_cast<const T*>(in[0]), static_cast<T*>(out[0]), v, pool);
    });
  }

 private:
  enum Mode { kConstant, kReflect, kEdge };

  void parse_value(const OpSpec& spec) {
    const double v = spec.attrs.f("value", 0.0);
    std::memset(value_, 0, sizeof(value_));
    const DType t = spec.inputs[0].dtype;
    if (t == DType::f32) {
      float f = static_cast<float>(v);
      std::memcpy(value_, &f, 4);
      return;
    }
    const double lo = t == DType::u8 ? 0 : t == DType::i8 ? -128 : t == DType::i32 ? -2147483648.0
                                                                                  : -9.2233720368547758e18;
    const double hi = t == DType::u8 ? 255 : t == DType::i8 ? 127 : t == DType::i32 ? 2147483647.0
                                                                                   : 9.2233720368547748e18;
    EDGERT_EXPECT(spec, std::isfinite(v) && v == std::floor(v) && v >= lo && v <= hi,
                "value " + std::to_string(v) + " is not representable in " + dtype_name(t));
    const int64_t i = static_cast<int64_t>(v);
    if (t == DType::u8) value_[0] = static_cast<uint8_t>(i);
    else if (t == DType::i8) { int8_t b = static_cast<int8_t>(i); std::memcpy(value_, &b, 1); }
    else if (t == DType::i32) { int32_t b = static_cast<int32_t>(i); std::memcpy(value_, &b, 4); }
    else std::memcpy(value_, &i, 8);
  }

  // Source index of output index o along a dim with `begin` padding and n input elements;
  // -1 means "the constant value".
  int64_t map(int64_t o, int64_t begin, int64_t n) const {
    int64_t i = o - begin;
    if (i >= 0 && i < n) return i;
    if (mode_ == kConstant) return -1;
    if (mode_ == kEdge) return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i;
  }

  template <class T>
  void run_typed(const T* x, T* y, T value, ThreadPool& pool) const {
    const size_t r = xs_.size();
    const int64_t inner = ys_[r - 1], xin = xs_[r - 1], b = begin_[r - 1];
    const size_t rows = numel_ / inner;
    pool.parallel_for(rows, grain_for(inner * sizeof(T)), [&](size_t rb, size_t re) {
      std::vector<int64_t> idx(r, 0);
      for (size_t d = r - 1, rem = rb; d-- > 0;) {
        idx[d] = rem % ys_[d];
        rem /= ys_[d];
      }
      for (size_t row = rb; row < re; ++row) {
        T* dst = y + row * inner;
        int64_t src = 0;
        bool fill = xin == 0 && mode_ == kConstant;
        for (size_t d = 0; d + 1 < r && !fill; ++d) {
          const int64_t s = map(idx[d], begin_[d], xs_[d]);
          fill = s < 0;
          src = src * xs_[d] + s;
        }
        if (fill) {
          std::fill(dst, dst + inner, value);
        } else {
          const T* s = x + src * xin;
          for (int64_t j = 0; j < b; ++j) dst[j] = mode_ == kConstant ? value : s[map(j, b, xin)];
          if (xin > 0) std::memcpy(dst + b, s, xin * sizeof(T));
          for (int64_t j = b + xin; j < inner; ++j) {
            dst[j] = mode_ == kConstant ? value : s[map(j, b, xin)];
          }
        }
        for (size_t d = r - 1; d-- > 0;) {
          if (++idx[d] < ys_[d]) break;
          idx[d] = 0;
        }
      }
    });
  }

  Mode mode_;
  Shape xs_, ys_, begin_;
  size_t es_, numel_;
  unsigned char value_[8];
};

}  // namespace


EDGERT_REGISTER_OP("concat", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<ConcatOp>(s);
});
EDGERT_REGISTER_OP("copy", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<CopyOp>(s);
});
EDGERT_REGISTER_OP("transpose", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<TransposeOp>(s);
});
EDGERT_REGISTER_OP("pad", [](const OpSpec& s) -> std::unique_ptr<Op> {
  return std::make_unique<PadOp>(s);
});

}  // namespace edgert
