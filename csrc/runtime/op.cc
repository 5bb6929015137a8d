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

bool parse_dtype(const std::string& name, DType* out) {
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

namespace {
[[noreturn]] void attr_fail(const Attrs& a, const std::string& k, const std::string& msg) {
  throw ModelError(a.op_name + ": attribute '" + k + "' " + msg);
}

const Attrs::Value& get(const Attrs& a, const std::string& k, Attrs::Value::Kind want,
                        Attrs::Value::Kind also) {
  auto it = a.values.find(k);
  if (it == a.values.end()) attr_fail(a, k, "is missing");
  if (it->second.kind != want && it->second.kind != also) {
    attr_fail(a, k, std::string("must be a ") + kind_name(want) + ", got a " +
                        kind_name(it->second.kind));
  }
  return it->second;
}
}  // namespace

int64_t Attrs::i(const std::string& k) const {
  return get(*this, k, Value::Int, Value::Int).i;
}
int64_t Attrs::i(const std::string& k, int64_t def) const { return has(k) ? i(k) : def; }

double Attrs::f(const std::string& k) const {
  const Value& v = get(*this, k, Value::Float, Value::Int);
  return v.kind == Value::Int ? static_cast<double>(v.i) : v.f;
}
double Attrs::f(const std::string& k, double def) const { return has(k) ? f(k) : def; }

std::vector<int64_t> Attrs::ints(const std::string& k) const {
  return get(*this, k, Value::Ints, Value::Ints).ints;
}

std::vector<double> Attrs::floats(const std::string& k) const {
  const Value& v = get(*this, k, Value::Floats, Value::Ints);
  if (v.kind == Value::Floats) return v.floats;
  return std::vector<double>(v.ints.begin(), v.ints.end());
}

std::string Attrs::s(const std::string& k) const { return get(*this, k, Value::Str, Value::Str).s; }
std::string Attrs::s(const std::string& k, const std::string& def) const {
  return has(k) ? s(k) : def;
}

const Array& Attrs::array(const std::string& k, DType dtype, int64_t numel) const {
  const Array& a = get(*this, k, Value::Arr, Value::Arr).arr;
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
