// The plan executor: validates a plan once, creates every op, then runs the ops in order over
// one arena per concurrent run. Pure C++; csrc/module.cc converts Python objects into a Plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <functional>
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
  std::string type, name;  // moved into the op's OpSpec with attrs when the executor creates it
  std::vector<int64_t> inputs, outputs;  // tensor ids
  Attrs attrs;
};

struct Plan {
  int64_t arena_bytes = 0;
  std::vector<PlanTensor> tensors;
  std::vector<PlanOp> ops;
  std::vector<int64_t> input_ids, output_ids;
  // Arrays that ops' attributes point at (a binary plan's blob table): never resized once the
  // attributes point at them; moving the plan keeps them in place.
  std::vector<Array> arrays;
};

// Upper bound for one tensor and for the arena; a plan asking for more is malformed.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;

class Executor {
 public:
  // threads <= 0: the CPUs this process may run on. created(i, op), when given, is called right
  // after op i is made (the plan's owner may then free what op.unread_arrays() names).
  Executor(Plan plan, int threads,
           const std::function<void(size_t, const Op&)>& created = nullptr);
  ~Executor();

  int64_t arena_bytes() const { return plan_.arena_bytes; }
  int threads() const { return pool_->threads(); }
  uint64_t worker_joins() const { return pool_->worker_joins(); }
  const Plan& plan() const { return plan_; }
  const Op& op(size_t i) const { return *ops_.at(i); }
  const TensorDesc& input_desc(size_t i) const { return plan_.tensors[plan_.input_ids[i]].desc; }
  const TensorDesc& output_desc(size_t i) const {
    return plan_.tensors[plan_.output_ids[i]].desc;
  }

  // inputs[i] / outputs[i]: buffers for input_ids[i] / output_ids[i], already checked by the
  // caller. Safe to call concurrently; does not touch Python. op_ns (one per op), when given,
  // receives each op's wall time of this run in nanoseconds.
  void run(const void* const* inputs, void* const* outputs, int64_t* op_ns = nullptr) const;
  size_t op_count() const { return ops_.size(); }
  const PlanOp& plan_op(size_t i) const { return plan_.ops.at(i); }  // type and name only

 private:
  void validate() const;
  // One run's memory: the arena and every op's operand pointers into it, resolved once when
  // the arena is made; a run only patches the slots that name its inputs and outputs.
  struct Lease {
    void* mem = nullptr;
    std::vector<const void*> in;  // all ops' input pointers, op k's at in_off_[k]
    std::vector<void*> out;       // all ops' output pointers, op k's at out_off_[k]
  };
  // A slot of Lease::in (or out) holding run input io (or run output io) of this run.
  struct Patch {
    uint32_t slot;
    bool out_slot, from_input;
    uint32_t io;
  };
  void prepare_run_tables();
  Lease* take_lease() const;
  void give_lease(Lease* lease) const;

  Plan plan_;
  std::vector<std::unique_ptr<Op>> ops_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<uint32_t> in_off_, out_off_;  // per op, plus one past the last
  std::vector<Patch> patches_;
  // Ops too small to split over threads, learned from their serial times in the first runs
  // (the split never changes results, only speed).
  mutable std::atomic<int> trials_{0};
  std::unique_ptr<std::atomic<int64_t>[]> op_min_ns_;
  std::unique_ptr<std::atomic<bool>[]> op_serial_;
  mutable std::atomic<bool> any_parallel_{false};  // some op splits: wake workers at run start
  mutable std::mutex arena_mu_;
  mutable std::vector<Lease*> free_leases_;
  mutable std::vector<std::unique_ptr<Lease>> all_leases_;
};

}  // namespace edgert
