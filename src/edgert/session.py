"""Session: a loaded model, its metadata, input checks, and runs through the C++ executor."""
import os
import threading
from collections import OrderedDict

import numpy as np

from .errors import EdgertError, InputError, ModelError

_TYPE_NAMES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.uint8): "tensor(uint8)",
               np.dtype(np.int8): "tensor(int8)", np.dtype(np.int32): "tensor(int32)",
               np.dtype(np.int64): "tensor(int64)", np.dtype(np.bool_): "tensor(bool)",
               np.dtype(np.float16): "tensor(float16)", np.dtype(np.float64): "tensor(double)"}
_PLAN_CACHE = 8  # input-shape signatures kept compiled per session


class NodeArg:
    """An input or output's metadata, like onnxruntime's NodeArg, plus dtype and quantization."""

    def __init__(self, name, shape, dtype, scale=None, zero_point=None):
        self.name = name
        self.shape = list(shape) if shape is not None else None
        self.dtype = np.dtype(dtype)
        # (numpy's dtype.name costs microseconds: asked only for types outside the table)
        self.type = _TYPE_NAMES.get(self.dtype) or f"tensor({self.dtype.name})"
        self.scale = scale
        self.zero_point = zero_point
        # The shape a run's input must have when no dim is dynamic, else None (fast-path check).
        static = self.shape is not None and all(isinstance(d, int) for d in self.shape)
        self.fixed_shape = tuple(self.shape) if static else None

    def __repr__(self):
        q = f", scale={self.scale}, zero_point={self.zero_point}" if self.scale is not None else ""
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape}{q})"


def check_threads(threads):
    """The thread count a session runs with: `threads`, or all the CPUs this process may use."""
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 0):
        raise EdgertError(f"threads must be a non-negative int, got {threads!r}")
    return threads or default_threads()


