"""Policy (how a Session chooses between local and cloud) and Result (what infer returns)."""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from ..errors import EdgertError

MODES = ("prefer_local", "prefer_cloud", "local_only", "cloud_only")


class Policy:
    """How `Session.infer` picks a path.

    mode: "prefer_local" (default; the cloud serves unsupported models, deadlines local can't
          meet, low-confidence answers and local failures), "prefer_cloud" (local serves when the
          cloud is slow, failing, unreachable or its breaker is open), "local_only" (nothing is
          ever sent) or "cloud_only".
    deadline_ms: the default deadline of a call (infer's deadline_ms overrides it).
    min_confidence: escalate a local answer whose confidence is below this to the cloud.
    confidence: callable(outputs: dict name -> array) -> float; default: the largest softmax
          probability of the first output (taken as probabilities when its rows already are),
          the minimum over the batch.
    """

    def __init__(self, mode="prefer_local", deadline_ms=None, min_confidence=None, confidence=None):
        if mode not in MODES:
            raise EdgertError(f"Policy mode must be one of {', '.join(MODES)}; got {mode!r}")
        if deadline_ms is not None and not (isinstance(deadline_ms, (int, float)) and deadline_ms > 0):
            raise EdgertError(f"Policy deadline_ms must be a positive number, got {deadline_ms!r}")
        if min_confidence is not None and not isinstance(min_confidence, (int, float)):
            raise EdgertError(f"Policy min_confidence must be a number, got {min_confidence!r}")
        if confidence is not None and not callable(confidence):
            raise EdgertError("Policy confidence must be a callable on the outputs dict")
        self.mode = mode
        self.deadline_ms = deadline_ms
        self.min_confidence = min_confidence
        self.confidence = confidence or default_confidence

    def __repr__(self):
        return (f"Policy(mode={self.mode!r}, deadline_ms={self.deadline_ms}, "
                f"min_confidence={self.min_confidence})")


def default_confidence(outputs):
    """The largest class probability of the first output (min over the batch)."""
    y = np.asarray(next(iter(outputs.values())), dtype=np.float64)
    if y.size == 0:
        return 0.0
    y = y.reshape(-1, y.shape[-1]) if y.ndim > 1 else y.reshape(1, -1)
    sums = y.sum(axis=1)
    if not (np.all(y >= 0) and np.all(y <= 1) and np.allclose(sums, 1.0, atol=1e-3)):
        e = np.exp(y - y.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
    return float(y.max(axis=1).min())


@dataclass
class Result:
    """What `Session.infer` returns.

    outputs: name -> array. served_by: "local" | "cloud". reason: why that path ("policy",
    "unsupported-op", "deadline", "low-confidence", "local-error", "cloud-error",
    "circuit-open"). latency_ms: wall time of the whole call. attempts: HTTP requests sent to
    the cloud for this call (0 when nothing was sent). confidence: the local answer's confidence
    when the policy computed it. low_confidence: True when a local answer below min_confidence is
    returned because escalating it failed or did not fit (reason tells why). cloud_error: the
    message of the cloud failure this call fell back from, if any.
    """
    outputs: Dict[str, np.ndarray]
    served_by: str
    reason: str
    latency_ms: float
    attempts: int = 0
    confidence: Optional[float] = None
    low_confidence: bool = False
    cloud_error: Optional[str] = field(default=None, repr=False)

    @property
    def first(self):
        """The first output (what predict returns)."""
        return next(iter(self.outputs.values()))


ConfidenceFn = Callable[[Dict[str, np.ndarray]], float]
