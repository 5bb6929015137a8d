// Shared helpers of the op interface: dtypes, element counts, attribute getters, spec checks.
#include "runtime/op.h"

#include <cstring>

namespace edgert {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::u8: case DType::i8: return 1;
    case DType::i32: case DType::f32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::u8: return "u8";
    case DType::i8: return "i8";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::f32: return "f32";
  }
  return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  static const struct { const char* n; DType t; } kNames[] = {
      {"u8", DType::u8}, {"i8", DType::i8}, {"i32", DType::i32}, {"i64", DType::i64},
      {"f32", DType::f32}};
  for (const auto& e : kNames) {
    if (name == e.n) { *out = e.t; return true; }
  }
  return false;
}

static std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Checked product: a dimension of 0 makes the count 0 even when later dims are huge.
static int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw ModelError("negative dimension in shape " + shape_str(shape));
  }
  for (int64_t d : shape) {
    if (d == 0) return 0;
    if (n > kMaxNumel / d) throw ModelError("too many elements in shape " + shape_str(shape));
    n *= d;
  }
  return n;
}

int64_t TensorDesc::numel() const { return checked_numel(shape); }
int64_t Array::numel() const { return checked_numel(shape); }

static const char* kind_name(Attrs::Value::Kind k) {
  switch (k) {
    case Attrs::Value::Int: return "int";
    case Attrs::Value::Float: return "float";
    case Attrs::Value::Ints: return "list of ints";
    case Attrs::Value::Floats: return "list of floats";
    case Attrs::Value::Str: return "string";
    case Attrs::Value::Arr: return "array";
  }
  return "?";
}

int64_t Attrs::Entry::int_at(size_t j) const {
  int64_t v;
  std::memcpy(&v, p + 8 * j, 8);
  return v;
}

double Attrs::Entry::float_at(size_t j) const {
  double v;
  std::memcpy(&v, p + 8 * j, 8);
  return v;
}

void Attrs::set(std::string_view k, const Value& v) {
  if (!store_) store_ = std::make_unique<Store>();
  Store& st = *store_;
  auto keep = [&](const void* data, size_t bytes) {
    return reinterpret_cast<const uint8_t*>(
        st.bytes.emplace_back(static_cast<const char*>(data), bytes).data());
  };
  auto count = [&](size_t n) {
    if (n > UINT32_MAX) throw ModelError("attribute '" + std::string(k) + "' has too many values");
    return static_cast<uint32_t>(n);
  };
  Entry e{};
  e.name = st.bytes.emplace_back(k);
  e.kind = v.kind;
  switch (v.kind) {
    case Value::Int: e.i = v.i; break;
    case Value::Float: e.f = v.f; break;
    case Value::Ints: e.n = count(v.ints.size()), e.p = keep(v.ints.data(), 8 * e.n); break;
    case Value::Floats: e.n = count(v.floats.size()), e.p = keep(v.floats.data(), 8 * e.n); break;
    case Value::Str: e.n = count(v.s.size()), e.p = keep(v.s.data(), e.n); break;
    case Value::Arr: e.arr = &st.arrays.emplace_back(v.arr); break;
  }
  if (const Entry* old = find(k)) {
    e.tag = old->tag;
    entries_[size_t(old - entries_.data())] = e;
  } else {
    add(e);
  }
}

bool Attrs::add(Entry e) {
  e.tag = tag_of(e.name);
  if (entries_.size() >= kIndexed) {  // searched in order from here on
    if (find(e.name)) return false;
    entries_.push_back(e);
    return true;
  }
  size_t h = slot_of(e.tag);
  for (; slots_[h]; h = (h + 1) % kSlots) {
    const Entry& x = entries_[slots_[h] - 1];
    if (x.tag == e.tag && x.name == e.name) return false;
  }
  entries_.push_back(e);
  slots_[h] = static_cast<uint8_t>(entries_.size());
  return true;
}

const Attrs::Entry* Attrs::find(std::string_view k) const {
  const uint32_t t = tag_of(k);
  if (entries_.size() > kIndexed) {
    for (const Entry& e : entries_) {
      if (e.tag == t && e.name == k) return &e;
    }
    return nullptr;
  }
  for (size_t h = slot_of(t); slots_[h]; h = (h + 1) % kSlots) {
    const Entry& e = entries_[slots_[h] - 1];
    if (e.tag == t && e.name == k) return &e;
  }
  return nullptr;
}

