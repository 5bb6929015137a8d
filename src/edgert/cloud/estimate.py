"""Latency estimators from recent measurements, for deadline decisions.

Local: the 90th percentile of the last runs. Cloud: round trip plus transfer, ms = rtt + k*bytes,
fitted by least squares over recent calls (k from a prior throughput until the payload sizes vary
enough), with the intercept taken at the 90th percentile of the residuals so it errs on the slow
side. Unknown (no measurement, no prior) means "assume it fits".
"""
import threading
from collections import deque

import numpy as np

_WINDOW = 64


class LocalEstimator:
    """The first run (cold caches, threads waking up) only counts until there is another."""

    def __init__(self):
        self._ms = deque(maxlen=32)
        self._first = None
        self._lock = threading.Lock()

    def add(self, ms):
        with self._lock:
            if self._first is None:
                self._first = float(ms)
            else:
                self._ms.append(float(ms))

    def estimate(self):
        with self._lock:
            if not self._ms:
                return self._first
            return float(np.percentile(np.array(self._ms), 90))


class CloudEstimator:
    def __init__(self, prior_rtt_ms=None, prior_throughput_Bps=10e6):
        self.prior_rtt_ms = prior_rtt_ms
        self.prior_throughput = float(prior_throughput_Bps)
        self._xy = deque(maxlen=_WINDOW)
        self._lock = threading.Lock()

    def add(self, payload_bytes, ms):
        with self._lock:
            self._xy.append((float(payload_bytes), float(ms)))

    def model(self):
        """(rtt_ms, throughput bytes/s) or (None, throughput) when nothing is known."""
        with self._lock:
            pts = list(self._xy)
        slope = 1000.0 / self.prior_throughput  # ms per byte
        if not pts:
            return self.prior_rtt_ms, self.prior_throughput
        x = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts])
        if len(pts) >= 4 and x.std() > 0.1 * max(x.mean(), 1.0):
            fit = np.polyfit(x, y, 1)[0]
            if fit > 0:
                slope = float(fit)
        rtt = float(np.percentile(y - slope * x, 90))
        return max(rtt, 0.0), 1000.0 / slope

    def estimate(self, payload_bytes):
        rtt, bps = self.model()
        if rtt is None:
            return None
        return rtt + 1000.0 * payload_bytes / bps
