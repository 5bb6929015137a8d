"""The decision of one `Session.infer` call (local or cloud, and why), and the session's stats.

prefer_local: local, unless the model can't run here (unsupported op), local would miss the
deadline while the cloud would not, local failed, or its answer is below min_confidence (then
escalated if the cloud fits the time left; if the cloud fails, the local answer comes back
marked low_confidence). prefer_cloud: the cloud, unless its breaker is open, it would miss the
deadline while local would not, or it fails: then local. local_only never touches the network;
cloud_only raises one CloudError when the cloud fails.
"""
import threading
import time
from collections import deque

import numpy as np

from ..errors import EdgertError, InputError
from .errors import CloudError, CloudMetadataError
from .estimate import CloudEstimator, LocalEstimator
from .policy import Policy, Result
from .protocol import datatype_of, shape_matches, shape_str


class _Call:
    __slots__ = ("t0", "deadline", "sent", "received", "attempts")

    def __init__(self, t0, deadline):
        self.t0, self.deadline = t0, deadline
        self.sent = self.received = self.attempts = 0

    def remaining_ms(self):
        return None if self.deadline is None else (self.deadline - time.monotonic()) * 1000.0

    def fits(self, estimate_ms):
        """Unknown estimates and calls without a deadline fit."""
        r = self.remaining_ms()
        return r is None or estimate_ms is None or estimate_ms <= r


