"""A Kubernetes API emulator for the cluster tests: kmock's ``KubernetesEmulator`` served from a thread.

kmock 0.8 lists everything in one response, serves plain HTTP only and knows no resources until an object
of them exists; the official client and podsec need paging (``limit``/``continue``), TLS and the resource
discovery documents. Those are added here, in the test fixture, never in podsec. ``max_page`` makes the
server return fewer items than asked, as a real one may.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import kmock
from kmock._internal import parsing as _parsing

RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/pods": ("Pod", True),
    "v1/replicationcontrollers": ("ReplicationController", True),
    "apps/v1/deployments": ("Deployment", True),
    "apps/v1/replicasets": ("ReplicaSet", True),
    "apps/v1/statefulsets": ("StatefulSet", True),
    "apps/v1/daemonsets": ("DaemonSet", True),
    "batch/v1/jobs": ("Job", True),
    "batch/v1/cronjobs": ("CronJob", True),
}


def _parse_path(path: str) -> Any:
    """kmock reads ``/api/v1/namespaces[/NAME]`` as a namespace prefix with nothing after it: read the
    Namespace resource itself there, as the API server does."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 5 and (len(parts) < 5 or parts[4] in ("status",
                                                                                                        "finalize")):
        return _parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) > 3 else None,
                                   parts[4] if len(parts) > 4 else None)
    return _original_parse_path(path)


_original_parse_path = _parsing.parse_path
_parsing.parse_path = _parse_path


class PagingEmulator(kmock.KubernetesEmulator):
    """The emulator with list paging, list kinds as the API server sends them, and bearer-token checks."""

    max_page: int | None = None
    token: str | None = None

    async def _handle(self, request: Any) -> Any:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise kmock.KubernetesError(status=401, reason="Unauthorized", message="Unauthorized")
        return await super()._handle(request)

    async def _serve_list(self, request: Any) -> Any:
        doc = await super()._serve_list(request)
        items = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in doc["items"]]
        items.sort(key=lambda o: (o.get("metadata", {}).get("namespace") or "", o.get("metadata", {}).get("name")))
        start = int(base64.b64decode(request.params["continue"]).decode()) if request.params.get("continue") else 0
        limit = int(request.params.get("limit") or 0) or len(items)
        if self.max_page:
            limit = min(limit, self.max_page)
        page = items[start:start + limit]
        meta: dict[str, Any] = {"resourceVersion": "1"}
        if start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        res = request.resource
        kind = RESOURCES.get(f"{res.group + '/' if res.group else ''}{res.version}/{res.plural}", (None,))[0]
        return {"kind": f"{kind}List", "apiVersion": f"{res.group + '/' if res.group else ''}{res.version}",
                "metadata": meta, "items": page}


class _TLSServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's test server with a TLS context (kmock's ``Server`` starts it without one)."""

    def __init__(self, handler: Any, *, tls: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._tls = tls

    async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
        await super().start_server(loop=loop, ssl=self._tls, **kwargs)


class Emulator:
    """A running emulator: ``url``, ``add(obj)``, ``kubeconfig(path)``; ``call(coro_fn)`` runs on its loop."""

    def __init__(self, tls: Any = None, max_page: int | None = None, token: str | None = None) -> None:
        self.tls = tls  # a trustme.CA or None
        self.max_page = max_page
        self.token = token  # the bearer token every request must carry (None: any)
        self.url = ""
        self.handler: PagingEmulator | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        ctx = None
        if self.tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self._stop = asyncio.Event()
        handler = PagingEmulator()
        handler.max_page = self.max_page
        handler.token = self.token
        for key, (kind, namespaced) in RESOURCES.items():
            handler.resources[key].kind = kind
            handler.resources[key].namespaced = namespaced
            handler.resources[key].verbs = {"get", "list", "watch", "create", "patch", "delete"}
        server_cls = functools.partial(_TLSServer, tls=ctx)
        async with handler, kmock.Server(handler, server_cls=server_cls) as srv:  # type: ignore[arg-type]
            self.handler = handler
            self.url = f"{'https' if ctx else 'http'}://127.0.0.1:{srv.port}"
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Emulator:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def add(self, obj: dict) -> None:
        """Store an object as the API server would have it (its kind picks the resource)."""
        kind = obj["kind"]
        key = next(k for k, (knd, _) in RESOURCES.items() if knd == kind)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{kind.lower()}-{meta.get('namespace', '')}-{meta['name']}")
        ns = meta.get("namespace") if RESOURCES[key][1] else None
        assert self.handler is not None
        self.handler.objects[key, ns, meta["name"]] = obj

    def kubeconfig(self, path: Path, token: str = "t0ken") -> Path:
        import yaml

        cluster: dict[str, Any] = {"server": self.url}
        if self.tls is not None:
            ca = path.parent / "emulator-ca.pem"
            self.tls.cert_pem.write_to_path(str(ca))
            cluster["certificate-authority"] = str(ca)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emu",
            "clusters": [{"name": "emu", "cluster": cluster}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u"}}],
        }))
        return path

    @property
    def requests(self) -> list[Any]:
        assert self.handler is not None
        return list(self.handler._requests)


@contextmanager
def running(tls: Any = None, max_page: int | None = None, token: str | None = None) -> Iterator[Emulator]:
    emu = Emulator(tls, max_page, token).start()
    try:
        yield emu
    finally:
        emu.stop()


if __name__ == "__main__":
    # python tests/kube_emulator.py KUBECONFIG: serve the demo cluster (tests/cluster_objects.demo) on loopback,
    # write a kubeconfig for it, and run until Ctrl-C.
    import signal
    import sys

    from cluster_objects import demo

    with running() as emu:
        demo(emu)
        emu.kubeconfig(Path(sys.argv[1]))
        print(f"API emulator on {emu.url}; kubeconfig in {sys.argv[1]}", flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()
