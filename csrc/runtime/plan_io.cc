#include "runtime/plan_io.h"

#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgert {
namespace {

constexpr size_t kMaxRank = 16;

// No byte with its top bit set. Names are short and nearly always ASCII: whole words, the last
// one overlapping the one before.
bool ascii(const uint8_t* s, size_t n) {
  auto load = [](const uint8_t* p, size_t bytes) {
    uint64_t w = 0;
    std::memcpy(&w, p, bytes);
    return w;
  };
  uint64_t any = 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8) any |= load(s + i, 8);
    any |= load(s + n - 8, 8);
  } else if (n >= 4) {
    any = load(s, 4) | load(s + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) any |= s[i];
  }
  return (any & 0x8080808080808080u) == 0;
}

// Well-formed UTF-8: no stray continuation bytes, overlong forms, surrogates or code points
// above U+10FFFF.
bool utf8(const uint8_t* s, size_t n) {
  if (ascii(s, n)) return true;
  for (size_t i = 0; i < n;) {
    const uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}

  [[noreturn]] void fail(const std::string& msg) const {
    throw ModelError("corrupt plan at byte " + std::to_string(pos_) + ": " + msg);
  }
  size_t left() const { return n_ - pos_; }
  bool done() const { return pos_ == n_; }

  template <class T> T get() {
    if (left() < sizeof(T)) fail("truncated");
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // The next `bytes` bytes, in place.
  const uint8_t* take(size_t bytes) {
    if (left() < bytes) fail("truncated");
    const uint8_t* r = p_ + pos_;
    pos_ += bytes;
    return r;
  }
  // A count of items of at least `item_bytes` each: never more than the bytes left could hold,
  // so a flipped count cannot ask for a huge allocation.
  size_t count(size_t item_bytes, const char* what) {
    const uint32_t n = get<uint32_t>();
    if (item_bytes && n > left() / item_bytes) {
      fail(std::string(what) + " count " + std::to_string(n) + " exceeds the plan's size");
    }
    return n;
  }
  // Names end up in error messages that Python decodes: they must be valid UTF-8. A view of
  // the plan's bytes.
  std::string_view str(const char* what) {
    const size_t n = count(1, what);
    if (!utf8(p_ + pos_, n)) fail(std::string(what) + " is not valid UTF-8");
    return {reinterpret_cast<const char*>(take(n)), n};
  }
  std::vector<int64_t> i64s(size_t n) {
    std::vector<int64_t> v(n);
    if (n) std::memcpy(v.data(), take(8 * n), 8 * n);
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
};

DType dtype(Cursor& c) {
  const uint8_t d = c.get<uint8_t>();
  if (d > uint8_t(DType::f32)) c.fail("unknown dtype code " + std::to_string(d));
  return static_cast<DType>(d);
}

std::vector<int64_t> shape(Cursor& c) {
  const uint8_t rank = c.get<uint8_t>();
  if (rank > kMaxRank) c.fail("rank " + std::to_string(rank) + " above 16");
  return c.i64s(rank);
}

// The blob table, as arrays in the file's blob area.
void read_blobs(Cursor& c, const uint8_t* base, size_t len, std::vector<Array>& arrays) {
  const size_t n = c.count(2 + 16, "blob");
  arrays.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Array& a = arrays[i];
    a.dtype = dtype(c);
    a.shape = shape(c);
    const uint64_t off = c.get<uint64_t>(), nbytes = c.get<uint64_t>();
    int64_t numel;
    try {
      numel = a.numel();
    } catch (const ModelError& e) {
      c.fail("blob " + std::to_string(i) + ": " + e.what());
    }
    const size_t es = dtype_size(a.dtype);
    if (nbytes != uint64_t(numel) * es || off > len || nbytes > len - off) {
      c.fail("blob " + std::to_string(i) + " lies outside the file's weights");
    }
    if (off % es) c.fail("blob " + std::to_string(i) + " is misaligned");
    a.data = base + off;
  }
}

const Array& array_ref(Cursor& c, const std::vector<Array>& arrays) {
  const uint32_t i = c.get<uint32_t>();
  if (i >= arrays.size()) c.fail("blob index " + std::to_string(i) + " out of range");
  return arrays[i];
}

std::vector<int64_t> ids(Cursor& c, const char* what) {
  const size_t n = c.count(4, what);
  std::vector<int64_t> v(n);
  const uint8_t* p = c.take(4 * n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t id;
    std::memcpy(&id, p + 4 * i, 4);
    v[i] = id;
  }
  return v;
}

// An attribute's value, left in the plan's bytes (lists, strings) or its array table.
Attrs::Entry attr(Cursor& c, std::string_view key, const std::vector<Array>& arrays) {
  Attrs::Entry e{};
  e.name = key;
  const uint8_t kind = c.get<uint8_t>();
  switch (kind) {
    case Attrs::Value::Int: e.kind = Attrs::Value::Int; e.i = c.get<int64_t>(); break;
    case Attrs::Value::Float: e.kind = Attrs::Value::Float; e.f = c.get<double>(); break;
    case Attrs::Value::Ints:
    case Attrs::Value::Floats:
      e.kind = static_cast<Attrs::Value::Kind>(kind);
      e.n = static_cast<uint32_t>(c.count(8, kind == Attrs::Value::Ints ? "ints" : "floats"));
      e.p = c.take(8 * size_t(e.n));
      break;
    case Attrs::Value::Str: {
      const std::string_view s = c.str("string");
      e.kind = Attrs::Value::Str;
      e.n = static_cast<uint32_t>(s.size());
      e.p = reinterpret_cast<const uint8_t*>(s.data());
      break;
    }
    case Attrs::Value::Arr: e.kind = Attrs::Value::Arr; e.arr = &array_ref(c, arrays); break;
    default: c.fail("unknown attribute kind " + std::to_string(kind));
  }
  return e;
}

}  // namespace

