#include "runtime/executor.h"

#include <sched.h>

#include <chrono>
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
// Runs that time every op serially before ops are split over threads, and the serial time below
// which an op stays serial: handing a region to a spinning worker and waiting for it costs a few
// microseconds, waking a sleeping one tens (workers spin between a run's ops, so mostly the
// former). MobileNetV2 0.35/96 at 2 threads, median of 6 runs: 0.45 ms with 20 us, 0.40 with
// 10 us. With amx, MobileNetV2 1.0's layers after the first few take 5-10 us each: 5 us made
// its 2-thread runs 15 % faster than 10 (alternating builds, 7 rounds; the small nets, ResNet-18
// and per-channel MobileNetV2 unchanged); 2.5 us made the small nets 3-5 % slower.
constexpr int kTrialRuns = 3;
constexpr int64_t kTinyOpNs = 5000;
// A run whose ops take less than this in all (serially) stays on one thread: its first split op
// would wake a sleeping worker (tens of microseconds) and gain less (DS-CNN, 75 us: 98 us at
// 2 threads with its 8-12 us ops split, 75 serial).
constexpr int64_t kTinyRunNs = 150000;

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

Executor::Executor(Plan plan, int threads,
                   const std::function<void(size_t, const Op&)>& created)
    : plan_(std::move(plan)) {
  if (threads > kMaxThreads) {
    throw std::invalid_argument("threads=" + std::to_string(threads) + " is above " +
                                std::to_string(kMaxThreads));
  }
  validate();
  ops_.reserve(plan_.ops.size());
  for (PlanOp& op : plan_.ops) {
    // The op keeps what it needs: only profile() reads the plan's type and name later, and
    // nothing its attributes.
    OpSpec spec;
    spec.type = op.type;
    spec.name = op.name;
    spec.inputs.reserve(op.inputs.size());
    spec.outputs.reserve(op.outputs.size());
    for (int64_t id : op.inputs) spec.inputs.push_back(plan_.tensors[id].desc);
    for (int64_t id : op.outputs) spec.outputs.push_back(plan_.tensors[id].desc);
    spec.attrs = std::move(op.attrs);
    spec.attrs.op_type = spec.type;
    spec.attrs.op_node = spec.name;
    try {
      ops_.push_back(make_op(spec));
      if (created) created(ops_.size() - 1, *ops_.back());
    } catch (const ModelError&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw ModelError(spec.type + " '" + spec.name + "': " + e.what());
    }
  }
  prepare_run_tables();
  op_min_ns_.reset(new std::atomic<int64_t>[ops_.size()]);
  op_serial_.reset(new std::atomic<bool>[ops_.size()]);
  for (size_t k = 0; k < ops_.size(); ++k) {
    op_min_ns_[k].store(INT64_MAX);
    op_serial_[k].store(false);
  }
  pool_ = std::make_unique<ThreadPool>(threads > 0 ? threads : default_threads());
}

Executor::~Executor() {
  for (auto& l : all_leases_) std::free(l->mem);
}

void Executor::prepare_run_tables() {
  size_t n_in = 0, n_out = 0;
  for (const PlanOp& op : plan_.ops) {
    in_off_.push_back(static_cast<uint32_t>(n_in));
    out_off_.push_back(static_cast<uint32_t>(n_out));
    n_in += op.inputs.size();
    n_out += op.outputs.size();
  }
  if (n_in > UINT32_MAX || n_out > UINT32_MAX) throw ModelError("plan too large");
  in_off_.push_back(static_cast<uint32_t>(n_in));
  out_off_.push_back(static_cast<uint32_t>(n_out));
  // Where each run input/output sits among the run tensors.
  std::vector<int64_t> io_index(plan_.tensors.size(), -1);
  for (size_t i = 0; i < plan_.input_ids.size(); ++i) io_index[plan_.input_ids[i]] = int64_t(i);
  for (size_t i = 0; i < plan_.output_ids.size(); ++i) io_index[plan_.output_ids[i]] = int64_t(i);
  for (size_t k = 0; k < plan_.ops.size(); ++k) {
    const PlanOp& op = plan_.ops[k];
    for (size_t j = 0; j < op.inputs.size(); ++j) {
      const PlanTensor& t = plan_.tensors[op.inputs[j]];
      if (t.kind == PlanTensor::Input || t.kind == PlanTensor::Output) {
        patches_.push_back({static_cast<uint32_t>(in_off_[k] + j), false,
                            t.kind == PlanTensor::Input,
                            static_cast<uint32_t>(io_index[op.inputs[j]])});
      }
    }
    for (size_t j = 0; j < op.outputs.size(); ++j) {
      if (plan_.tensors[op.outputs[j]].kind == PlanTensor::Output) {
        patches_.push_back({static_cast<uint32_t>(out_off_[k] + j), true, false,
                            static_cast<uint32_t>(io_index[op.outputs[j]])});
      }
    }
  }
}

