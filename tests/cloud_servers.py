"""Test servers for the cloud fallback, all on 127.0.0.1.

FaultServer: an Open Inference Protocol (v2 REST) server written on raw sockets, so that it can
misbehave on purpose: stall after accept, 500, 503 with Retry-After, reset or close mid-response,
a body shorter than its Content-Length, a slow trickle, malformed JSON, a wrong id, shape or
datatype. It answers correctly otherwise, computing outputs with a model function, and counts
every connection and byte it receives (local_only must leave both at zero). Its own v2 codec is
written here, independently of edgert.cloud.protocol, so each side checks the other.

MLServer: a real MLServer (`mlserver start`) in its own virtual environment, see mlserver_venv().
"""
import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path

import numpy as np

_DT = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "UINT8": np.uint8,
       "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}
_NAME = {np.dtype(v): k for k, v in _DT.items()}
STALL_S = 20.0  # a stalled connection is released after this (or when the server stops)


def free_port():
    """A port nothing listens on (for 'connection refused' and for MLServer's ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultServer:
    """fn(dict name -> array) -> dict name -> array computes correct answers. meta: the model
    metadata dict served at v2/models/{name}. Faults for successive infer requests are taken
    from `script(...)`; once the script is empty, `default` applies (normally "ok")."""

    def __init__(self, fn, name, meta, *, binary=False, tls=None, default="ok", flaky=(), seed=0):
        self.fn, self.name, self.meta, self.binary = fn, name, meta, binary
        self.default = default
        self.flaky = list(flaky)  # default "flaky": a random one of these per request
        self._rng = np.random.default_rng(seed)
        self._faults = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = set()
        self.connections = 0
        self.bytes_in = 0
        self.infer_requests = 0
        self.request_log = []  # (method, path, content-type)
        self.infer_ids = []
        self._ctx = None
        if tls is not None:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(*tls)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # --- control ------------------------------------------------------------------------------
    def script(self, *faults):
        with self._lock:
            self._faults.clear()
            self._faults.extend(faults)

    def reset_counters(self):
        with self._lock:
            self.connections = self.bytes_in = self.infer_requests = 0
            self.request_log.clear()
            self.infer_ids.clear()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- serving ------------------------------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _next_fault(self):
        with self._lock:
            self.infer_requests += 1
            fault = self._faults.popleft() if self._faults else self.default
            if fault == "flaky":
                fault = self.flaky[int(self._rng.integers(len(self.flaky)))]
            return fault

    def _serve(self, conn):
        try:
            conn.settimeout(STALL_S)
            if self._ctx is not None:
                conn = self._ctx.wrap_socket(conn, server_side=True)
            buf = b""
            while not self._stop.is_set():
                req, buf = self._read_request(conn, buf)
                if req is None:
                    return
                if not self._handle(conn, *req):
                    return
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _recv(self, conn):
        data = conn.recv(65536)
        with self._lock:
            self.bytes_in += len(data)
        return data

    def _read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            data = self._recv(conn)
            if not data:
                return None, b""
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            data = self._recv(conn)
            if not data:
                return None, b""
            buf += data
        body, buf = buf[:n], buf[n:]
        with self._lock:
            self.request_log.append((method, path, headers.get("content-type"),
                                     headers.get("authorization")))
        return (method, path, headers, body), buf

    def _send(self, conn, status, body, headers=None, content_length=None):
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                  504: "Gateway Timeout"}.get(status, "X")
        h = {"Content-Type": "application/json",
             "Content-Length": str(len(body) if content_length is None else content_length)}
        h.update(headers or {})
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        conn.sendall(head.encode() + b"\r\n" + body)

    def _json(self, conn, status, doc, headers=None):
        self._send(conn, status, json.dumps(doc).encode(), headers)
        return True

    def _handle(self, conn, method, path, headers, body):
        base = f"/v2/models/{self.name}"
        if method == "GET" and path == "/v2/health/ready":
            return self._json(conn, 200, {})
        if method == "GET" and path == "/v2":
            return self._json(conn, 200, {"name": "faultserver", "version": "1", "extensions":
                                          ["binary_tensor_data"] if self.binary else []})
        if method == "GET" and path == base:
            return self._json(conn, 200, self.meta)
        if method == "GET" and path == base + "/ready":
            return self._json(conn, 200, {})
        if method == "POST" and path == base + "/infer":
            return self._infer(conn, headers, body)
        return self._json(conn, 404, {"error": f"no route {method} {path}"})

    def _infer(self, conn, headers, body):
        fault = self._next_fault()
        kind, _, arg = fault.partition(":")
        if kind == "stall":
            self._stop.wait(STALL_S)
            return False
        if kind in ("500", "400", "429", "502", "503", "504"):
            extra = {"Retry-After": arg} if arg else {}
            return self._json(conn, int(kind), {"error": f"injected {kind}"}, extra)
        if kind == "close":  # closes before answering anything
            return False
        req, out_binary = self._decode(headers, body)
        with self._lock:
            self.infer_ids.append(req.get("id"))
        outs = self.fn(req["_arrays"])
        doc = {"model_name": self.name, "id": req.get("id"), "outputs": []}
        blobs = []
        for name, a in outs.items():
            a = np.ascontiguousarray(a)
            shape, dt = list(a.shape), _NAME[a.dtype]
            if kind == "wrong_shape":
                shape = shape[:-1] + [shape[-1] + 1]
                a = np.concatenate([a.reshape(-1), a.reshape(-1)[:int(np.prod(shape[:-1]))]])
            if kind == "wrong_dtype":
                a, dt = a.astype(np.float64), "FP64"
            t = {"name": name, "shape": shape, "datatype": dt}
            if out_binary:
                raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
                t["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            else:
                t["data"] = a.reshape(-1).tolist()
            doc["outputs"].append(t)
        if kind == "wrong_id":
            doc["id"] = "not-" + str(req.get("id"))
        head = json.dumps(doc).encode()
        payload = head + b"".join(blobs)
        extra = {"Inference-Header-Content-Length": str(len(head))} if out_binary else {}
        if kind == "badjson":
            payload, extra = b'{"id": "' + str(req.get("id")).encode() + b'", "outputs": [{', {}
        if kind == "short":  # promises more than it sends, then closes
            self._send(conn, 200, payload, extra, content_length=len(payload) + 100)
            return False
        if kind == "reset":  # headers and half the body, then a TCP reset
            self._send(conn, 200, payload[: len(payload) // 2], extra, content_length=len(payload))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if kind == "trickle":  # one byte every 50 ms
            self._send(conn, 200, b"", extra, content_length=len(payload))
            for i in range(len(payload)):
                if self._stop.wait(0.05):
                    return False
                conn.sendall(payload[i:i + 1])
            return True
        self._send(conn, 200, payload, extra)
        return True

    def _decode(self, headers, body):
        n = headers.get("inference-header-content-length")
        head, blob = (body[:int(n)], body[int(n):]) if n is not None else (body, b"")
        req = json.loads(head)
        arrays, off = {}, 0
        for t in req["inputs"]:
            dt = np.dtype(_DT[t["datatype"]])
            size = (t.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                a = np.frombuffer(blob[off:off + size], dt.newbyteorder("<")).astype(dt)
                off += size
            else:
                a = np.asarray(t["data"], dt)
            arrays[t["name"]] = a.reshape(t["shape"])
        req["_arrays"] = arrays
        out_binary = any((o.get("parameters") or {}).get("binary_data") for o in req.get("outputs", []))
        out_binary = out_binary or bool((req.get("parameters") or {}).get("binary_data_output"))
        return req, out_binary


def meta_for(session, name):
    """v2 model metadata of an edgert session, as a server of the same model would declare."""
    t = lambda a: {"name": a.name, "datatype": _NAME[np.dtype(a.dtype)],  # noqa: E731
                   "shape": [d if isinstance(d, int) else -1 for d in a.shape]}
    return {"name": name, "versions": ["1"], "platform": "onnx",
            "inputs": [t(a) for a in session.get_inputs()],
            "outputs": [t(a) for a in session.get_outputs()]}


def self_signed_cert(directory):
    """(certfile, keyfile) of a fresh self-signed certificate for 127.0.0.1, made with the
    `cryptography` package or the openssl CLI; None if neither is available."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            return None
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           capture_output=True, timeout=60)
        return (cert, key) if r.returncode == 0 else None
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                        critical=False)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .sign(k, hashes.SHA256()))
    Path(cert).write_bytes(c.public_bytes(serialization.Encoding.PEM))
    Path(key).write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