def default_threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class Session:
    """A model ready to run. Create it with `edgert.load`."""

    def __init__(self, graph, *, threads=None, for_file=None, consume=False):
        """`for_file`: None for a session that only runs (each op's weights are freed once
        packed); "portable" or "native" to write it to an .edgert file, planned for any ISA
        (lower.lower's `portable`) or for this machine's. `consume`: the caller gives the graph
        up; a session that only runs and has one input shape then empties its constants once
        the plan holds what it needs, so that each layer's weights are freed as soon as they
        are packed (if nothing else refers to them) rather than all at the end."""
        from .qdq import fuse_qdq
        threads = check_threads(threads)
        try:
            self._graph = fuse_qdq(graph)
        except EdgertError:
            raise
        except Exception as e:  # malformed quantization parameters
            raise ModelError(f"invalid quantized graph: {type(e).__name__}: {e}") from None
        self._threads, self._for_file = threads, for_file
        self._lock = threading.Lock()
        self._plans = OrderedDict()
        self._last = None
        shapes = {v.name: self._default_shape(v) for v in graph.inputs}
        inputs = [NodeArg(v.name, v.shape if v.shape is not None else shapes[v.name], v.dtype,
                          *self._input_qparams(v.name)) for v in graph.inputs]
        static = all(i.fixed_shape is not None for i in inputs)
        drop = (graph, self._graph) if consume and static and for_file is None else ()
        first = self._compile(shapes, drop)
        self._inputs = inputs
        self._outputs = [NodeArg(v.name, _output_shape(v, first, i), first.plan.out_dtypes[i],
                                 *first.plan.out_qparams[i]) for i, v in enumerate(graph.outputs)]
        if static:
            self._graph = None  # one shape only: the plan is all a run needs; free the weights

    @classmethod
    def _from_plan(cls, graph, compiled, inputs, outputs, threads):
        """A session from a compiled .edgert file: the executor for the default input shapes,
        and the graph (None for static-shape models) to plan other shapes."""
        self = cls.__new__(cls)
        self._graph, self._threads, self._for_file = graph, threads, None
        self._lock, self._plans, self._last = threading.Lock(), OrderedDict(), None
        self._inputs, self._outputs = inputs, outputs
        key = tuple(tuple(1 if d is None else d for d in i.shape) for i in inputs)
        self._plans[key] = compiled
        return self

    # --- metadata -------------------------------------------------------------------------
    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    @property
    def threads(self):
        return self._threads

    @property
    def arena_bytes(self):
        """Bytes of the activation arena for the most recently compiled input shapes."""
        return next(reversed(self._plans.values())).plan.arena_bytes

    def plan_info(self):
        """Facts of the plan for the default input shapes: ops, arena, activation bytes."""
        if not self._plans:  # a cloud-only session (the model has ops edgert cannot run)
            return {"ops": [], "arena_bytes": 0, "activation_bytes": 0}
        c = next(iter(self._plans.values()))
        return {"ops": list(c.plan.op_types), "arena_bytes": c.plan.arena_bytes,
                "activation_bytes": c.plan.activation_bytes}

    # --- running --------------------------------------------------------------------------
    def run(self, output_names, input_feed, run_options=None):
        """Runs the model; returns the named outputs (all when output_names is None/empty)."""
        # The last run's plan first: the executor's try_run checks each array's type, dtype,
        # shape and layout in C++ and declines anything else to the full checks below.
        last = self._last  # (shapes, compiled) of the previous run: no lock on the hot path
        if last is not None and type(input_feed) is dict and len(input_feed) == len(self._inputs):
            try:
                arrays = [input_feed[i.name] for i in self._inputs]
            except KeyError:
                arrays = None
            results = last[1].try_run(arrays) if arrays is not None else None
            if results is not None:
                if not output_names:
                    return results
                return [results[i] for i in self._output_indices(output_names)]
        if not isinstance(input_feed, dict):
            raise InputError(f"input_feed must be a dict of name -> array, got {type(input_feed).__name__}")
        arrays = self._check_inputs(input_feed)
        shapes = tuple(a.shape for a in arrays)
        compiled = last[1] if last is not None and last[0] == shapes else self._compiled_for(shapes)
        self._last = (shapes, compiled)
        results = compiled.run(arrays)
        if not output_names:
            return results
        return [results[i] for i in self._output_indices(output_names)]

    def profile(self, input_feed, runs=20, warmup=5):
        """Per-op wall times of `runs` runs on input_feed (after `warmup` plain runs, enough to
        cover the first 4 runs of a multi-thread session, which time its ops serially to choose
        which to split): a list in plan order of dicts with op (the executor's op type, fusions
        included), node (its name), median_us, p90_us and share (of the summed medians). Timing
        adds a clock read per op."""
        runs, warmup = int(runs), int(warmup)
        if runs < 1 or warmup < 0:
            raise InputError(f"profile needs runs >= 1 and warmup >= 0, got {runs} and {warmup}")
        if not isinstance(input_feed, dict):
            raise InputError(f"input_feed must be a dict of name -> array, got {type(input_feed).__name__}")
        arrays = self._check_inputs(input_feed)
        for _ in range(warmup):
            self.run(None, input_feed)
        compiled = self._compiled_for(tuple(a.shape for a in arrays))
        ops, ns = compiled.executor.profile(arrays, runs)
        med = np.median(ns, axis=0) / 1e3
        p90 = np.percentile(ns, 90, axis=0) / 1e3
        total = float(med.sum()) or 1.0
        return [{"op": t, "node": n, "median_us": float(m), "p90_us": float(q), "share": float(m) / total}
                for (t, n), m, q in zip(ops, med, p90)]

    def predict(self, x, *, deadline_ms=None):
        """The first output for a single-input model's input x (loaded with a fallback or a
        policy: the first output of infer's decision)."""
        if len(self._inputs) != 1:
            names = ", ".join(i.name for i in self._inputs)
            raise InputError(f"predict needs a single-input model; this one takes {names}: use run()")
        if getattr(self, "_cloud", None) is not None:  # edgert.cloud router, set by load()
            return self._cloud.predict(x, deadline_ms)
        return self.run(None, {self._inputs[0].name: x})[0]

    # --- cloud fallback (edgert.cloud; logic lives there) ---------------------------------
    def infer(self, inputs, *, deadline_ms=None):
        """Runs locally or in the cloud as the policy decides; returns an edgert.Result with
        .outputs (name -> array), .served_by, .reason, .latency_ms, .attempts."""
        return self._cloud_router().infer(inputs, deadline_ms)

    def stats(self):
        """Counts by path and reason, latency percentiles per path, bytes sent and received,
        the circuit breaker's state."""
        return self._cloud_router().stats()

    def _cloud_router(self):
        r = getattr(self, "_cloud", None) or getattr(self, "_cloud_local", None)
        if r is None:
            from .cloud import local_router
            with self._lock:
                r = self.__dict__.setdefault("_cloud_local", local_router(self))
        return r

    @classmethod
    def _cloud_only(cls, graph, threads):
        """A session for a model edgert cannot run: metadata only, every infer goes to the
        cloud (run() raises the UnsupportedOpError)."""
        self = cls.__new__(cls)
        self._graph, self._threads, self._for_file = graph, threads or default_threads(), None
        self._lock, self._plans, self._last = threading.Lock(), OrderedDict(), None
        self._inputs = [NodeArg(v.name, v.shape, v.dtype) for v in graph.inputs]
        self._outputs = [NodeArg(v.name, v.shape, v.dtype) for v in graph.outputs]
        return self
    # --- end cloud fallback ---------------------------------------------------------------

    # --- internals ------------------------------------------------------------------------
    def _default_shape(self, v):
        if v.shape is None:
            raise ModelError(f"input '{v.name}' has no declared shape")
        return tuple(1 if d is None else d for d in v.shape)

    def _input_qparams(self, name):
        for n in self._graph.nodes:
            if n.inputs and n.inputs[0] == name and (n.op_type.startswith("QLinear")
                                                     or n.op_type == "DequantizeLinear"):
                s = self._graph.constants.get(n.input(1))
                z = self._graph.constants.get(n.input(2)) if n.input(2) else np.zeros(())
                if s is not None and s.size == 1 and z is not None:
                    return float(s.reshape(-1)[0]), int(z.reshape(-1)[0])
        return None, None

    def _check_inputs(self, feed):
        expected = {i.name: i for i in self._inputs}
        unknown = [k for k in feed if k not in expected]
        if unknown:
            raise InputError(f"unknown input name(s) {unknown}; the model's inputs are "
                             f"{list(expected)}")
        missing = [k for k in expected if k not in feed]
        if missing:
            raise InputError(f"missing input(s) {missing}; the model's inputs are {list(expected)}")
        arrays = []
        for info in self._inputs:
            a = feed[info.name]
            if not isinstance(a, np.ndarray):
                try:
                    a = np.asarray(a)
                except Exception as e:
                    raise InputError(f"input '{info.name}': cannot be read as an array: {e}") from None
            if a.dtype != info.dtype:
                raise InputError(f"input '{info.name}': expected dtype {info.dtype}, got {a.dtype}"
                                 f" (convert with .astype(np.{info.dtype.name}))")
            if a.ndim != len(info.shape) or any(d is not None and not isinstance(d, str) and d != g
                                                for d, g in zip(info.shape, a.shape)):
                raise InputError(f"input '{info.name}': expected shape {tuple(info.shape)}, got "
                                 f"{a.shape}" + (" (None: any size)" if None in info.shape else ""))
            if 0 in a.shape:
                raise InputError(f"input '{info.name}': empty shape {a.shape} is not supported")
            arrays.append(np.require(a, requirements="CA"))  # C order, aligned (a copy if not)
        return arrays

    def _output_indices(self, names):
        if not names:
            return list(range(len(self._outputs)))
        index = {o.name: i for i, o in enumerate(self._outputs)}
        bad = [n for n in names if n not in index]
        if bad:
            raise InputError(f"unknown output name(s) {bad}; the model's outputs are {list(index)}")
        return [index[n] for n in names]

    def _compiled_for(self, shapes):
        with self._lock:
            c = self._plans.get(shapes)
            if c is not None:
                self._plans.move_to_end(shapes)
                return c
        if self._graph is None:  # a static-shape compiled model has exactly one plan
            raise InputError(f"this compiled model runs only with input shapes {list(self._plans)}")
        return self._compile({v.name: s for v, s in zip(self._graph.inputs, shapes)})

    def _compile(self, shapes, drop=()):
        key = tuple(shapes[v.name] for v in self._graph.inputs)
        c = _Compiled.lower(self._graph, shapes, self._threads, self._for_file, drop)
        with self._lock:
            self._plans[key] = c
            while len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        return c


