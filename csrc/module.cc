// Python bindings: convert the plan from Python objects, check run inputs, release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "isa.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"
#include "ops/qconv.h"
#include "runtime/crc32c.h"
#include "runtime/executor.h"
#include "runtime/plan_io.h"
#include "runtime/registry.h"
#include "runtime/threadpool.h"

namespace py = pybind11;
using namespace edgert;

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// numpy dtype -> DType; false for anything else (including non-native byte order).
bool np_dtype(const py::dtype& dt, DType* out) {
  if (dt.byteorder() == '>') return false;
  char k = dt.kind();
  ssize_t n = dt.itemsize();
  if (k == 'u' && n == 1) *out = DType::u8;
  else if (k == 'i' && n == 1) *out = DType::i8;
  else if (k == 'i' && n == 4) *out = DType::i32;
  else if (k == 'i' && n == 8) *out = DType::i64;
  else if (k == 'f' && n == 4) *out = DType::f32;
  else return false;
  return true;
}

py::dtype to_np(DType t) {
  switch (t) {
    case DType::u8: return py::dtype("u1");
    case DType::i8: return py::dtype("i1");
    case DType::i32: return py::dtype("i4");
    case DType::i64: return py::dtype("i8");
    case DType::f32: return py::dtype("f4");
  }
  return py::dtype("u1");
}

bool is_int(const py::handle& o) {
  static py::object np_integer = py::module_::import("numpy").attr("integer");
  return PyLong_Check(o.ptr()) || py::isinstance(o, np_integer);
}
bool is_float(const py::handle& o) {
  static py::object np_floating = py::module_::import("numpy").attr("floating");
  return PyFloat_Check(o.ptr()) || py::isinstance(o, np_floating);
}

class PyExecutor {
 public:
  // release_unread: as each op is made, the array attributes it no longer reads
  // (Op::unread_arrays: the model's weights, once packed) are let go of, here and in the
  // caller's plan (ops[i]["attrs"][name] becomes None), so a layer's weights are freed before
  // the next layer packs its own.
  PyExecutor(int64_t arena_bytes, py::list tensors, py::list ops, std::vector<int64_t> input_ids,
             std::vector<int64_t> output_ids, int threads, bool release_unread) {
    Plan plan;
    plan.arena_bytes = arena_bytes;
    plan.input_ids = std::move(input_ids);
    plan.output_ids = std::move(output_ids);
    for (size_t i = 0; i < tensors.size(); ++i) plan.tensors.push_back(tensor(tensors[i], i));
    for (size_t i = 0; i < ops.size(); ++i) plan.ops.push_back(op(ops[i], i));
    std::function<void(size_t, const Op&)> created;
    if (release_unread) {
      created = [this, &ops](size_t i, const Op& made) {
        py::gil_scoped_acquire gil;
        release(i, made, ops);
      };
    }
    py::gil_scoped_release nogil;  // creating ops may pack large weights
    ex_ = std::make_unique<Executor>(std::move(plan), threads, created);
  }

