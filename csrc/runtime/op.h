// The contract between the executor and every op: an op is created once from an OpSpec (shapes,
// dtypes, attributes; weights are packed here), then run many times, possibly concurrently from
// several threads, so run() is const and keeps no per-run state in the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
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
bool parse_dtype(std::string_view name, DType* out);  // false for an unknown name

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
//
// Attributes are a flat table with a small hash index: an op has about a dozen, and factories
// look them up thousands of times per load. A table read from an .edgert file holds views into
// the plan's bytes (names, strings, lists) and into the plan's array table, so reading one
// allocates nothing; attributes given by set() are copied into storage the table owns.
class Attrs {
 public:
  // An attribute as its own value: what set() takes and what PackedAttrs offers.
  struct Value {
    enum Kind { Int, Float, Ints, Floats, Str, Arr } kind;
    int64_t i = 0;
    double f = 0;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::string s;
    Array arr;
  };
  // One attribute of the table. Ints and Floats are `n` little-endian 8-byte values at `p`, not
  // necessarily aligned (read them with int_at / float_at); a Str is `n` bytes at `p`.
  struct Entry {
    std::string_view name;
    Value::Kind kind;
    uint32_t n = 0;
    union {
      int64_t i;
      double f;
      const uint8_t* p;
      const Array* arr;
    };
    uint32_t tag = 0;  // tag_of(name), set by add()
    int64_t int_at(size_t j) const;
    double float_at(size_t j) const;
  };
  // A name's length and first, middle and last bytes: equal tags for two names of one op are
  // rare, so a lookup compares whole names about once.
  static uint32_t tag_of(std::string_view k) {
    const size_t n = k.size();
    if (n == 0) return 0;
    return uint32_t(n & 0xff) | uint32_t(uint8_t(k[0])) << 8 | uint32_t(uint8_t(k[n / 2])) << 16 |
           uint32_t(uint8_t(k[n - 1])) << 24;
  }

  // For messages: "<op_type> '<op_node>'". Views of strings that outlive every getter call.
  std::string_view op_type, op_node;

  // Table-building: the caller keeps `e`'s views alive as long as the table is read. add()
  // returns false, adding nothing, when the table holds the name already; set() replaces it.
  void reserve(size_t n) { entries_.reserve(n); }
  bool add(Entry e);
  void set(std::string_view k, const Value& v);

  const Entry* find(std::string_view k) const;
  bool has(std::string_view k) const { return find(k) != nullptr; }
  int64_t i(std::string_view k) const;
  int64_t i(std::string_view k, int64_t def) const;
  double f(std::string_view k) const;
  double f(std::string_view k, double def) const;
  std::vector<int64_t> ints(std::string_view k) const;
  std::vector<double> floats(std::string_view k) const;
  std::string s(std::string_view k) const { return std::string(str(k)); }
  std::string s(std::string_view k, std::string_view def) const {
    return has(k) ? s(k) : std::string(def);
  }
  std::string_view str(std::string_view k) const;  // s() without the copy
  // An array attribute of the given dtype with exactly `numel` elements (numel < 0: any count).
  const Array& array(std::string_view k, DType dtype, int64_t numel = -1) const;

 private:
  // What set() copied: names and Str/Ints/Floats bytes, and arrays; deques never move them.
  struct Store {
    std::deque<std::string> bytes;
    std::deque<Array> arrays;
  };
  // Entries by the hash of their tags (open addressing, linear probing): an entry's position
  // + 1, 0 for a free slot. At most 3/4 full; a table with more entries is searched in order.
  static constexpr size_t kSlots = 64;
  static constexpr size_t kIndexed = kSlots * 3 / 4;
  static size_t slot_of(uint32_t tag) { return (tag * 0x9E3779B1u) >> 26; }

  std::vector<Entry> entries_;
  uint8_t slots_[kSlots] = {};
  std::unique_ptr<Store> store_;
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
  // Array attributes this op never reads after its creation (it copied or packed what it
  // needs): whoever owns their memory may free it once the op exists.
  virtual std::vector<std::string> unread_arrays() const { return {}; }
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
