"""A circuit breaker: after `threshold` consecutive failures the cloud is skipped for `cooldown_s`,
then a single probe call decides (success closes it, failure opens it for another cool-down)."""
import threading
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, threshold=5, cooldown_s=30.0, clock=None):
        if threshold < 1 or cooldown_s < 0:
            raise ValueError("breaker threshold must be >= 1 and cooldown_s >= 0")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._opens = 0

    def allow(self):
        """True when a call may go to the cloud now. In half-open, only one caller (the probe)."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self.clock() - self._opened_at < self.cooldown_s:
                    return False
                self._state = HALF_OPEN
                self._probing = False
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self):
        with self._lock:
            self._state, self._failures, self._probing = CLOSED, 0, False

    def failure(self):
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                if self._state != OPEN:
                    self._opens += 1
                self._state, self._opened_at, self._probing = OPEN, self.clock(), False

    def release(self):
        """A call that was allowed but never reached the server (e.g. no time left): if it was the
        probe, let the next caller probe instead."""
        with self._lock:
            self._probing = False

    @property
    def state(self):
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown_s:
                return HALF_OPEN
            return self._state

    def snapshot(self):
        state = self.state
        with self._lock:
            return {"state": state, "consecutive_failures": self._failures, "opened": self._opens,
                    "threshold": self.threshold, "cooldown_s": self.cooldown_s}