  // A plan in the binary form of an .edgert file (runtime/plan_io.h), its arrays used in place:
  // the buffer (an mmap, bytes, ...) stays exported, so alive and unmovable, while this lives.
  // The weights' checksum is the caller's (Crc32cTask): ops read weights only as numbers, never
  // as sizes or offsets, so unverified bytes cannot make them misbehave.
  static std::unique_ptr<PyExecutor> from_buffer(const py::object& buf, size_t plan_off,
                                                 size_t plan_len, size_t blob_off,
                                                 size_t blob_len, int threads) {
    std::unique_ptr<PyExecutor> self(new PyExecutor());
    if (PyObject_GetBuffer(buf.ptr(), &self->view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    self->has_view_ = true;
    const size_t n = static_cast<size_t>(self->view_.len);
    if (plan_off > n || plan_len > n - plan_off || blob_off > n || blob_len > n - blob_off) {
      throw ModelError("plan or weights lie outside the model's " + std::to_string(n) + " bytes");
    }
    const uint8_t* base = static_cast<const uint8_t*>(self->view_.buf);
    py::gil_scoped_release nogil;  // reading is quick; creating ops may pack weights
    Plan plan = read_binary_plan(base + plan_off, plan_len, base + blob_off, blob_len);
    self->ex_ = std::make_unique<Executor>(std::move(plan), threads);
    return self;
  }

  ~PyExecutor() {
    ex_.reset();  // ops may point into the buffer
    if (has_view_) PyBuffer_Release(&view_);
  }

  // Op i's packed state (see PackedAttrs): (names to drop, {name: value}); arrays are copies.
  py::tuple packed_attrs(size_t i) const {
    if (i >= ex_->plan().ops.size()) throw py::index_error("op index out of range");
    PackedAttrs pa = ex_->op(i).packed_attrs();
    py::dict add;
    for (const auto& kv : pa.add) {
      const Attrs::Value& v = kv.second;
      switch (v.kind) {
        case Attrs::Value::Int: add[kv.first.c_str()] = v.i; break;
        case Attrs::Value::Float: add[kv.first.c_str()] = v.f; break;
        case Attrs::Value::Ints: add[kv.first.c_str()] = v.ints; break;
        case Attrs::Value::Floats: add[kv.first.c_str()] = v.floats; break;
        case Attrs::Value::Str: add[kv.first.c_str()] = v.s; break;
        case Attrs::Value::Arr: {
          const auto& sh = v.arr.shape;
          py::array a(to_np(v.arr.dtype), std::vector<py::ssize_t>(sh.begin(), sh.end()));
          std::memcpy(a.mutable_data(), v.arr.data, a.nbytes());
          add[kv.first.c_str()] = a;
          break;
        }
      }
    }
    return py::make_tuple(pa.drop, add);
  }

  py::list run(const py::sequence& inputs) const { return run_impl(inputs, true); }

  // The session's hot path: runs when every input is exactly what the plan takes (a plain
  // C-contiguous, aligned numpy array of its dtype and shape), else returns None without a
  // message, and the caller's full checks take over (and name what is wrong).
  py::object try_run(const py::sequence& inputs) const { return run_impl(inputs, false); }

  // `runs` runs with every op timed: ([(type, name)] per op, int64 ns array runs x ops).
  py::tuple profile(const py::sequence& inputs, int runs) const {
    if (runs < 1 || runs > 1000000) throw py::value_error("runs must be in 1..1000000");
    const size_t n = ex_->op_count();
    py::array_t<int64_t> ns({static_cast<py::ssize_t>(runs), static_cast<py::ssize_t>(n)});
    for (int r = 0; r < runs; ++r) run_impl(inputs, true, n ? ns.mutable_data(r, 0) : nullptr);
    py::list ops;
    for (size_t k = 0; k < n; ++k) {
      ops.append(py::make_tuple(ex_->plan_op(k).type, ex_->plan_op(k).name));
    }
    return py::make_tuple(ops, ns);
  }

  int64_t arena_bytes() const { return ex_->arena_bytes(); }
  int threads() const { return ex_->threads(); }
  uint64_t worker_joins() const { return ex_->worker_joins(); }

 private:
  // Const data and array attributes are read by ops during runs: keep them alive and contiguous.
  py::array keep_array(const py::handle& o, DType* dt, const std::string& what) {
    py::array a = py::reinterpret_borrow<py::array>(o);
    if (!np_dtype(a.dtype(), dt)) {
      throw ModelError(what + ": unsupported array dtype " + std::string(py::str(a.dtype())));
    }
    a = py::module_::import("numpy").attr("ascontiguousarray")(a);
    keep_.push_back(a);
    return a;
  }

  PlanTensor tensor(const py::handle& h, size_t id) {
    std::string what = "tensor " + std::to_string(id);
    try {
      py::dict d = h.cast<py::dict>();
      PlanTensor t;
      std::string dt = d["dtype"].cast<std::string>();
      if (!parse_dtype(dt, &t.desc.dtype)) throw ModelError(what + ": unknown dtype '" + dt + "'");
      t.desc.shape = d["shape"].cast<std::vector<int64_t>>();
      std::string kind = d["kind"].cast<std::string>();
      if (kind == "arena") {
        t.kind = PlanTensor::Arena;
        t.offset = d["offset"].cast<int64_t>();
      } else if (kind == "input") {
        t.kind = PlanTensor::Input;
      } else if (kind == "output") {
        t.kind = PlanTensor::Output;
      } else if (kind == "const") {
        t.kind = PlanTensor::Const;
        py::object data = d["data"];
        if (!py::isinstance<py::array>(data)) throw ModelError(what + ": const data is not an array");
        py::array a = keep_array(data, &t.data_dtype, what);
        t.data = a.data();
        t.data_numel = static_cast<int64_t>(a.size());
      } else {
        throw ModelError(what + ": unknown kind '" + kind + "'");
      }
      return t;
    } catch (const py::error_already_set& e) {
      throw ModelError(what + ": malformed (" + e.what() + ")");
    } catch (const py::cast_error& e) {
      throw ModelError(what + ": malformed (" + e.what() + ")");
    }
  }

  Attrs::Value attr(const py::handle& o, const std::string& what) {
    Attrs::Value v;
    if (py::isinstance<py::str>(o)) {
      v.kind = Attrs::Value::Str;
      v.s = o.cast<std::string>();
    } else if (py::isinstance<py::array>(o)) {
      v.kind = Attrs::Value::Arr;
      py::array a = keep_array(o, &v.arr.dtype, what);
      v.arr.shape.assign(a.shape(), a.shape() + a.ndim());
      v.arr.data = a.data();
    } else if (is_int(o)) {
      v.kind = Attrs::Value::Int;
      v.i = py::int_(py::reinterpret_borrow<py::object>(o)).cast<int64_t>();
    } else if (is_float(o)) {
      v.kind = Attrs::Value::Float;
      v.f = py::float_(py::reinterpret_borrow<py::object>(o)).cast<double>();
    } else if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(o);
      bool any_float = false;
      for (auto e : seq) {
        if (is_float(e)) any_float = true;
        else if (!is_int(e)) throw ModelError(what + ": list elements must be numbers");
      }
      if (any_float) {
        v.kind = Attrs::Value::Floats;
        for (auto e : seq) v.floats.push_back(py::float_(py::reinterpret_borrow<py::object>(e)).cast<double>());
      } else {
        v.kind = Attrs::Value::Ints;
        for (auto e : seq) v.ints.push_back(py::int_(py::reinterpret_borrow<py::object>(e)).cast<int64_t>());
      }
    } else {
      throw ModelError(what + ": unsupported value of type " + std::string(Py_TYPE(o.ptr())->tp_name));
    }
    return v;
  }

  PlanOp op(const py::handle& h, size_t index) {
    std::string what = "op " + std::to_string(index);
    try {
      py::dict d = h.cast<py::dict>();
      PlanOp op;
      op.type = d["type"].cast<std::string>();
      op.name = d.contains("name") ? d["name"].cast<std::string>() : what;
      what = op.type + " '" + op.name + "'";
      op.inputs = d["inputs"].cast<std::vector<int64_t>>();
      op.outputs = d["outputs"].cast<std::vector<int64_t>>();
      if (op_arrays_.size() <= index) op_arrays_.resize(index + 1);
      if (d.contains("attrs")) {
        for (auto kv : d["attrs"].cast<py::dict>()) {
          std::string k = kv.first.cast<std::string>();
          const size_t kept = keep_.size();
          op.attrs.set(k, attr(kv.second, what + ": attribute '" + k + "'"));
          if (keep_.size() > kept) op_arrays_[index].emplace_back(k, kept);
        }
      }
      return op;
    } catch (const py::error_already_set& e) {
      throw ModelError(what + ": malformed (" + e.what() + ")");
    } catch (const py::cast_error& e) {
      throw ModelError(what + ": malformed (" + e.what() + ")");
    }
  }

  // Inputs checked (strict: a ValueError naming the input, else a None result), outputs
  // allocated from dtypes and shapes made once, then one executor run without the GIL.
  py::object run_impl(const py::sequence& inputs, bool strict, int64_t* op_ns = nullptr) const {
    const Plan& p = ex_->plan();
    const size_t n_in = p.input_ids.size(), n_out = p.output_ids.size();
    if (inputs.size() != n_in) {
      if (!strict) return py::none();
      throw py::value_error("expected " + std::to_string(n_in) + " inputs, got " +
                            std::to_string(inputs.size()));
    }
    if (out_dtypes_.size() != n_out) {  // first run (the GIL serializes it): kept from then on
      std::vector<py::dtype> dtypes;
      std::vector<std::vector<py::ssize_t>> shapes;
      for (size_t i = 0; i < n_out; ++i) {
        const TensorDesc& d = ex_->output_desc(i);
        shapes.emplace_back(d.shape.begin(), d.shape.end());
        dtypes.push_back(to_np(d.dtype));
      }
      out_shapes_ = std::move(shapes);
      out_dtypes_ = std::move(dtypes);  // last: its size says both are filled
    }
    constexpr size_t kSmall = 8;  // no heap vectors for the usual few inputs and outputs
    const void* in_small[kSmall];
    void* out_small[kSmall];
    std::vector<const void*> in_big(n_in > kSmall ? n_in : 0);
    std::vector<void*> out_big(n_out > kSmall ? n_out : 0);
    const void** in_ptr = n_in > kSmall ? in_big.data() : in_small;
    void** out_ptr = n_out > kSmall ? out_big.data() : out_small;
    // Our own references: another thread may empty the caller's list while the run is on.
    py::object keep_small[kSmall];
    std::vector<py::object> keep_big(n_in > kSmall ? n_in : 0);
    py::object* keep = n_in > kSmall ? keep_big.data() : keep_small;
    for (size_t i = 0; i < n_in; ++i) {
      const TensorDesc& d = ex_->input_desc(i);
      auto want = [&] { return std::string(dtype_name(d.dtype)) + " " + shape_str(d.shape); };
      py::object o = inputs[i];
      const bool exact = Py_TYPE(o.ptr()) == py::detail::npy_api::get().PyArray_Type_;
      if (!exact && (!strict || !py::isinstance<py::array>(o))) {
        if (!strict) return py::none();
        throw py::value_error("input " + std::to_string(i) + ": expected a numpy array (" + want() +
                              "), got " + std::string(Py_TYPE(o.ptr())->tp_name));
      }
      py::array a = py::reinterpret_borrow<py::array>(o);
      DType t;
      bool same = static_cast<size_t>(a.ndim()) == d.shape.size();
      for (size_t k = 0; same && k < d.shape.size(); ++k) same = a.shape()[k] == d.shape[k];
      const int need = py::array::c_style | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
      if (!same || !np_dtype(a.dtype(), &t) || t != d.dtype) {
        if (!strict) return py::none();
        std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
        throw py::value_error("input " + std::to_string(i) + ": expected " + want() + ", got " +
                              std::string(py::str(a.dtype())) + " " + shape_str(shape));
      }
      if ((a.flags() & need) != need) {
        if (!strict) return py::none();
        throw py::value_error("input " + std::to_string(i) +
                              ": array must be C-contiguous and aligned "
                              "(use numpy.ascontiguousarray)");
      }
      in_ptr[i] = a.data();
      keep[i] = std::move(a);
    }
    py::list r(n_out);
    for (size_t i = 0; i < n_out; ++i) {
      py::array a(out_dtypes_[i], out_shapes_[i]);
      out_ptr[i] = a.mutable_data();
      r[i] = std::move(a);
    }
    {
      py::gil_scoped_release nogil;
      ex_->run(in_ptr, out_ptr, op_ns);
    }
    return std::move(r);
  }

  PyExecutor() = default;

  void release(size_t i, const Op& made, const py::list& ops) {
    if (i >= op_arrays_.size()) return;
    for (const std::string& name : made.unread_arrays()) {
      for (const auto& [k, slot] : op_arrays_[i]) {
        if (k != name || keep_[slot].is_none()) continue;
        keep_[slot] = py::none();
        ops[i].cast<py::dict>()["attrs"].cast<py::dict>()[py::str(k)] = py::none();
      }
    }
  }

  std::vector<py::object> keep_;
  std::vector<std::vector<std::pair<std::string, size_t>>> op_arrays_;  // op's (attr, keep_ slot)
  Py_buffer view_{};
  bool has_view_ = false;
  std::unique_ptr<Executor> ex_;
  mutable std::vector<py::dtype> out_dtypes_;  // the outputs', made on the first run
  mutable std::vector<std::vector<py::ssize_t>> out_shapes_;
};

// The CRC32C of bytes [offset, +length) of a buffer, begun at once: a helper thread checksums
// while the caller does other work (for an .edgert file: reading its metadata and creating its
// ops), and result() checksums whatever the helper has not. The buffer stays exported, so alive
// and unmovable, until this goes, which first waits out a helper still reading it.
class PyCrc32cTask {
 public:
  PyCrc32cTask(const py::buffer& buf, size_t offset, size_t length, size_t chunk) {
    if (PyObject_GetBuffer(buf.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    const size_t n = static_cast<size_t>(view_.len);
    if (offset > n || length > n - offset) {
      PyBuffer_Release(&view_);
      throw py::value_error("bytes [" + std::to_string(offset) + ", +" + std::to_string(length) +
                            ") lie outside the buffer's " + std::to_string(n));
    }
    job_ = std::make_shared<Crc32cJob>(static_cast<const uint8_t*>(view_.buf) + offset, length,
                                       chunk);
    // Waking the helper costs about what checking 256 KiB does.
    if (length >= (size_t(256) << 10)) crc32c_share(job_);
  }
  PyCrc32cTask(const PyCrc32cTask&) = delete;
  PyCrc32cTask& operator=(const PyCrc32cTask&) = delete;
  ~PyCrc32cTask() {
    {
      py::gil_scoped_release nogil;  // a helper inside a chunk may be waiting for a CPU
      job_->close();
    }
    PyBuffer_Release(&view_);
  }

  uint32_t result() {
    py::gil_scoped_release nogil;
    job_->work();
    job_->finish();
    return job_->result();
  }

 private:
  Py_buffer view_{};
  std::shared_ptr<Crc32cJob> job_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "edgert C++ runtime";
  m.attr("__version__") = EDGERT_VERSION;
  py::register_exception<ModelError>(m, "ModelError", PyExc_ValueError);
  active_isa();  // an impossible EDGERT_ISA fails the import here (ImportError)
  vnni_wide_tiles();  // so does a bad EDGERT_VNNI_TILE

  m.def("isa", [] { return std::string(isa_name(active_isa())); },
        "The kernel ISA in use: 'amx', 'avx512vnni', 'avx2', 'neon' or 'scalar'.");
  m.def("x8_kernel", [](size_t m, size_t n, size_t k) -> py::object {
    const Q8GemmX8UKernel* uk = q8_gemm_x8_ukernel_for(m, n, k);
    if (!uk) return py::none();
    return py::str(uk->name);
  }, py::arg("m"), py::arg("n"), py::arg("k"),
        "The byte-form int8 GEMM kernel a conv of m output pixels, n output channels (per group) "
        "and depth k runs on this ISA (None: the int16 form), for tests and diagnostics.");
  m.def("pair_orders_help", [] {
    // Whether a K order chosen for the weights' byte pairs can change how this ISA runs a
    // layer: only byte kernels not marked exact_pairs choose their form by the pair test (and
    // take permuted rows, where they can). Probed on the shapes that pick each of the ISA's
    // byte kernels (small and large depth).
    for (size_t k : {16, 256}) {
      const Q8GemmX8UKernel* uk = q8_gemm_x8_ukernel_for(4096, 64, k);
      if (uk && !uk->exact_pairs) return true;
    }
    return false;
  }, "Whether the lowering's channel orders for byte pairs (fold_pair_orders) help this ISA.");
  m.def("available_isas", [] {
    std::vector<std::string> r;
    for (Isa i : available_isas()) r.push_back(isa_name(i));
    return r;
  }, "ISAs this CPU and build can run (EDGERT_ISA may pick one).");
  m.def("registered_ops", &registered_ops, "Internal op types this build implements.");
  m.def("spin_budget_us", &pool_spin_budget_us,
        "The thread pools' spin budget (EDGERT_SPIN_US, default 200); ValueError if invalid.");
  m.def("balanced_chunk", &ThreadPool::balanced_chunk, py::arg("n"), py::arg("chunk"),
        py::arg("parts"), "The chunk length a pool of `parts` threads uses for n items where "
        "its grain gives `chunk` (for tests of the thread pool).");
  m.def("pair_order", [](py::array w, py::array_t<int32_t, py::array::c_style | py::array::forcecast> zp) -> py::object {
    if (w.ndim() != 2 || !(w.flags() & py::array::c_style) || w.itemsize() != 1 ||
        (w.dtype().kind() != 'u' && w.dtype().kind() != 'i'))
      throw py::value_error("pair_order: weight must be a C-contiguous 2-D uint8/int8 array");
    const size_t n = static_cast<size_t>(w.shape(0)), k = static_cast<size_t>(w.shape(1));
    if (zp.ndim() != 1 || static_cast<size_t>(zp.shape(0)) != n)
      throw py::value_error("pair_order: one zero point per weight row");
    const bool u8 = w.dtype().kind() == 'u';
    const uint8_t* p = static_cast<const uint8_t*>(w.data());
    std::vector<uint8_t> mask;
    {
      py::gil_scoped_release nogil;
      if (!q8_pairs_pass(p, u8, zp.data(), n, k)) mask = q8_pair_order(p, u8, zp.data(), n, k);
    }
    if (mask.empty()) return py::none();
    py::array_t<uint8_t> out(static_cast<py::ssize_t>(mask.size()));
    std::copy(mask.begin(), mask.end(), out.mutable_data());
    return std::move(out);
  }, py::arg("weight"), py::arg("w_zp"),
     "None when W's adjacent pairs pass the pair_u8 test or no K order found passes, else the "
     "order (q8_pair_order's mask).");
  // Checksums of whole .edgert files: any contiguous buffer (bytes, mmap, memoryview, array),
  // read without copying and without the GIL. portable=True forces the table form (tests).
  m.def("crc32c", [](const py::buffer& b, uint32_t value, bool portable) {
    Py_buffer view;
    if (PyObject_GetBuffer(b.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    uint32_t r;
    {
      py::gil_scoped_release nogil;
      size_t n = static_cast<size_t>(view.len);
      r = portable ? crc32c_portable(view.buf, n, value) : crc32c(view.buf, n, value);
    }
    PyBuffer_Release(&view);
    return r;
  }, py::arg("buffer"), py::arg("value") = 0, py::arg("portable") = false,
     "CRC-32C of a contiguous buffer; value continues a previous checksum.");
  m.def("crc32c_hardware", &crc32c_hardware, "crc32c uses the CPU's crc32 instruction.");
  m.def("crc32c_combine", &crc32c_combine, py::arg("crc_a"), py::arg("crc_b"), py::arg("len_b"),
        "The CRC-32C of A followed by B from the CRCs of both and B's length.");
  py::class_<PyCrc32cTask>(m, "Crc32cTask",
                           "CRC-32C of buffer[offset:offset+length], started on a helper thread "
                           "(from 256 KiB) while the caller goes on; result() finishes it.")
      .def(py::init<const py::buffer&, size_t, size_t, size_t>(), py::arg("buffer"),
           py::arg("offset"), py::arg("length"), py::arg("chunk") = 0)
      .def("result", &PyCrc32cTask::result);

  py::class_<PyExecutor>(m, "Executor")
      .def(py::init<int64_t, py::list, py::list, std::vector<int64_t>, std::vector<int64_t>,
                    int, bool>(),
           py::arg("arena_bytes"), py::arg("tensors"), py::arg("ops"), py::arg("input_ids"),
           py::arg("output_ids"), py::arg("threads") = 0, py::arg("release_unread") = false)
      .def_static("from_buffer", &PyExecutor::from_buffer, py::arg("buffer"),
                  py::arg("plan_offset"), py::arg("plan_length"), py::arg("blob_offset"),
                  py::arg("blob_length"), py::arg("threads") = 0)
      .def("packed_attrs", &PyExecutor::packed_attrs, py::arg("op"))
      .def("run", &PyExecutor::run, py::arg("inputs"))
      .def("try_run", &PyExecutor::try_run, py::arg("inputs"))
      .def("profile", &PyExecutor::profile, py::arg("inputs"), py::arg("runs"))
      .def_property_readonly("arena_bytes", &PyExecutor::arena_bytes)
      .def_property_readonly("threads", &PyExecutor::threads)
      // Parallel regions a pool worker joined (a statistic, for tests of the thread pool).
      .def_property_readonly("worker_joins", &PyExecutor::worker_joins);
}
