// The contract between the executor and every op: an op is created once from an OpSpec (shapes,
// dtypes, attributes; weights are packed here), then run many times, possibly concurrently from
// several threads, so run() is const and keeps no per-run state in the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace edgert {

class ThreadPool;

enum class DType : uint8_t { u8, i8, i32, i64, f32 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "u8", "i8", "i32", "i64", "f32"
bool parse_dtype(const std::string& name, DType* out);  // false for an unknown name

// Largest element count numel() accepts: keeps numel * dtype_size far from overflowing.
constexpr int64_t kMaxNumel = int64_t(1) << 48;

// Raised for anything wrong in a model or plan; the binding maps it to edgert._core.ModelError.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TensorDesc {
  DType dtype;
  std::vector<int64_t> shape;
  int64_t numel() const;  // throws ModelError for a negative dim or a count above kMaxNumel
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
};

// A constant array given as an attribute (weights, bias, per-channel scales). The executor keeps
// the owning Python object alive for as long as any op may read it.
struct Array {
  DType dtype;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  int64_t numel() const;
  template <class T> const T* as() const { return static_cast<const T*>(data); }
};

// Typed access to an op's attributes. Every getter throws ModelError naming the op and the
// attribute when it is missing or of the wrong kind. f() also accepts an Int and floats() an
// Ints (Python writes 1 for 1.0); i() and ints() never accept floats.
class Attrs {
 public:
  struct Value {
    enum Kind { Int, Float, Ints, Floats, Str, Arr } kind;
    int64_t i = 0;
    double f = 0;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::string s;
    Array arr;
  };
  // Attribute names are short: an inline compare, length first, beats a call to memcmp per
  // tree node (factories look names up thousands of times per load).
  struct NameLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const {
      if (a.size() != b.size()) return a.size() < b.size();
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
      }
      return false;
    }
  };
  std::string op_name;  // for messages: "qconv 'node_name'"
  std::map<std::string, Value, NameLess> values;

  bool has(const std::string& k) const { return values.count(k) != 0; }
  int64_t i(const std::string& k) const;
  int64_t i(const std::string& k, int64_t def) const;
  double f(const std::string& k) const;
  double f(const std::string& k, double def) const;
  std::vector<int64_t> ints(const std::string& k) const;
  std::vector<double> floats(const std::string& k) const;
  std::string s(const std::string& k) const;
  std::string s(const std::string& k, const std::string& def) const;
  // An array attribute of the given dtype with exactly `numel` elements (numel < 0: any count).
  const Array& array(const std::string& k, DType dtype, int64_t numel = -1) const;
};

struct OpSpec {
  std::string type;  // "qconv", "gemm", ...
  std::string name;  // the node's name, for messages
  std::vector<TensorDesc> inputs;
  std::vector<TensorDesc> outputs;
  Attrs attrs;

  // Helpers for factories: throw ModelError "<type> '<name>': <msg>".
  [[noreturn]] void fail(const std::string& msg) const;
  void expect_arity(size_t n_in, size_t n_out) const;
  // An axis attribute (ONNX style, negative counts from the end) normalized to [0, rank).
  size_t axis(int64_t axis, size_t rank) const;
};

// What an op derived from its attributes when it was created (packed weights, corrected sums),
// offered so that a compiled model stores it and skips that work at load: attributes to drop and
// to add. The op's factory must accept the result in place of the original attributes and give
// bit-identical results, or repack when the running ISA wants another layout.
struct PackedAttrs {
  std::vector<std::string> drop;
  std::map<std::string, Attrs::Value> add;  // Arr values point into the op, valid while it lives
};

class Op {
 public:
  virtual ~Op() = default;
  virtual PackedAttrs packed_attrs() const { return {}; }
  // in[i] / out[i] point at the tensors described by spec.inputs[i] / spec.outputs[i]; outputs
  // never alias inputs. Must be safe to call concurrently.
  virtual void run(const void* const* in, void* const* out, ThreadPool& pool) const = 0;
};

using OpFactory = std::unique_ptr<Op> (*)(const OpSpec&);

// Fails `spec` with the message unless cond holds; the message is built only on failure (every
// load runs the factories, and most messages format shapes).
#define EDGERT_EXPECT(spec, cond, ...) \
  do {                                 \
    if (!(cond)) (spec).fail(__VA_ARGS__); \
  } while (0)

// Registry lookup; throws ModelError for an unknown type.
std::unique_ptr<Op> make_op(const OpSpec& spec);

}  // namespace edgert