class Router:
    def __init__(self, session, fallback=None, policy=None, unsupported=None):
        self.session = session
        self.fallback = fallback
        self.policy = policy or Policy()
        self.unsupported = unsupported  # the UnsupportedOpError of a cloud-only session
        self.local_est = LocalEstimator()
        self.cloud_est = (CloudEstimator(fallback.expected_rtt_ms, fallback.throughput_Bps)
                          if fallback is not None else None)
        self._stats = _Stats()
        self._meta_lock = threading.Lock()
        self._meta_state = "pending"
        self._binary = False
        self._in_names = [i.name for i in session.get_inputs()]
        outs = session.get_outputs()
        self._expected = [(o.name, o.dtype, o.shape) for o in outs]
        self._out_bytes = sum(int(np.prod([d if isinstance(d, int) and d > 0 else 1
                                           for d in (o.shape or [])])) * o.dtype.itemsize
                              for o in outs)

    # --- public ------------------------------------------------------------------------------
    def infer(self, inputs, deadline_ms=None):
        t0 = time.monotonic()
        d = self.policy.deadline_ms if deadline_ms is None else deadline_ms
        if d is not None and not (isinstance(d, (int, float)) and d > 0):
            raise InputError(f"deadline_ms must be a positive number, got {d!r}")
        arrays = self.session._check_inputs(self._feed(inputs))
        call = _Call(t0, None if d is None else t0 + d / 1000.0)
        try:
            res = self._decide(arrays, call)
        except BaseException as e:
            self._stats.failed(getattr(e, "reason", None) or type(e).__name__, call)
            raise
        res.latency_ms = (time.monotonic() - t0) * 1000.0
        res.attempts = call.attempts
        self._stats.record(res, call)
        return res

    def predict(self, x, deadline_ms=None):
        return self.infer({self._in_names[0]: x}, deadline_ms).first

    def stats(self):
        s = self._stats.snapshot()
        s["mode"] = "cloud_only" if self.unsupported is not None else self.policy.mode
        s["cloud_only_reason"] = "unsupported-op" if self.unsupported is not None else None
        s["breaker"] = self.fallback.breaker.snapshot() if self.fallback is not None else None
        s["metadata"] = self._meta_state if self.fallback is not None else None
        rtt, bps = self.cloud_est.model() if self.cloud_est is not None else (None, None)
        s["estimates"] = {"local_ms": self.local_est.estimate(), "cloud_rtt_ms": rtt,
                          "cloud_throughput_Bps": bps}
        return s

    # --- the decision ------------------------------------------------------------------------
    def _decide(self, arrays, call):
        mode = self.policy.mode
        if self.unsupported is not None:
            return self._cloud_or_raise(arrays, call, "unsupported-op")
        if mode == "local_only" or self.fallback is None:
            return self._result(self._local(arrays), "local", "policy")
        if mode == "cloud_only":
            return self._cloud_or_raise(arrays, call, "policy")
        payload = self._payload(arrays)
        cloud_est = self.cloud_est.estimate(payload)
        local_est = self.local_est.estimate()

        if mode == "prefer_cloud":
            if not call.fits(cloud_est) and call.fits(local_est):
                return self._result(self._local(arrays), "local", "deadline")
            try:
                return self._result(self._cloud(arrays, call), "cloud", "policy")
            except CloudMetadataError:
                raise
            except CloudError as e:
                return self._result(self._local(arrays), "local", _fallback_reason(e),
                                    cloud_error=str(e))

        # prefer_local
        fell_back = None
        if not call.fits(local_est) and call.fits(cloud_est) and self.fallback.breaker.state == "closed":
            try:
                return self._result(self._cloud(arrays, call), "cloud", "deadline")
            except CloudMetadataError:
                raise
            except CloudError as e:  # local still answers, late rather than never
                fell_back = e
        try:
            outs = self._local(arrays)
        except (InputError, KeyboardInterrupt):
            raise
        except Exception as le:
            try:
                return self._result(self._cloud(arrays, call), "cloud", "local-error")
            except CloudMetadataError:
                raise
            except CloudError as ce:
                raise le from ce
        if fell_back is not None:
            return self._result(outs, "local", _fallback_reason(fell_back), cloud_error=str(fell_back))
        if self.policy.min_confidence is None:
            return self._result(outs, "local", "policy")
        conf = self._confidence(outs)
        if conf >= self.policy.min_confidence:
            return self._result(outs, "local", "policy", confidence=conf)
        if not call.fits(self.cloud_est.estimate(payload)):
            return self._result(outs, "local", "deadline", confidence=conf, low_confidence=True)
        try:
            return self._result(self._cloud(arrays, call), "cloud", "low-confidence", confidence=conf)
        except CloudMetadataError:
            raise
        except CloudError as e:
            return self._result(outs, "local", _fallback_reason(e), confidence=conf,
                                low_confidence=True, cloud_error=str(e))

    def _cloud_or_raise(self, arrays, call, reason):
        return self._result(self._cloud(arrays, call), "cloud", reason)

    # --- the two paths -----------------------------------------------------------------------
    def _local(self, arrays):
        t = time.monotonic()
        outs = self.session.run(None, dict(zip(self._in_names, arrays)))
        self.local_est.add((time.monotonic() - t) * 1000.0)
        return {e[0]: a for e, a in zip(self._expected, outs)}

    def _cloud(self, arrays, call):
        fb = self.fallback
        if not fb.breaker.allow():
            raise CloudError(f"the circuit breaker for {fb.url} is open; not calling the cloud",
                             reason="circuit-open")
        counts = [0, 0]
        outcome = "release"
        try:
            self._ensure_metadata(call, counts)
            t = time.monotonic()
            outs, attempts = fb.infer(list(zip(self._in_names, arrays)), self._expected,
                                      call.deadline, self._binary, counts)
            call.attempts += attempts
            self.cloud_est.add(self._payload(arrays), (time.monotonic() - t) * 1000.0)
            outcome = "success"
            return outs
        except CloudMetadataError as e:
            call.attempts += e.attempts
            raise
        except CloudError as e:
            call.attempts += e.attempts
            if e.attempts > 0 or e.reason not in ("deadline", "token"):
                outcome = "failure"
            raise
        finally:
            call.sent += counts[0]
            call.received += counts[1]
            {"success": fb.breaker.success, "failure": fb.breaker.failure,
             "release": fb.breaker.release}[outcome]()

    def _ensure_metadata(self, call, counts):
        if self._meta_state != "pending":
            return
        r = call.remaining_ms()
        if not self._meta_lock.acquire(timeout=-1 if r is None else max(0.0, r / 1000.0)):
            raise CloudError("no time left to check the cloud model's metadata", reason="deadline")
        try:
            if self._meta_state != "pending":
                return
            fb = self.fallback
            state = "skipped"
            if fb.check_metadata:
                meta = fb.model_metadata(call.deadline, counts)
                state = check_metadata(meta, fb, self.session.get_inputs(), self.session.get_outputs())
            self._binary = fb.uses_binary(call.deadline, counts)
            self._meta_state = state
        finally:
            self._meta_lock.release()

    # --- helpers -----------------------------------------------------------------------------
    def _result(self, outs, served_by, reason, **kw):
        return Result(outs, served_by, reason, 0.0, 0, **kw)

    def _confidence(self, outs):
        try:
            return float(self.policy.confidence(outs))
        except Exception as e:
            raise EdgertError(f"the policy's confidence callable failed: {type(e).__name__}: {e}") from e

    def _payload(self, arrays):
        return sum(a.nbytes for a in arrays) + self._out_bytes

    def _feed(self, inputs):
        if isinstance(inputs, dict):
            return inputs
        if len(self._in_names) == 1:
            return {self._in_names[0]: inputs}
        raise InputError(f"infer takes a dict of name -> array; the model's inputs are {self._in_names}")


