"""Errors of the cloud path. Each is an EdgertError, so `except edgert.EdgertError` catches them."""
from ..errors import EdgertError


class CloudError(EdgertError):
    """A cloud call failed: unreachable, timed out, refused, or answered something invalid.

    `.reason` is a short slug ("connection", "timeout", "tls", "http-503", "bad-response",
    "circuit-open", "deadline", "token", ...); `.attempts` the HTTP requests sent for the call.
    """

    def __init__(self, message, *, reason="cloud-error", attempts=0, status=None):
        super().__init__(message)
        self.reason = reason
        self.attempts = attempts
        self.status = status


class CloudMetadataError(CloudError):
    """The server's model metadata does not match the local model (names, datatypes, shapes),
    or the server does not have the model. A configuration error: raised, never fallen back from."""

    def __init__(self, message, *, attempts=0):
        super().__init__(message, reason="metadata-mismatch", attempts=attempts)