Plan read_binary_plan(const uint8_t* data, size_t len, const uint8_t* blob_base,
                      size_t blob_len) {
  Cursor c(data, len);
  Plan plan;
  const uint64_t arena = c.get<uint64_t>();
  if (arena > uint64_t(kMaxTensorBytes)) c.fail("arena size out of range");
  plan.arena_bytes = static_cast<int64_t>(arena);
  read_blobs(c, blob_base, blob_len, plan.arrays);

  const size_t nt = c.count(3, "tensor");
  plan.tensors.resize(nt);
  for (auto& t : plan.tensors) {
    const uint8_t kind = c.get<uint8_t>();
    if (kind > PlanTensor::Const) c.fail("unknown tensor kind " + std::to_string(kind));
    t.kind = static_cast<PlanTensor::Kind>(kind);
    t.desc.dtype = dtype(c);
    t.desc.shape = shape(c);
    if (t.kind == PlanTensor::Arena) {
      t.offset = c.get<int64_t>();
    } else if (t.kind == PlanTensor::Const) {
      const Array& a = array_ref(c, plan.arrays);
      t.data = a.data;
      t.data_dtype = a.dtype;
      t.data_numel = a.numel();  // checked by read_blobs
    }
  }

  const size_t no = c.count(4 * 6, "op");
  plan.ops.resize(no);
  for (auto& op : plan.ops) {
    op.type = c.str("op type");
    op.name = c.str("op name");
    op.inputs = ids(c, "op input");
    op.outputs = ids(c, "op output");
    const size_t na = c.count(4 + 1, "attribute");
    op.attrs.reserve(na);
    for (size_t i = 0; i < na; ++i) {
      const std::string_view key = c.str("attribute name");
      if (!op.attrs.add(attr(c, key, plan.arrays))) {
        c.fail(op.type + " '" + op.name + "': attribute '" + std::string(key) + "' given twice");
      }
    }
  }
  plan.input_ids = ids(c, "plan input");
  plan.output_ids = ids(c, "plan output");
  if (!c.done()) c.fail(std::to_string(c.left()) + " bytes after the plan");
  return plan;
}

}  // namespace edgert
