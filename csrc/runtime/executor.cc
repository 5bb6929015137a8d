#include "runtime/executor.h"

#include <sched.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace edgert {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMaxRank = 16;
constexpr int kMaxThreads = 1024;

int default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

std::string tname(int64_t id) { return "tensor " + std::to_string(id); }

std::string oname(const PlanOp& op) { return op.type + " '" + op.name + "'"; }

const char* kind_name(PlanTensor::Kind k) {
  switch (k) {
    case PlanTensor::Arena: return "arena";
    case PlanTensor::Input: return "input";
    case PlanTensor::Output: return "output";
    case PlanTensor::Const: return "const";
  }
  return "?";
}

bool overlap(const PlanTensor& a, const PlanTensor& b) {
  int64_t ab = static_cast<int64_t>(a.desc.bytes()), bb = static_cast<int64_t>(b.desc.bytes());
  if (ab == 0 || bb == 0) return false;
  return a.offset < b.offset + bb && b.offset < a.offset + ab;
}

}  // namespace

void Executor::validate() const {
  const Plan& p = plan_;
  const int64_t n = static_cast<int64_t>(p.tensors.size());
  if (p.arena_bytes < 0 || p.arena_bytes > kMaxTensorBytes) {
    throw ModelError("arena size " + std::to_string(p.arena_bytes) + " out of range");
  }
  for (int64_t id = 0; id < n; ++id) {
    const PlanTensor& t = p.tensors[id];
    if (t.desc.shape.size() > kMaxRank) throw ModelError(tname(id) + ": rank above 16");
    int64_t bytes;
    try {
      bytes = t.desc.numel() * static_cast<int64_t>(dtype_size(t.desc.dtype));
    } catch (const ModelError& e) {
      throw ModelError(tname(id) + ": " + e.what());
    }
    if (bytes > kMaxTensorBytes) throw ModelError(tname(id) + ": too large");
    if (t.kind == PlanTensor::Arena) {
      if (t.offset < 0 || t.offset % static_cast<int64_t>(kAlign) != 0) {
        throw ModelError(tname(id) + ": arena offset " + std::to_string(t.offset) +
                         " is not a non-negative multiple of 64");
      }
      if (t.offset > p.arena_bytes || bytes > p.arena_bytes - t.offset) {
        throw ModelError(tname(id) + ": bytes [" + std::to_string(t.offset) + ", " +
                         std::to_string(t.offset + bytes) + ") lie past the arena of " +
                         std::to_string(p.arena_bytes) + " bytes");
      }
    } else if (t.kind == PlanTensor::Const) {
      if (t.data_dtype != t.desc.dtype || t.data_numel != t.desc.numel()) {
        throw ModelError(tname(id) + ": const data is " + dtype_name(t.data_dtype) + " with " +
                         std::to_string(t.data_numel) + " elements, expected " +
                         dtype_name(t.desc.dtype) + " with " + std::to_string(t.desc.numel()));
      }
      if (bytes > 0 && (t.data == nullptr ||
                        reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.desc.dtype) != 0)) {
        throw ModelError(tname(id) + ": const data missing or misaligned");
      }
    }
  }

  auto check_io = [&](const std::vector<int64_t>& ids, PlanTensor::Kind kind, const char* what) {
    std::vector<char> seen(n, 0);
    for (int64_t id : ids) {
      if (id < 0 || id >= n) throw ModelError(std::string(what) + " id " + std::to_string(id) +
                                              " out of range (" + std::to_string(n) + " tensors)");
      if (p.tensors[id].kind != kind) {
        throw ModelError(std::string(what) + " " + tname(id) + " has kind '" +
                         kind_name(p.tensors[id].kind) + "', expected '" + kind_name(kind) + "'");
      }
      if (seen[id]++) throw ModelError(std::string(what) + " " + tname(id) + " listed twice");
    }
    for (int64_t id = 0; id < n; ++id) {
      if (p.tensors[id].kind == kind && !seen[id]) {
        throw ModelError(tname(id) + " has kind '" + kind_name(kind) + "' but is not in the " +
                         what + " list");
      }
    }
  };
  check_io(p.input_ids, PlanTensor::Input, "input");
  check_io(p.output_ids, PlanTensor::Output, "output");

  std::vector<char> written(n, 0);
  for (const PlanOp& op : p.ops) {
    for (int64_t id : op.inputs) {
      if (id < 0 || id >= n) {
        throw ModelError(oname(op) + ": input id " + std::to_string(id) + " out of range (" +
                         std::to_string(n) + " tensors)");
      }
      // Output buffers are fresh arrays: reading one before an op fills it reads garbage.
      if (p.tensors[id].kind == PlanTensor::Output && !written[id]) {
        throw ModelError(oname(op) + ": reads output " + tname(id) + " before any op writes it");
      }
    }
    for (size_t k = 0; k < op.outputs.size(); ++k) {
      int64_t id = op.outputs[k];
      if (id < 0 || id >= n) {
        throw ModelError(oname(op) + ": output id " + std::to_string(id) + " out of range (" +
                         std::to_string(n) + " tensors)");
      }
      const PlanTensor& t = p.tensors[id];
      if (t.kind != PlanTensor::Arena && t.kind != PlanTensor::Output) {
        throw ModelError(oname(op) + ": writes " + tname(id) + " of kind '" + kind_name(t.kind) +
                         "'");
      }
      if (written[id]++) throw ModelError(oname(op) + ": " + tname(id) + " is written twice");
      for (int64_t in : op.inputs) {
        if (in == id) throw ModelError(oname(op) + ": output " + tname(id) + " is also an input");
        const PlanTensor& u = p.tensors[in];
        if (t.kind == PlanTensor::Arena && u.kind == PlanTensor::Arena && overlap(t, u)) {
          throw ModelError(oname(op) + ": output " + tname(id) + " overlaps input " + tname(in) +
                           " in the arena");
        }
      }
      for (size_t j = 0; j < k; ++j) {
        const PlanTensor& u = p.tensors[op.outputs[j]];
        if (t.kind == PlanTensor::Arena && u.kind == PlanTensor::Arena && overlap(t, u)) {
          throw ModelError(oname(op) + ": outputs " + tname(op.outputs[j]) + " and " + tname(id) +
                           " overlap in the arena");
        }
      }
    }
  }
  for (int64_t id : p.output_ids) {
    if (!written[id]) throw ModelError("output " + tname(id) + " is never written by any op");
  }
}

