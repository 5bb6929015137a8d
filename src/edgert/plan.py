"""Memory planning: every intermediate tensor gets an offset in one arena, reused over time.

Views (reshapes, layout changes that move no bytes) share their source's buffer. Buffers are
placed greedily, largest first, into the lowest gap that is free for their whole lifetime.
"""
from dataclasses import dataclass, replace

import numpy as np

from .lower import DTYPE_CODE, IOp

ALIGN = 64


@dataclass
class Plan:
    tensors: list         # executor tensor dicts
    ops: list             # executor op dicts
    input_ids: list
    output_ids: list      # per graph output: tensor id, or None when the output is a constant
    output_consts: dict   # graph output index -> np.ndarray
    arena_bytes: int
    activation_bytes: int  # sum of all arena tensors' sizes: what no reuse would cost
    op_types: list
    out_dtypes: list       # per graph output: numpy dtype, logical shape, (scale, zp) or Nones
    out_shapes: list
    out_qparams: list
    facts: dict = None     # plan_facts(), stored by .edgert files (which keep no ops in Python)
    released: bool = False  # the ops' unread weights are gone (a session loaded to run)


def _nbytes(t):
    return int(np.prod(t.phys, dtype=np.int64)) * t.dtype.itemsize


def make_plan(L):
    t = L.t
    inputs = [v.name for v in L.graph.inputs]
    out_names = [L.output_names[v.name] for v in L.graph.outputs]
    outputs = set(out_names)
    ops = []
    base = {}
    for op in L.ops:
        if op.type == "view":
            src, dst = op.inputs[0], op.outputs[0]
            if t[src].const is not None:
                t[dst].const = t[src].const.reshape(t[dst].phys)
                continue
            root = base.get(src, src)
            if root not in inputs and root not in outputs and dst not in outputs:
                base[dst] = root
                continue
            op = IOp("copy", op.name, op.inputs, op.outputs, {})
        ops.append(op)
    # A graph output that is a graph input, or repeats another output, gets its own copy.
    seen = set()
    for i, name in enumerate(out_names):
        if t[name].const is None and (name in inputs or name in seen):
            new = f"{name}@out{i}"
            t[new] = replace(t[name], name=new)
            ops.append(IOp("copy", "output", [name], [new], {}))
            out_names[i] = new
        seen.add(out_names[i])
    outputs = set(out_names)

    # Liveness of arena buffers (indexed by root name).
    first, last = {}, {}
    for k, op in enumerate(ops):
        for name in op.outputs:
            root = base.get(name, name)
            first.setdefault(root, k)
            last[root] = max(last.get(root, k), k)
        for name in op.inputs:
            root = base.get(name, name)
            last[root] = max(last.get(root, k), k)
    arena = [r for r in first if r not in inputs and r not in outputs and t[r].const is None]
    offsets, end = _place(arena, first, last, {r: _nbytes(t[r]) for r in arena})

    ids, tensors = {}, []

    def tid(name):
        if name in ids:
            return ids[name]
        x = t[name]
        d = {"dtype": DTYPE_CODE[x.dtype], "shape": list(x.phys)}
        root = base.get(name, name)
        if x.const is not None:
            d.update(kind="const", data=np.ascontiguousarray(x.const.reshape(x.phys)))
        elif name in inputs:
            d["kind"] = "input"
        elif name in outputs:
            d["kind"] = "output"
        else:
            d.update(kind="arena", offset=offsets[root])
        ids[name] = len(tensors)
        tensors.append(d)
        return ids[name]

    input_ids = [tid(n) for n in inputs]
    exec_ops = [{"type": op.type, "name": op.name, "inputs": [tid(i) for i in op.inputs],
                 "outputs": [tid(o) for o in op.outputs], "attrs": op.attrs} for op in ops]
    output_ids, consts = [], {}
    for i, name in enumerate(out_names):
        if t[name].const is not None:
            output_ids.append(None)
            consts[i] = t[name].const
        else:
            output_ids.append(tid(name))
    total = sum(_nbytes(t[r]) for r in arena)
    outs = [t[L.output_names[v.name]] for v in L.graph.outputs]
    return Plan(tensors, exec_ops, input_ids, output_ids, consts, end, total,
                [op.type for op in ops], [o.dtype for o in outs], [o.shape for o in outs],
                [o.qparams or (None, None) for o in outs])


def _place(buffers, first, last, size):
    """Greedy by size: returns ({buffer: offset}, arena bytes)."""
    order = sorted(buffers, key=lambda b: (-size[b], first[b]))
    placed = []  # (offset, end, first, last)
    offsets, top = {}, 0
    for b in order:
        need = (size[b] + ALIGN - 1) // ALIGN * ALIGN
        busy = sorted((o, e) for o, e, f, l in placed if not (l < first[b] or last[b] < f))
        best, cursor = None, 0
        for o, e in busy:
            if o - cursor >= need and (best is None or o - cursor < best[1]):
                best = (cursor, o - cursor)
            cursor = max(cursor, e)
        offset = best[0] if best else cursor
        offsets[b] = offset
        placed.append((offset, offset + need, first[b], last[b]))
        top = max(top, offset + need)
    return offsets, top


def plan_facts(plan):
    """Ops by type, MACs, weight bytes and arena bytes of a plan."""
    if plan.facts is not None:
        return plan.facts
    ops, macs, weights = {}, 0, 0
    for op in plan.ops:
        ops[op["type"]] = ops.get(op["type"], 0) + 1
        shapes = [plan.tensors[i]["shape"] for i in op["inputs"] + op["outputs"]]
        weights += sum(v.nbytes for v in op["attrs"].values() if isinstance(v, np.ndarray))
        y = shapes[-1]
        if op["type"] in ("qconv", "conv"):
            w = op["attrs"]["weight"].shape
            macs += int(np.prod(y)) * w[1] * w[2] * w[3]
        elif op["type"] in ("qgemm", "gemm"):
            macs += int(np.prod(y)) * op["attrs"]["weight"].shape[1]
        elif op["type"] == "matmul":
            macs += int(np.prod(y)) * shapes[0][-1]
    weights += sum(t["data"].nbytes for t in plan.tensors if t["kind"] == "const")
    return {"ops": ops, "macs": macs, "weight_bytes": weights, "arena_bytes": plan.arena_bytes}
