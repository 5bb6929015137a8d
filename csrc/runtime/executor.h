// The plan executor: validates a plan once, creates every op, then runs the ops in order over
// one arena per concurrent run. Pure C++; csrc/module.cc converts Python objects into a Plan.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/op.h"
#include "runtime/threadpool.h"

namespace edgert {

struct PlanTensor {
  enum Kind { Arena, Input, Output, Const };
  Kind kind = Arena;
  TensorDesc desc;
  int64_t offset = 0;  // Arena: byte offset in the arena
  // Const: the data (owned by the caller, alive as long as the executor) and what it holds.
  const void* data = nullptr;
  DType data_dtype = DType::u8;
  int64_t data_numel = 0;
};

struct PlanOp {
  std::string type, name;
  std::vector<int64_t> inputs, outputs;  // tensor ids
  Attrs attrs;
};

struct Plan {
  int64_t arena_bytes = 0;
  std::vector<PlanTensor> tensors;
  std::vector<PlanOp> ops;
  std::vector<int64_t> input_ids, output_ids;
};

// Upper bound for one tensor and for the arena; a plan asking for more is malformed.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;

class Executor {
 public:
  Executor(Plan plan, int threads);  // threads <= 0: the CPUs this process may run on
  ~Executor();

  int64_t arena_bytes() const { return plan_.arena_bytes; }
  int threads() const { return pool_->threads(); }
  const Plan& plan() const { return plan_; }
  const TensorDesc& input_desc(size_t i) const { return plan_.tensors[plan_.input_ids[i]].desc; }
  const TensorDesc& output_desc(size_t i) const {
    return plan_.tensors[plan_.output_ids[i]].desc;
  }

  // inputs[i] / outputs[i]: buffers for input_ids[i] / output_ids[i], already checked by the
  // caller. Safe to call concurrently; does not touch Python.
  void run(const void* const* inputs, void* const* outputs) const;

 private:
  void validate() const;
  void* take_arena() const;
  void give_arena(void* arena) const;

  Plan plan_;
  std::vector<std::unique_ptr<Op>> ops_;
  std::unique_ptr<ThreadPool> pool_;
  mutable std::mutex arena_mu_;
  mutable std::vector<void*> free_arenas_;
  mutable std::vector<void*> all_arenas_;
};

}  // namespace edgert
