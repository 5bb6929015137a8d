"""Cloud fallback: hand requests to an Open Inference Protocol (KServe v2) server when local
inference can't or shouldn't serve them, and answer locally when the cloud can't.

    fb = edgert.CloudFallback("https://infer.example.com", "digits")
    sess = edgert.load("model.onnx", fallback=fb, policy=edgert.Policy(deadline_ms=50))
    r = sess.infer({"input": x})          # Result: outputs, served_by, reason, latency_ms, attempts

Nothing here imports urllib3 until a CloudFallback is created (the `cloud` extra).
"""
from .client import CloudFallback
from .errors import CloudError, CloudMetadataError
from .policy import Policy, Result


def _checked(fallback, policy):
    from ..errors import EdgertError
    policy = Policy() if policy is None else policy
    if not isinstance(policy, Policy):
        raise EdgertError(f"policy must be an edgert.Policy, got {type(policy).__name__}")
    if fallback is not None and not isinstance(fallback, CloudFallback):
        raise EdgertError(f"fallback must be an edgert.CloudFallback, got {type(fallback).__name__}")
    if fallback is None and policy.mode in ("prefer_cloud", "cloud_only"):
        raise EdgertError(f"Policy mode {policy.mode!r} needs a fallback=edgert.CloudFallback(...)")
    return policy


def attach(graph, threads, fallback, policy, consume=False):
    """edgert.load of an ONNX graph with a fallback or a policy: the Session with its router. A
    model with ops edgert cannot run loads cloud-only when a fallback is configured (not under
    local_only). `consume`: see Session."""
    from ..errors import UnsupportedOpError
    from ..session import Session
    from .router import Router
    policy = _checked(fallback, policy)
    unsupported = None
    try:
        sess = Session(graph, threads=threads, consume=consume)
    except UnsupportedOpError as e:
        if fallback is None or policy.mode == "local_only":
            raise
        sess, unsupported = Session._cloud_only(graph, threads), e
    sess._cloud = Router(sess, fallback if policy.mode != "local_only" else None, policy, unsupported)
    return sess


def attach_session(session, fallback, policy):
    """edgert.load of an already built Session (e.g. a compiled .edgert file) with a fallback or
    a policy."""
    from .router import Router
    policy = _checked(fallback, policy)
    session._cloud = Router(session, fallback if policy.mode != "local_only" else None, policy)
    return session


def local_router(session):
    """The router of a Session loaded without fallback or policy: local only."""
    from .router import Router
    return Router(session, None, Policy("local_only"))


__all__ = ["CloudFallback", "Policy", "Result", "CloudError", "CloudMetadataError"]