def _fallback_reason(e):
    return "circuit-open" if e.reason == "circuit-open" else "cloud-error"


def check_metadata(meta, fb, inputs, outputs):
    """Compares v2 model metadata with the local NodeArgs; raises CloudMetadataError listing
    every difference. Returns "checked", or "unchecked" when the server declares no tensors."""
    problems = []
    name = meta.get("name")
    if name is not None and name != fb.model:
        problems.append(f"the server answered for model {str(name)[:60]!r}, not {fb.model!r}")
    declared = False
    for kind, local, remote in (("input", inputs, meta.get("inputs")),
                                ("output", outputs, meta.get("outputs"))):
        if not isinstance(remote, list) or not remote:
            continue
        declared = True
        by_name = {t.get("name"): t for t in remote if isinstance(t, dict)}
        for a in local:
            t = by_name.get(a.name)
            if t is None:
                problems.append(f"{kind} '{a.name}' is not in the cloud model "
                                f"(it has {sorted(str(k) for k in by_name)[:8]})")
                continue
            want = datatype_of(a.dtype)
            if t.get("datatype") != want:
                problems.append(f"{kind} '{a.name}': cloud datatype {t.get('datatype')}, local {want}")
            shape = t.get("shape")
            if isinstance(shape, list) and a.shape is not None and not (
                    shape_matches(shape, [d if isinstance(d, int) else -1 for d in a.shape])
                    or shape_matches([d if isinstance(d, int) else -1 for d in a.shape], shape)):
                problems.append(f"{kind} '{a.name}': cloud shape {shape_str(shape)}, "
                                f"local {shape_str(a.shape)}")
        if kind == "input":
            extra = [k for k in by_name if k not in {a.name for a in local}]
            if extra:
                problems.append(f"the cloud model also needs input(s) {extra[:8]}")
    if problems:
        raise CloudMetadataError(f"the cloud model {fb.model!r} at {fb.url} does not match the "
                                 "local model:\n  - " + "\n  - ".join(problems))
    return "checked" if declared else "unchecked"


class _Stats:
    _KEEP = 1024

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = {}
        self.errors = {}
        self.lat = {"local": deque(maxlen=self._KEEP), "cloud": deque(maxlen=self._KEEP)}
        self.sent = self.received = self.attempts = self.calls = 0

    def record(self, res, call):
        with self._lock:
            self.calls += 1
            by = self.counts.setdefault(res.served_by, {})
            by[res.reason] = by.get(res.reason, 0) + 1
            self.lat[res.served_by].append(res.latency_ms)
            self._add(call)

    def failed(self, reason, call):
        with self._lock:
            self.calls += 1
            self.errors[reason] = self.errors.get(reason, 0) + 1
            self._add(call)

    def _add(self, call):
        self.sent += call.sent
        self.received += call.received
        self.attempts += call.attempts

    def snapshot(self):
        with self._lock:
            lat = {}
            for path, xs in self.lat.items():
                if xs:
                    a = np.array(xs)
                    p50, p90, p99 = np.percentile(a, [50, 90, 99])
                    lat[path] = {"n": len(a), "mean": float(a.mean()), "p50": float(p50),
                                 "p90": float(p90), "p99": float(p99), "max": float(a.max())}
            return {"calls": self.calls,
                    "served": {p: dict(r) for p, r in self.counts.items()},
                    "errors": dict(self.errors), "latency_ms": lat,
                    "bytes_sent": self.sent, "bytes_received": self.received,
                    "cloud_attempts": self.attempts}