Executor::Lease* Executor::take_lease() const {
  {
    std::lock_guard<std::mutex> lock(arena_mu_);
    if (!free_leases_.empty()) {
      Lease* l = free_leases_.back();
      free_leases_.pop_back();
      return l;
    }
  }
  auto l = std::make_unique<Lease>();
  size_t size = (static_cast<size_t>(plan_.arena_bytes) + kAlign - 1) / kAlign * kAlign;
  l->mem = std::aligned_alloc(kAlign, size ? size : kAlign);
  if (l->mem == nullptr) throw std::bad_alloc();
  auto resolve = [&](int64_t id) -> void* {
    const PlanTensor& t = plan_.tensors[id];
    if (t.kind == PlanTensor::Arena) return static_cast<char*>(l->mem) + t.offset;
    if (t.kind == PlanTensor::Const) return const_cast<void*>(t.data);
    return nullptr;  // run inputs and outputs: patched by every run
  };
  l->in.reserve(in_off_.back());
  l->out.reserve(out_off_.back());
  for (const PlanOp& op : plan_.ops) {
    for (int64_t id : op.inputs) l->in.push_back(resolve(id));
    for (int64_t id : op.outputs) l->out.push_back(resolve(id));
  }
  std::lock_guard<std::mutex> lock(arena_mu_);
  all_leases_.push_back(std::move(l));
  return all_leases_.back().get();
}

void Executor::give_lease(Lease* lease) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  free_leases_.push_back(lease);
}

void Executor::run(const void* const* inputs, void* const* outputs, int64_t* op_ns) const {
  struct Hold {
    const Executor* ex;
    Lease* l;
    ~Hold() { ex->give_lease(l); }
  } hold{this, take_lease()};
  Lease& l = *hold.l;
  // Inputs are read in place; ops get them as const void*.
  for (const Patch& p : patches_) {
    void* v = p.from_input ? const_cast<void*>(inputs[p.io]) : outputs[p.io];
    if (p.out_slot) l.out[p.slot] = v;
    else l.in[p.slot] = v;
  }
  ThreadPool::RunScope scope(*pool_);
  const size_t n = ops_.size();
  // Run 0 splits every op it can (single-run callers such as op tests see the parallel path);
  // runs 1..kTrialRuns are trials: every op serial and timed; the last one decides which stay
  // serial from then on.
  int r = kTrialRuns + 1;
  if (op_ns == nullptr && pool_->threads() > 1 &&
      trials_.load(std::memory_order_relaxed) <= kTrialRuns) {  // a profiled run is no trial
    r = trials_.fetch_add(1);
  }
  if (r >= 1 && r <= kTrialRuns) {
    for (size_t k = 0; k < n; ++k) {
      ThreadPool::SerialScope serial(true);
      auto t0 = std::chrono::steady_clock::now();
      ops_[k]->run(l.in.data() + in_off_[k], l.out.data() + out_off_[k], *pool_);
      int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now() - t0).count();
      int64_t prev = op_min_ns_[k].load(std::memory_order_relaxed);
      while (ns < prev && !op_min_ns_[k].compare_exchange_weak(prev, ns)) {
      }
    }
    if (r == kTrialRuns) {
      int64_t total = 0;
      for (size_t k = 0; k < n; ++k) total += op_min_ns_[k].load();
      bool any = false;
      for (size_t k = 0; k < n; ++k) {
        const bool serial = total < kTinyRunNs || op_min_ns_[k].load() < kTinyOpNs;
        op_serial_[k].store(serial, std::memory_order_relaxed);
        any = any || !serial;
      }
      any_parallel_.store(any, std::memory_order_relaxed);
    }
    return;
  }
  if (any_parallel_.load(std::memory_order_relaxed)) pool_->prewake();
  // Profiled runs (op_ns) read the clock between ops.
  auto t0 = op_ns ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  for (size_t k = 0; k < n; ++k) {
    ThreadPool::SerialScope serial(op_serial_[k].load(std::memory_order_relaxed));
    ops_[k]->run(l.in.data() + in_off_[k], l.out.data() + out_off_[k], *pool_);
    if (op_ns) {
      const auto t1 = std::chrono::steady_clock::now();
      op_ns[k] = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
      t0 = t1;
    }
  }
}

}  // namespace edgert
