"""``podsec webhook serve``: the HTTPS server around :class:`podsec.cluster.decide.Decider`.

- TLS from ``--cert``/``--key``, re-read when either file changes (checked at most once a second, at each
  new connection's handshake), so cert-manager or a kubelet-refreshed Secret rotates without a restart; a
  pair that fails to load keeps the old one and says so.
- ``POST /validate`` answers an AdmissionReview; ``GET /healthz`` is always 200; ``GET /readyz`` is 200 once
  the namespace cache holds every namespace.
- Namespace labels come from a list-then-watch cache (re-listed when the watch expires), never from an
  API call per request; a namespace the cache does not hold yet is read live, as PSA reads it.
- Bounded: request bodies over 8 MiB are refused (413), idle keep-alive connections close after 60 s, at
  most 256 connections are served at once.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from podsec.cluster import kube
from podsec.cluster.decide import Decider, NamespaceLookupError

log = logging.getLogger("podsec.webhook")

MAX_BODY = 8 << 20
IDLE_TIMEOUT = 60.0
WATCH_TIMEOUT = 300
LIVE_LOOKUP_TIMEOUT = (2.0, 3.0)
MAX_NAMESPACES = 100_000
MAX_CONNECTIONS = 256


class CertReloader:
    """The server's TLS context, rebuilt when the certificate or key file changes."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert, self.key = cert, key
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._checked = time.monotonic()
        self.context = self._load()  # raises on a bad first pair: the server cannot start without one
        self.listening = self._listening_context()

    def _files_stamp(self) -> tuple[float, float, int, int]:
        c, k = os.stat(self.cert), os.stat(self.key)
        return (c.st_mtime, k.st_mtime, c.st_ino, k.st_ino)

    def _load(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _listening_context(self) -> ssl.SSLContext:
        ctx = self._load()
        ctx.sni_callback = self._pick
        return ctx

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.context = self.current()

    def current(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return self.context
        with self._lock:
            self._checked = now
            try:
                stamp = self._files_stamp()
            except OSError as exc:
                log.error("cannot stat the certificate or key: %s; keeping the loaded pair", exc)
                return self.context
            if stamp != self._stamp:
                try:
                    self.context = self._load()
                    self._stamp = stamp
                    log.info("reloaded the certificate from %s", self.cert)
                except (OSError, ssl.SSLError) as exc:
                    log.error("cannot load the new certificate/key (%s); keeping the loaded pair", exc)
        return self.context


class NamespaceCache:
    """Namespace name → labels, kept by list + watch in a thread; ``ready`` once the first list is in."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.labels: dict[str, dict] = {}
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="namespace-watch", daemon=True)

    def start(self) -> NamespaceCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def __call__(self, name: str) -> dict:
        found = self.labels.get(name)
        if found is not None:
            return found
        try:
            doc = kube.get_json(self.api, kube.NAMESPACES.path(name=name), timeout=LIVE_LOOKUP_TIMEOUT)
        except kube.ClusterError as exc:
            raise NamespaceLookupError(exc.message) from None
        labels = self._labels(doc)
        if len(self.labels) < MAX_NAMESPACES:
            self.labels[name] = labels
        return labels

    @staticmethod
    def _labels(obj: dict) -> dict:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return {k: v for k, v in labels.items() if isinstance(k, str) and k.startswith("pod-security.kubernetes.io/")} \
            if isinstance(labels, dict) else {}

    def _relist(self) -> str:
        fresh: dict[str, dict] = {}
        rv = ""
        for page, meta in kube.list_pages_meta(self.api, kube.NAMESPACES):
            rv = meta.get("resourceVersion") or rv
            for ns in page:
                name = (ns.get("metadata") or {}).get("name")
                if isinstance(name, str) and len(fresh) < MAX_NAMESPACES:
                    fresh[name] = self._labels(ns)
        self.labels = fresh
        self.ready.set()
        return rv

    def _run(self) -> None:
        from kubernetes import client, watch

        v1 = client.CoreV1Api(self.api)
        backoff = 1.0
        while not self._stop.is_set():
            try:
                rv = self._relist()
                backoff = 1.0
                w = watch.Watch()
                for event in w.stream(v1.list_namespace, resource_version=rv, timeout_seconds=WATCH_TIMEOUT,
                                      allow_watch_bookmarks=True, deserialize=False):
                    if self._stop.is_set():
                        w.stop()
                        return
                    obj = event.get("raw_object") if isinstance(event, dict) else None
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind == "ERROR" or not isinstance(obj, dict):
                        break  # expired resourceVersion (410) and the like: list again
                    name = (obj.get("metadata") or {}).get("name")
                    if not isinstance(name, str):
                        continue
                    if kind == "DELETED":
                        self.labels.pop(name, None)
                    elif kind in ("ADDED", "MODIFIED") and (name in self.labels or len(self.labels) < MAX_NAMESPACES):
                        self.labels[name] = self._labels(obj)
            except Exception as exc:  # the API server went away: keep serving from the cache, retry
                log.warning("namespace watch: %s; retrying in %.0fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: WebhookServer

    def log_message(self, format: str, *args: Any) -> None:  # the access log stays quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        """Status, headers and body in one write: one TLS record, no wait on the peer's delayed ACK."""
        self.send_response_only(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n" + body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b"ok", "text/plain")
        elif self.path == "/readyz":
            ready = self.server.cache.ready.is_set()
            self._send(200 if ready else 503, b"ok" if ready else b"namespace cache not synced", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/validate":
            self._send(404, b"not found", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(411, b"Content-Length required", "text/plain")
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, b"request body too large", "text/plain")
            return
        body = self.rfile.read(length)
        try:
            doc = orjson.loads(body)
            answer = self.server.decider.review(doc)
        except (orjson.JSONDecodeError, ValueError) as exc:
            self._send(400, str(exc).encode(), "text/plain")
            return
        resp = answer["response"]
        req = doc["request"]
        if not resp["allowed"] and not req.get("dryRun"):
            log.info("denied %s %s/%s: %s", req.get("kind", {}).get("kind"), req.get("namespace"),
                     req.get("name"), resp.get("status", {}).get("message"))
        self._send(200, orjson.dumps(answer))


class WebhookServer(ThreadingHTTPServer):
    """A thread per connection; TLS is negotiated in that thread, not in the accept loop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], decider: Decider, cache: NamespaceCache,
                 certs: CertReloader) -> None:
        self.decider = decider
        self.cache = cache
        self.certs = certs
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, at most MAX_CONNECTIONS at once: past that a new connection is closed (the
        API server retries or, with failurePolicy Ignore, admits), so no client can make the server grow."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.certs.listening.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError):
            return  # a client that went away or spoke no TLS
        log.exception("error serving %s", client_address)


def serve(api: Any, decider_factory: Any, cert: str, key: str, host: str = "0.0.0.0", port: int = 8443,
          ready_file: str | None = None) -> None:
    """Run until interrupted (SIGTERM/SIGINT stop it cleanly)."""
    import signal

    certs = CertReloader(cert, key)
    cache = NamespaceCache(api).start()
    decider = decider_factory(cache)
    httpd = WebhookServer((host, port), decider, cache, certs)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving on https://%s:%d (/validate, /healthz, /readyz)", host, httpd.server_address[1])
    if ready_file:
        with open(ready_file + ".tmp", "w") as fh:
            fh.write(str(httpd.server_address[1]))
        os.replace(ready_file + ".tmp", ready_file)
    import gc

    gc.collect()
    gc.freeze()  # the imported code and caches are permanent: keep the collector from re-scanning them per request
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        cache.stop()
        httpd.server_close()
        log.info("stopped")
        # Handler and watch threads are daemons still blocked in reads: keep them from writing to stderr while
        # the interpreter shuts down (a daemon thread holding stderr's lock then aborts the process).
        logging.disable(logging.CRITICAL)