namespace {
[[noreturn]] void attr_fail(const Attrs& a, std::string_view k, const std::string& msg) {
  std::string where;
  if (!a.op_type.empty()) where.append(a.op_type).append(" '").append(a.op_node).append("': ");
  throw ModelError(where.append("attribute '").append(k).append("' ") + msg);
}

// The entry for k when present (nullptr otherwise) and of kind `want` or `also`.
const Attrs::Entry* find_as(const Attrs& a, std::string_view k, Attrs::Value::Kind want,
                            Attrs::Value::Kind also) {
  const Attrs::Entry* e = a.find(k);
  if (e && e->kind != want && e->kind != also) {
    attr_fail(a, k, std::string("must be a ") + kind_name(want) + ", got a " +
                        kind_name(e->kind));
  }
  return e;
}

const Attrs::Entry& get(const Attrs& a, std::string_view k, Attrs::Value::Kind want,
                        Attrs::Value::Kind also) {
  const Attrs::Entry* e = find_as(a, k, want, also);
  if (!e) attr_fail(a, k, "is missing");
  return *e;
}

double as_f(const Attrs::Entry& e) {
  return e.kind == Attrs::Value::Int ? static_cast<double>(e.i) : e.f;
}
}  // namespace

int64_t Attrs::i(std::string_view k) const {
  return get(*this, k, Value::Int, Value::Int).i;
}
int64_t Attrs::i(std::string_view k, int64_t def) const {
  const Entry* e = find_as(*this, k, Value::Int, Value::Int);
  return e ? e->i : def;
}

double Attrs::f(std::string_view k) const { return as_f(get(*this, k, Value::Float, Value::Int)); }
double Attrs::f(std::string_view k, double def) const {
  const Entry* e = find_as(*this, k, Value::Float, Value::Int);
  return e ? as_f(*e) : def;
}

std::vector<int64_t> Attrs::ints(std::string_view k) const {
  const Entry& e = get(*this, k, Value::Ints, Value::Ints);
  std::vector<int64_t> v(e.n);
  if (e.n) std::memcpy(v.data(), e.p, 8 * size_t(e.n));
  return v;
}

std::vector<double> Attrs::floats(std::string_view k) const {
  const Entry& e = get(*this, k, Value::Floats, Value::Ints);
  std::vector<double> v(e.n);
  for (size_t j = 0; j < e.n; ++j) {
    v[j] = e.kind == Value::Floats ? e.float_at(j) : static_cast<double>(e.int_at(j));
  }
  return v;
}

std::string_view Attrs::str(std::string_view k) const {
  const Entry& e = get(*this, k, Value::Str, Value::Str);
  return {reinterpret_cast<const char*>(e.p), e.n};
}

const Array& Attrs::array(std::string_view k, DType dtype, int64_t numel) const {
  const Array& a = *get(*this, k, Value::Arr, Value::Arr).arr;
  if (a.dtype != dtype) {
    attr_fail(*this, k, std::string("must have dtype ") + dtype_name(dtype) + ", got " +
                            dtype_name(a.dtype));
  }
  int64_t n;
  try {
    n = a.numel();
  } catch (const ModelError& e) {
    attr_fail(*this, k, e.what());
  }
  if (numel >= 0 && n != numel) {
    attr_fail(*this, k, "must have " + std::to_string(numel) + " elements, got " +
                            std::to_string(n) + " (shape " + shape_str(a.shape) + ")");
  }
  return a;
}

void OpSpec::fail(const std::string& msg) const {
  throw ModelError(type + " '" + name + "': " + msg);
}

size_t OpSpec::axis(int64_t axis, size_t rank) const {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    fail("axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

void OpSpec::expect_arity(size_t n_in, size_t n_out) const {
  if (inputs.size() != n_in || outputs.size() != n_out) {
    fail("expects " + std::to_string(n_in) + " input(s) and " + std::to_string(n_out) +
         " output(s), got " + std::to_string(inputs.size()) + " and " +
         std::to_string(outputs.size()));
  }
}

}  // namespace edgert
