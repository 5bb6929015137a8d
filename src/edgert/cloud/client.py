"""CloudFallback: an Open Inference Protocol (KServe v2 REST) client for one model on one server.

urllib3 does the HTTP (pooled keep-alive connections, TLS verified against the system store or a
given CA bundle). This module adds what inference under a deadline needs: connect and read
timeouts cut to the time left, the body read in pieces with the deadline checked in between (a
server that trickles bytes cannot hold a call past it), retries only where a retry can help
(connection failures, 429/502/503/504) with Retry-After honoured and jittered exponential backoff,
all inside the deadline, and a circuit breaker shared by every session using this fallback.
"""
import email.utils
import logging
import random
import threading
import time
import uuid
from urllib.parse import quote

from ..errors import EdgertError, MissingDependencyError
from . import protocol
from .breaker import CircuitBreaker
from .errors import CloudError, CloudMetadataError

log = logging.getLogger("edgert.cloud")

RETRY_STATUS = frozenset({429, 502, 503, 504})
_CHUNK = 64 << 10


def _urllib3():
    try:
        import urllib3
    except ImportError:
        raise MissingDependencyError("the cloud fallback needs urllib3: pip install 'edgert[cloud]'") from None
    return urllib3


class CloudFallback:
    """Where and how to reach the cloud model.

    url: the server's base URL ("https://host:8080"); model, version: the model's name and
    optional version. token: a callable returning a bearer token (called per request, so it may
    refresh; never logged nor shown by repr). ca_bundle: a PEM file of CAs to trust instead of
    the system store (TLS is always verified). connect_timeout_s / read_timeout_s: upper bounds,
    cut further to what remains of a call's deadline. retries: extra attempts after a connection
    failure or a 429/502/503/504. backoff_s / max_backoff_s: jittered exponential backoff between
    attempts; max_retry_after_s: a longer Retry-After gives up instead of waiting.
    failure_threshold / cooldown_s / clock: the circuit breaker (clock: a callable in seconds,
    time.monotonic by default). binary: use the binary tensor extension (None: when the server's
    metadata lists it). expected_rtt_ms / throughput_Bps: priors of the cloud latency estimate.
    check_metadata: compare the server's model metadata with the local model on first use.
    """

    def __init__(self, url, model, *, version=None, token=None, ca_bundle=None,
                 connect_timeout_s=3.0, read_timeout_s=30.0, retries=2, backoff_s=0.05,
                 max_backoff_s=1.0, max_retry_after_s=10.0, failure_threshold=5, cooldown_s=30.0,
                 clock=None, binary=None, expected_rtt_ms=None, throughput_Bps=10e6,
                 check_metadata=True, pool_size=16, max_response_bytes=256 << 20, headers=None,
                 rng=None):
        self._u3 = _urllib3()
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EdgertError(f"CloudFallback url must start with http:// or https://, got {url!r}")
        if not model or not isinstance(model, str):
            raise EdgertError("CloudFallback needs the model's name")
        if token is not None and not callable(token):
            secret = str(token)
            token = lambda: secret  # noqa: E731  (kept in a closure, out of repr and vars)
        if retries < 0 or connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise EdgertError("retries must be >= 0 and timeouts > 0")
        self.url = url.rstrip("/")
        self.model = model
        self.version = None if version is None else str(version)
        self._token = token
        self.ca_bundle = ca_bundle
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.binary = binary
        self.expected_rtt_ms = expected_rtt_ms
        self.throughput_Bps = throughput_Bps
        self.check_metadata = check_metadata
        self.max_response_bytes = int(max_response_bytes)
        self._extra_headers = dict(headers or {})
        self.breaker = CircuitBreaker(failure_threshold, cooldown_s, clock)
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        kw = {"maxsize": pool_size, "block": False, "retries": False}
        if self.url.startswith("https://"):
            kw.update(cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle)
        self._pool = self._u3.PoolManager(**kw)
        self._server_meta = None
        self._meta_lock = threading.Lock()

    def __repr__(self):
        v = f", version={self.version!r}" if self.version else ""
        return (f"CloudFallback(url={self.url!r}, model={self.model!r}{v}, "
                f"token={'<callable>' if self._token else None}, ca_bundle={self.ca_bundle!r})")

    __str__ = __repr__

    # --- endpoints --------------------------------------------------------------------------
    @property
    def model_path(self):
        p = f"/v2/models/{quote(self.model, safe='')}"
        return p + (f"/versions/{quote(self.version, safe='')}" if self.version else "")

    def server_ready(self, timeout_s=5.0):
        """GET v2/health/ready: True when the server says it is ready."""
        try:
            return self.request("GET", "/v2/health/ready", deadline=time.monotonic() + timeout_s,
                                retry=False)[0] == 200
        except CloudError:
            return False

    def model_ready(self, timeout_s=5.0):
        try:
            return self.request("GET", self.model_path + "/ready",
                                deadline=time.monotonic() + timeout_s, retry=False)[0] == 200
        except CloudError:
            return False

    def server_metadata(self, deadline=None, counts=None):
        """GET v2 -> dict (name, version, extensions); cached after the first success."""
        with self._meta_lock:
            if self._server_meta is not None:
                return self._server_meta
        status, _, body, _ = self.request("GET", "/v2", deadline=deadline, ok=(200, 404),
                                          counts=counts)
        meta = _json_object(body, "server metadata") if status == 200 else {}
        with self._meta_lock:
            self._server_meta = meta
        return meta

    def model_metadata(self, deadline=None, counts=None):
        """GET v2/models/{m}[/versions/{v}] -> dict; a 404 is a CloudMetadataError."""
        status, _, body, n = self.request("GET", self.model_path, deadline=deadline, ok=(200, 404),
                                          counts=counts)
        if status == 404:
            raise CloudMetadataError(f"the server at {self.url} has no model {self.model!r}"
                                     + (f" version {self.version!r}" if self.version else "")
                                     + _error_text(body), attempts=n)
        return _json_object(body, "model metadata")

    def uses_binary(self, deadline=None, counts=None):
        if self.binary is not None:
            return bool(self.binary)
        ext = self.server_metadata(deadline, counts).get("extensions") or []
        return isinstance(ext, list) and protocol.BINARY_EXTENSION in ext

    def infer(self, inputs, expected, deadline=None, binary=False, counts=None):
        """POST …/infer. inputs: list of (name, array); expected: list of (name, dtype, shape).

        Returns (outputs dict, attempts); raises CloudError (its .attempts set). counts: an
        optional [bytes sent, bytes received] list, added to.
        """
        rid = uuid.uuid4().hex
        body, headers = protocol.encode_request(rid, inputs, [e[0] for e in expected], binary)
        status, rh, data, attempts = self.request("POST", self.model_path + "/infer", body=body,
                                                  headers=headers, deadline=deadline, counts=counts)
        try:
            outs = protocol.decode_response(data, rh, rid, expected)
        except CloudError as e:
            e.attempts = attempts
            raise
        return outs, attempts

    # --- HTTP with deadlines and retries -----------------------------------------------------
    def request(self, method, path, *, body=None, headers=None, deadline=None, retry=True,
                ok=(200,), counts=None):
        """One logical request with its retries. Returns (status, headers, body, attempts);
        raises CloudError for anything but an `ok` status. counts: [sent, received] added to."""
        u3 = self._u3
        attempts = 0
        counts = counts if counts is not None else [0, 0]
        url = self.url + path
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0.002:
                raise CloudError(f"no time left for {method} {path} (deadline reached)",
                                 reason="deadline" if attempts == 0 else "timeout", attempts=attempts)
            cap = lambda t: t if remaining is None else max(0.001, min(t, remaining))  # noqa: E731
            hdrs = dict(self._extra_headers)
            hdrs.update(headers or {})
            if self._token is not None:
                hdrs["Authorization"] = "Bearer " + self._bearer(attempts)
            attempts += 1
            retry_after, status, why = None, None, None
            try:
                resp = self._pool.request(method, url, body=body, headers=hdrs,
                                          timeout=u3.Timeout(connect=cap(self.connect_timeout_s),
                                                             read=cap(self.read_timeout_s)),
                                          retries=False, redirect=False, preload_content=False)
                counts[0] += len(body or b"")
                try:
                    data = self._read_body(resp, deadline, self.read_timeout_s)
                except BaseException:
                    resp.close()  # half read: the connection must not go back to the pool
                    raise
                finally:
                    resp.release_conn()
                counts[1] += len(data)
                status = resp.status
                if status in ok:
                    return status, resp.headers, data, attempts
                why = CloudError(f"{method} {path}: HTTP {status}{_error_text(data)}",
                                 reason=f"http-{status}", attempts=attempts, status=status)
                if status not in RETRY_STATUS:
                    raise why
                retry_after = _retry_after(resp.headers.get("Retry-After"))
            except CloudError:
                raise
            except (u3.exceptions.SSLError,) as e:
                raise CloudError(f"TLS failure talking to {self.url}: {_short(e)}", reason="tls",
                                 attempts=attempts) from None
            except (u3.exceptions.ConnectTimeoutError, u3.exceptions.NewConnectionError) as e:
                why = CloudError(f"cannot connect to {self.url}: {_short(e)}", reason="connection",
                                 attempts=attempts)
            except u3.exceptions.ReadTimeoutError:
                raise CloudError(f"{method} {path}: no answer in time", reason="timeout",
                                 attempts=attempts) from None
            except _Deadline:
                raise CloudError(f"{method} {path}: the answer did not arrive in time (deadline reached)",
                                 reason="timeout", attempts=attempts) from None
            except (u3.exceptions.ProtocolError, u3.exceptions.HTTPError, OSError) as e:
                counts[0] += len(body or b"")
                why = CloudError(f"{method} {path}: connection broken: {_short(e)}",
                                 reason="connection", attempts=attempts)
            if not retry or attempts > self.retries:
                raise why
            delay = self._backoff(attempts)
            if retry_after is not None:
                if retry_after > self.max_retry_after_s:
                    why.args = (why.args[0] + f" (Retry-After {retry_after:g}s is too long)",)
                    raise why
                delay = retry_after + delay / 4
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise why
            log.debug("%s %s failed (%s); retry %d in %.3fs", method, path, why.reason, attempts, delay)
            time.sleep(delay)

    def _bearer(self, attempts):
        try:
            tok = self._token()
        except Exception as e:
            raise CloudError(f"the token callable failed ({type(e).__name__})", reason="token",
                             attempts=attempts) from None
        if not isinstance(tok, str) or not tok or "\n" in tok or "\r" in tok:
            raise CloudError("the token callable must return a non-empty single-line str",
                             reason="token", attempts=attempts)
        return tok

    def _backoff(self, attempt):
        with self._rng_lock:
            return self._rng.uniform(0.5, 1.0) * min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))

    def _read_body(self, resp, deadline, read_timeout):
        """Reads the whole body in pieces, with the socket timeout cut to what remains before
        each piece and a size cap; a body shorter than its Content-Length is a ProtocolError."""
        chunks, total = [], 0
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Deadline()
                if sock is not None:
                    try:
                        sock.settimeout(max(0.001, min(read_timeout, remaining)))
                    except OSError:
                        pass
            chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > self.max_response_bytes:
                raise CloudError(f"response larger than {self.max_response_bytes} bytes",
                                 reason="bad-response")
            chunks.append(chunk)
        return b"".join(chunks)


class _Deadline(Exception):
    pass


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _short(e):
    s = str(e)
    return s if len(s) <= 200 else s[:200] + "…"


def _error_text(body):
    """': <message>' from a v2 error body {"error": ...}, else a short excerpt."""
    if not body:
        return ""
    try:
        import json
        doc = json.loads(body[:4096])
        msg = doc.get("error") if isinstance(doc, dict) else None
        if msg is None and isinstance(doc, dict):
            msg = doc.get("detail")
        if msg is not None:
            return f": {str(msg)[:200]}"
    except (ValueError, UnicodeDecodeError):
        pass
    return f": {body[:120].decode('utf-8', 'replace')!r}"


def _json_object(body, what):
    import json
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CloudError(f"invalid {what}: malformed JSON", reason="bad-response") from None
    if not isinstance(doc, dict):
        raise CloudError(f"invalid {what}: not a JSON object", reason="bad-response")
    return doc