class _Compiled:
    """The executor for one plan (one set of input shapes)."""

    def __init__(self, plan, threads, release=False):
        """`threads`: the count for a new executor, or the executor itself (an .edgert file's).
        `release`: nothing will write this plan to a file, so each op's weights are freed once
        it has packed them (Op::unread_arrays); plan_info's facts are taken first."""
        self.plan = p = plan
        if not isinstance(threads, int):
            self.executor = threads
            return
        from . import _core
        if release:
            from .plan import plan_facts
            p.facts = plan_facts(p)
        try:
            self.executor = _core.Executor(p.arena_bytes, p.tensors, p.ops, p.input_ids,
                                           [i for i in p.output_ids if i is not None], threads,
                                           release)
        except _core.ModelError as e:
            raise ModelError(str(e)) from None
        p.released = release

    @classmethod
    def lower(cls, graph, shapes, threads, for_file=None, drop=()):
        """The plan of graph for shapes, compiled; the graphs in `drop` lose their constants
        once it is planned (Session's `consume`)."""
        from .lower import lower
        from .plan import make_plan
        plan = make_plan(lower(graph, shapes, for_file == "portable"))
        for g in drop:
            g.constants = {}
        return cls(plan, threads, release=for_file is None)

    def run(self, arrays):
        return self._outputs(self.executor.run(arrays))

    def try_run(self, arrays):
        """run() when every array is exactly what the plan takes, else None (see
        Executor.try_run)."""
        results = self.executor.try_run(arrays)
        return None if results is None else self._outputs(results)

    def _outputs(self, computed):
        """The model's outputs: the executor's, with copies of constant ones in their places."""
        if not self.plan.output_consts:
            return computed
        it = iter(computed)
        return [next(it) if i is not None else self.plan.output_consts[k].copy()
                for k, i in enumerate(self.plan.output_ids)]


def _output_shape(v, compiled, i):
    if v.shape is not None and len(v.shape) == len(compiled.plan.out_shapes[i]):
        return list(v.shape)
    return list(compiled.plan.out_shapes[i])
