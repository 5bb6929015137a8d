"""The graph IR edgert imports models into, and the checks every imported graph passes.

A Graph holds ONNX-level nodes (op type, domain, attributes as Python values), constants as
numpy arrays, and the graph's inputs and outputs. Passes (qdq.py) rewrite it; lower.py turns it
into the executor's internal ops for concrete input shapes.
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError

# No tensor of a model for an edge device needs more elements than this (1 GiB of fp32);
# refusing larger ones keeps hostile files from causing huge allocations.
MAX_ELEMENTS = 1 << 28
MAX_RANK = 32  # numpy 1.x's limit (2.x takes 64); ONNX models on devices use up to 6 or so


@dataclass
class Node:
    op_type: str
    inputs: list          # tensor names; "" marks an omitted optional input
    outputs: list
    attrs: dict = field(default_factory=dict)
    name: str = ""
    domain: str = ""      # "" for the default ONNX domain, "com.microsoft" for contrib ops

    def input(self, i):
        return self.inputs[i] if i < len(self.inputs) and self.inputs[i] else None

    def where(self):
        return f"node '{self.name}' ({self.op_type})"


@dataclass
class ValueInfo:
    name: str
    dtype: np.dtype
    shape: tuple          # ints, or None for a symbolic/unknown dimension; None if rank unknown


@dataclass
class Graph:
    nodes: list
    constants: dict       # name -> np.ndarray
    inputs: list          # ValueInfo, excluding constants
    outputs: list         # ValueInfo (shape may be unknown)
    opset: int = 13
    name: str = ""

    def producers(self):
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self):
        users = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        return users


def check_elements(shape, what):
    """Validates a declared shape and returns its element count, refusing absurd sizes."""
    if len(shape) > MAX_RANK:
        raise ModelError(f"{what}: shape of rank {len(shape)}; the most edgert takes is {MAX_RANK}")
    count = span = 1
    for d in shape:
        if not isinstance(d, (int, np.integer)) or d < 0:
            raise ModelError(f"{what}: invalid dimension {d!r} in shape {tuple(shape)}")
        count *= int(d)
        span *= max(int(d), 1)  # zeros aside too: numpy cannot hold a shape past this
        if span > MAX_ELEMENTS:
            raise ModelError(f"{what}: shape {tuple(shape)} has dimensions multiplying past "
                             f"{MAX_ELEMENTS} elements")
    return count


def sort_and_check(graph):
    """Orders nodes topologically; rejects cycles, dangling names and duplicate definitions."""
    defined = set(graph.constants) | {v.name for v in graph.inputs}
    producer = {}
    for n in graph.nodes:
        for o in n.outputs:
            if not o:
                continue
            if o in producer or o in defined:
                raise ModelError(f"tensor '{o}' is defined twice (again by {n.where()})")
            producer[o] = n
    for n in graph.nodes:
        for i in n.inputs:
            if i and i not in producer and i not in defined:
                raise ModelError(f"{n.where()} reads tensor '{i}', which nothing defines")
    for v in graph.outputs:
        if v.name not in producer and v.name not in defined:
            raise ModelError(f"graph output '{v.name}' is never produced")

    pending = {id(n): sum(1 for i in set(n.inputs) if i in producer) for n in graph.nodes}
    users = {}
    for n in graph.nodes:
        for i in set(n.inputs):
            if i in producer:
                users.setdefault(i, []).append(n)
    ready = [n for n in graph.nodes if pending[id(n)] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for o in n.outputs:
            for u in users.get(o, []):
                pending[id(u)] -= 1
                if pending[id(u)] == 0:
                    ready.append(u)
    if len(order) != len(graph.nodes):
        stuck = [n.name or n.op_type for n in graph.nodes if pending[id(n)] > 0][:5]
        raise ModelError(f"the graph has a cycle (through nodes {', '.join(stuck)})")
    graph.nodes = order
    return graph


def remove_dead(graph):
    """Drops nodes none of whose outputs reach a graph output."""
    live = {v.name for v in graph.outputs}
    kept = []
    for n in reversed(graph.nodes):
        if any(o in live for o in n.outputs):
            kept.append(n)
            live.update(i for i in n.inputs if i)
    graph.nodes = kept[::-1]
    graph.constants = {k: v for k, v in graph.constants.items() if k in live}
    return graph