Executor::Executor(Plan plan, int threads) : plan_(std::move(plan)) {
  if (threads > kMaxThreads) {
    throw std::invalid_argument("threads=" + std::to_string(threads) + " is above " +
                                std::to_string(kMaxThreads));
  }
  validate();
  ops_.reserve(plan_.ops.size());
  for (const PlanOp& op : plan_.ops) {
    OpSpec spec;
    spec.type = op.type;
    spec.name = op.name;
    for (int64_t id : op.inputs) spec.inputs.push_back(plan_.tensors[id].desc);
    for (int64_t id : op.outputs) spec.outputs.push_back(plan_.tensors[id].desc);
    spec.attrs = op.attrs;
    spec.attrs.op_name = oname(op);
    try {
      ops_.push_back(make_op(spec));
    } catch (const ModelError&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw ModelError(oname(op) + ": " + e.what());
    }
  }
  pool_ = std::make_unique<ThreadPool>(threads > 0 ? threads : default_threads());
}

Executor::~Executor() {
  for (void* a : all_arenas_) std::free(a);
}

void* Executor::take_arena() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  if (!free_arenas_.empty()) {
    void* a = free_arenas_.back();
    free_arenas_.pop_back();
    return a;
  }
  size_t size = (static_cast<size_t>(plan_.arena_bytes) + kAlign - 1) / kAlign * kAlign;
  void* a = std::aligned_alloc(kAlign, size ? size : kAlign);
  if (a == nullptr) throw std::bad_alloc();
  all_arenas_.push_back(a);
  return a;
}

void Executor::give_arena(void* arena) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  free_arenas_.push_back(arena);
}

void Executor::run(const void* const* inputs, void* const* outputs) const {
  const Plan& p = plan_;
  struct ArenaLease {
    const Executor* ex;
    void* mem;
    ~ArenaLease() { ex->give_arena(mem); }
  } lease{this, take_arena()};

  std::vector<void*> ptr(p.tensors.size(), nullptr);
  for (size_t id = 0; id < p.tensors.size(); ++id) {
    const PlanTensor& t = p.tensors[id];
    if (t.kind == PlanTensor::Arena) ptr[id] = static_cast<char*>(lease.mem) + t.offset;
    if (t.kind == PlanTensor::Const) ptr[id] = const_cast<void*>(t.data);
  }
  // Inputs are read in place; const_cast only to share one table, ops get them as const void*.
  for (size_t i = 0; i < p.input_ids.size(); ++i) {
    ptr[p.input_ids[i]] = const_cast<void*>(inputs[i]);
  }
  for (size_t i = 0; i < p.output_ids.size(); ++i) ptr[p.output_ids[i]] = outputs[i];

  std::vector<const void*> in;
  std::vector<void*> out;
  for (size_t k = 0; k < p.ops.size(); ++k) {
    const PlanOp& op = p.ops[k];
    in.clear();
    out.clear();
    for (int64_t id : op.inputs) in.push_back(ptr[id]);
    for (int64_t id : op.outputs) out.push_back(ptr[id]);
    ops_[k]->run(in.data(), out.data(), *pool_);
  }
}

}  // namespace edgert