# --- MLServer ----------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGERT_MLSERVER_VENV",
                           Path.home() / ".cache" / "edgert-mlserver-venv"))
MLSERVER_PIP = ["mlserver>=1.6", "onnxruntime>=1.17", "onnx>=1.14",
                # edgert's build requirements: built without isolation into a kept build dir,
                # so a changed checkout rebuilds incrementally
                "scikit-build-core>=0.8", "pybind11>=2.11"]


class Unavailable(Exception):
    """MLServer cannot be installed or started here; the tests skip with this reason."""


def _repo_hash():
    """A hash of what `pip install REPO` builds, so a changed checkout is reinstalled."""
    h = hashlib.sha256()
    for sub in ("pyproject.toml", "CMakeLists.txt", "csrc", "src"):
        p = REPO / sub
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()
                                               and "__pycache__" not in q.parts)
        for f in files:
            h.update(str(f.relative_to(REPO)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _run(cmd, timeout, what):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what} took longer than {timeout}s") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        raise Unavailable(f"{what} failed (exit {r.returncode}): " + " | ".join(tail))


def mlserver_venv(log=print):
    """The python of a venv with mlserver, onnxruntime and this checkout of edgert installed.
    Kept at $EDGERT_MLSERVER_VENV (default ~/.cache/edgert-mlserver-venv) and reused; edgert is
    reinstalled when the checkout's sources change. Raises Unavailable if pip cannot do it."""
    py = VENV / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    lock = Path(str(VENV) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    import fcntl
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)  # two test runs at once must not install over each other
        if not py.exists():
            log(f"creating {VENV}")
            _run([sys.executable, "-m", "venv", str(VENV)], 120, "python -m venv")
        marker = VENV / "edgert-mlserver.ok"
        if not marker.exists() or marker.read_text().split() != MLSERVER_PIP:
            log("pip install " + " ".join(MLSERVER_PIP))
            _run(pip + MLSERVER_PIP, 1200, "pip install mlserver")
            marker.write_text(" ".join(MLSERVER_PIP) + "\n")
        stamp = VENV / "edgert-src.hash"
        want = _repo_hash()
        if not stamp.exists() or stamp.read_text().strip() != want:
            build = VENV / ("edgert-build-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8])
            log(f"pip install {REPO} (build dir {build})")
            _run(pip + ["--no-deps", "--no-build-isolation", "--force-reinstall",
                        f"--config-settings=build-dir={build}", str(REPO)],
                 1200, "pip install edgert")
            stamp.write_text(want + "\n")
    return py


class MLServer:
    """`mlserver start` on 127.0.0.1 with free ports over a directory of model folders, each
    holding a model-settings.json. Waits for v2/health/ready; close() stops it."""

    def __init__(self, python, models_dir, timeout_s=120):
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        Path(models_dir, "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": self.http_port, "grpc_port": self.grpc_port,
            "metrics_port": free_port(), "metrics_endpoint": None, "parallel_workers": 0,
            "debug": False}))
        env = dict(os.environ, MLSERVER_HOST="127.0.0.1", MLSERVER_HTTP_PORT=str(self.http_port),
                   MLSERVER_GRPC_PORT=str(self.grpc_port), MLSERVER_METRICS_PORT=str(free_port()),
                   MLSERVER_PARALLEL_WORKERS="0", PYTHONPATH="")
        mlserver = Path(python).parent / "mlserver"
        self.log = tempfile.NamedTemporaryFile("w+", suffix="-mlserver.log", delete=False)
        self.proc = subprocess.Popen([str(mlserver), "start", str(models_dir)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=models_dir,
                                     start_new_session=True)
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise Unavailable(f"mlserver exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.close()
        raise Unavailable(f"mlserver not ready after {timeout_s}s: {self.tail()}")

    def tail(self, n=15):
        self.log.flush()
        return " | ".join(Path(self.log.name).read_text(errors="replace").splitlines()[-n:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# --- shared test fixtures' pieces --------------------------------------------------------------
def tiny_model_bytes():
    from nets import tiny_cnn
    return tiny_cnn().SerializeToString()


def serve_session(session, name="tiny", **kw):
    """A FaultServer answering with `session` (a separate edgert Session of the same model)."""
    names = [o.name for o in session.get_outputs()]
    return FaultServer(lambda feed: dict(zip(names, session.run(None, feed))), name,
                       meta_for(session, name), **kw)
