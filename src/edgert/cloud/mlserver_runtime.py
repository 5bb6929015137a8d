"""MLServer runtimes: the cloud side of the fallback, served by `mlserver start`.

    EdgertRuntime       serves an int8 ONNX model with edgert (the same answers as the device)
    OnnxRuntimeRuntime  serves a (float) ONNX model with onnxruntime

Point a model-settings.json at one of them (see MLSERVER.md beside this file):

    {"name": "digits", "implementation": "edgert.cloud.mlserver_runtime.EdgertRuntime",
     "parameters": {"uri": "./model_int8.onnx", "version": "1", "extra": {"threads": 2}}}

Both declare the model's inputs and outputs (name, datatype, shape) in their v2 metadata, which
edgert's client checks against the device's model on first use. This module imports mlserver,
so it is only for the server's environment (pip install mlserver edgert).
"""
import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import (InferenceRequest, InferenceResponse, MetadataModelResponse,
                            MetadataTensor, ResponseOutput)

_V2 = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64", np.dtype(np.float16): "FP16",
       np.dtype(np.uint8): "UINT8", np.dtype(np.int8): "INT8", np.dtype(np.int32): "INT32",
       np.dtype(np.int64): "INT64", np.dtype(np.bool_): "BOOL"}
_ORT = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
        "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
        "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


async def _model_path(model):
    """The settings' parameters.uri, resolved against the model-settings.json folder."""
    try:
        from mlserver.utils import get_model_uri
        return await get_model_uri(model.settings)
    except ImportError:  # pragma: no cover - older MLServer
        uri = model.settings.parameters.uri
        base = os.path.dirname(getattr(model.settings, "_source", "") or ".")
        return uri if os.path.isabs(uri) else os.path.join(base, uri)


def _extra(model):
    p = model.settings.parameters
    return dict(getattr(p, "extra", None) or {}) if p is not None else {}


def _tensor(name, dtype, shape):
    return MetadataTensor(name=name, datatype=_V2[np.dtype(dtype)],
                          shape=[d if isinstance(d, int) and d >= 0 else -1 for d in (shape or [])])


def _declare(model):
    """Also put the tensors in the settings, where MLServer versions that don't call our
    metadata() (or index inputs for decoding) look for them."""
    try:
        model.inputs = [_tensor(*t) for t in model._inputs]
        model.outputs = [_tensor(*t) for t in model._outputs]
    except (AttributeError, TypeError, ValueError):
        pass


class _Runtime(MLModel):
    """Shared v2 plumbing: decode inputs, check them against the model, encode outputs."""

    _inputs = ()   # [(name, dtype, shape)]
    _outputs = ()

    async def metadata(self) -> MetadataModelResponse:
        return MetadataModelResponse(
            name=self.name, platform=self.platform,
            versions=[self.version] if self.version else [],
            inputs=[_tensor(*t) for t in self._inputs],
            outputs=[_tensor(*t) for t in self._outputs])

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        expected = {n: (d, s) for n, d, s in self._inputs}
        feed = {}
        for inp in payload.inputs:
            if inp.name not in expected:
                raise InferenceError(f"unknown input {inp.name!r}; the model takes {sorted(expected)}")
            dtype = expected[inp.name][0]
            if inp.datatype != _V2[np.dtype(dtype)]:
                raise InferenceError(f"input {inp.name!r}: datatype {inp.datatype}, the model "
                                     f"takes {_V2[np.dtype(dtype)]}")
            a = NumpyCodec.decode_input(inp)
            feed[inp.name] = np.ascontiguousarray(a, dtype=dtype).reshape(inp.shape)
        missing = sorted(set(expected) - set(feed))
        if missing:
            raise InferenceError(f"missing input(s) {missing}")
        wanted = [o.name for o in payload.outputs] if payload.outputs else None
        names = [n for n, _, _ in self._outputs]
        bad = [n for n in (wanted or []) if n not in names]
        if bad:
            raise InferenceError(f"unknown output(s) {bad}; the model has {names}")
        try:
            results = self._run(feed)
        except Exception as e:  # a bad shape or a model failure: a 400 with the message
            raise InferenceError(f"{type(e).__name__}: {e}") from None
        outs = dict(zip(names, results))
        return InferenceResponse(
            id=payload.id, model_name=self.name, model_version=self.version,
            outputs=[_output(n, outs[n]) for n in (wanted or names)])


def _output(name, a):
    a = np.asarray(a)
    return ResponseOutput(name=name, shape=list(a.shape), datatype=_V2[a.dtype],
                          data=a.reshape(-1).tolist())


class EdgertRuntime(_Runtime):
    """Serves an int8 (or float) ONNX model with edgert. parameters.extra: {"threads": n}."""

    platform = "edgert"

    async def load(self) -> bool:
        import edgert
        path = await _model_path(self)
        self._session = edgert.load(path, threads=_extra(self).get("threads"))
        self._inputs = [(a.name, a.dtype, a.shape) for a in self._session.get_inputs()]
        self._outputs = [(a.name, a.dtype, a.shape) for a in self._session.get_outputs()]
        _declare(self)
        self.ready = True
        return self.ready

    def _run(self, feed):
        return self._session.run(None, feed)


class OnnxRuntimeRuntime(_Runtime):
    """Serves an ONNX model with onnxruntime's CPU provider. parameters.extra:
    {"threads": n} (intra-op threads)."""

    platform = "onnxruntime"

    async def load(self) -> bool:
        import onnxruntime as ort
        path = await _model_path(self)
        so = ort.SessionOptions()
        threads = _extra(self).get("threads")
        if threads:
            so.intra_op_num_threads = int(threads)
        self._session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        dims = lambda s: [d if isinstance(d, int) else None for d in s]  # noqa: E731
        self._inputs = [(a.name, _ORT[a.type], dims(a.shape)) for a in self._session.get_inputs()]
        self._outputs = [(a.name, _ORT[a.type], dims(a.shape)) for a in self._session.get_outputs()]
        _declare(self)
        self.ready = True
        return self.ready

    def _run(self, feed):
        return self._session.run(None, feed)
