#include "runtime/registry.h"

#include <cstdio>
#include <cstdlib>
#include <map>

namespace edgert {

// Function-local so it exists before any registrar in another file runs (init order).
static std::map<std::string, OpFactory>& table() {
  static std::map<std::string, OpFactory> t;
  return t;
}

OpRegistrar::OpRegistrar(const char* type, OpFactory factory) {
  if (!table().emplace(type, factory).second) {
    std::fprintf(stderr, "edgert: op type '%s' registered twice\n", type);
    std::abort();
  }
}

std::vector<std::string> registered_ops() {
  std::vector<std::string> names;
  for (const auto& kv : table()) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Op> make_op(const OpSpec& spec) {
  auto it = table().find(spec.type);
  if (it == table().end()) {
    throw ModelError("unsupported internal op '" + spec.type + "' (node '" + spec.name + "')");
  }
  std::unique_ptr<Op> op = it->second(spec);
  if (!op) spec.fail("factory returned no op");
  return op;
}

}  // namespace edgert
