"""edgert: an on-device int8 inference runtime with an onnxruntime-style API.

    import edgert
    sess = edgert.load("model.onnx")
    y = sess.run(None, {"input": x})[0]
"""
# Lets a development build of _core in another directory on sys.path join this package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import os as _os

from .errors import (ConfigError, EdgertError, InputError, MissingDependencyError, ModelError,
                     UnsupportedOpError)
from .session import NodeArg, Session

__version__ = "0.1.0"
__all__ = ["load", "Session", "NodeArg", "EdgertError", "ModelError", "UnsupportedOpError",
           "InputError", "MissingDependencyError", "ConfigError", "isa", "__version__",
           "CloudFallback", "Policy", "Result", "CloudError", "CloudMetadataError", "compile"]

# Anything bigger than this is not a model for an edge device; refuse before reading it.
_MAX_MODEL_BYTES = 2 << 30


def load(model, *, threads=None, fallback=None, policy=None):
    """Loads a model from a path or from bytes and returns a Session.

    `threads`: the intra-op threads for this session (default: the CPU cores this process may
    use). `fallback` (an edgert.CloudFallback) and `policy` (an edgert.Policy) set how
    Session.infer picks local or cloud; with a fallback, a model with ops edgert cannot run loads
    cloud-only.
    """
    return _load(model, threads, fallback, policy)


def _load(model, threads, fallback, policy, for_file=None):
    """load(); `for_file` ("portable" or "native") plans an .onnx model for an .edgert file
    (see Session)."""
    from . import _core
    from . import format as _format
    try:  # settings the session's executors read, checked before any work
        _core.spin_budget_us()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if _format.is_edgert(data):
            return _with_cloud(_format.read(data, threads), fallback, policy)
        from .onnx_import import read_onnx
        graph = read_onnx(data)  # views of the caller's bytes (a bytes object is not copied)
    elif isinstance(model, (str, _os.PathLike)):
        path = _os.fspath(model)
        session = None
        try:
            # One descriptor and few system calls (on some VMs each costs tens of microseconds):
            # an .edgert file is recognized in its mapping and read from it.
            fd = _os.open(path, _os.O_RDONLY)
            try:
                mapped = _format.map_edgert(fd)
                size = len(mapped) if mapped is not None else _os.fstat(fd).st_size
                if size > _MAX_MODEL_BYTES:
                    raise ModelError(f"model file '{path}' is {size} bytes; the limit is {_MAX_MODEL_BYTES}")
                if mapped is not None:
                    session = _format.read(mapped, threads, name=path)
                else:
                    with open(fd, "rb", closefd=False) as f:
                        data = f.read()
            finally:
                _os.close(fd)
        except OSError as e:
            raise ModelError(f"cannot read model file '{path}': {e.strerror or e}") from None
        if session is not None:
            return _with_cloud(session, fallback, policy)
        if _format.is_edgert(data):  # a file that cannot be mapped (a pipe, say)
            return _with_cloud(_format.read(data, threads), fallback, policy)
        # The file's bytes are ours: the graph copies its tensors out of them and they are
        # freed at once; the session then frees each layer's weights once it has packed them.
        from .onnx_import import read_onnx
        graph = read_onnx(data, own=True)
        del data
    else:
        raise EdgertError(f"load() takes a path or bytes, got {type(model).__name__}")
    if fallback is not None or policy is not None:  # cloud fallback: edgert.cloud decides
        from .cloud import attach
        return attach(graph, threads, fallback, policy, consume=True)
    return Session(graph, threads=threads, for_file=for_file, consume=True)


def __getattr__(name):
    # The cloud-fallback classes load on first use, so `import edgert` stays light.
    if name in ("CloudFallback", "Policy", "Result", "CloudError", "CloudMetadataError"):
        from . import cloud
        return getattr(cloud, name)
    raise AttributeError(f"module 'edgert' has no attribute {name!r}")


def _with_cloud(session, fallback, policy):
    if fallback is None and policy is None:
        return session
    from .cloud import attach_session
    return attach_session(session, fallback, policy)


def compile(model, path, *, threads=None, native=False):  # noqa: A001 - the command's name
    """Compiles a model (path or bytes of .onnx) to an .edgert file; returns the Session.
    The file runs under every ISA. By default it is planned for any of them (int8 activations
    stay int8, channel orders for byte pairs are chosen); `native=True` plans it for this
    machine's ISA, as a loaded .onnx is (on x86, int8 activations run as uint8), which is
    faster here and slower on a CPU that prefers the other."""
    sess = _load(model, threads, None, None, for_file="native" if native else "portable")
    from .format import write
    write(sess, path)
    return sess


def isa():
    """The instruction set the kernels run with: "amx", "avx512vnni", "avx2", "neon" or "scalar"
    (the best this CPU and build support; EDGERT_ISA=<name> picks another)."""
    from . import _core
    return _core.isa()
