// Op registration: each csrc/ops/<name>.cc ends with
//     EDGERT_REGISTER_OP("concat", make_concat);
// where make_concat is a `std::unique_ptr<Op> (*)(const OpSpec&)` (a capture-less lambda works).
// The registrar is a static object, so op files must be linked straight into the module (they
// are: CMake compiles csrc/ops/*.cc into _core, never through a static library).
#pragma once

#include <string>
#include <vector>

#include "runtime/op.h"

namespace edgert {

struct OpRegistrar {
  OpRegistrar(const char* type, OpFactory factory);  // aborts on a duplicate type (a build bug)
};

std::vector<std::string> registered_ops();  // sorted

}  // namespace edgert

#define EDGERT_REGISTER_OP_CAT2(a, b) a##b
#define EDGERT_REGISTER_OP_CAT(a, b) EDGERT_REGISTER_OP_CAT2(a, b)
#define EDGERT_REGISTER_OP(type, factory)                                              \
  static const ::edgert::OpRegistrar EDGERT_REGISTER_OP_CAT(edgert_op_registrar_, __LINE__)( \
      type, factory)
