"""The API server through the official ``kubernetes`` client, read as raw JSON.

Objects are never deserialised into the client's typed models: a field newer than the client would be
dropped there, and podsec must judge what the API server stored. Every list call sends ``limit`` and
follows ``continue`` until the server stops returning one (a page may hold fewer items than asked).
Connection, TLS and auth problems become one :class:`ClusterError` line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from podsec.errors import PodsecError

PAGE_SIZE = 500
REQUEST_TIMEOUT = (10.0, 60.0)  # connect, read (seconds)


class ClusterError(PodsecError):
    """The cluster could not be reached or refused a request."""


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind lives in the API: ``/api/v1/pods`` or ``/apis/apps/v1/deployments``."""

    kind: str
    group_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


NAMESPACES = Resource("Namespace", "v1", "namespaces", namespaced=False)
PODS = Resource("Pod", "v1", "pods")
CONTROLLERS = (
    Resource("CronJob", "batch/v1", "cronjobs"),
    Resource("Deployment", "apps/v1", "deployments"),
    Resource("StatefulSet", "apps/v1", "statefulsets"),
    Resource("DaemonSet", "apps/v1", "daemonsets"),
    Resource("ReplicationController", "v1", "replicationcontrollers"),
    Resource("ReplicaSet", "apps/v1", "replicasets"),
    Resource("Job", "batch/v1", "jobs"),
)
"""Pod controllers, owners before what they own (a Deployment before its ReplicaSets)."""


def _quiet_client_logs() -> None:
    """urllib3 prints a warning per retry; the one-line error at the end says it all."""
    for name in ("urllib3", "urllib3.connectionpool", "kubernetes"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` from a kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``) or, with
    none of those and a service-account token mounted, the in-cluster config."""
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    _quiet_client_logs()
    cfg = client.Configuration()
    try:
        default = os.path.expanduser(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
        if kubeconfig is None and not os.environ.get("KUBECONFIG") and not os.path.exists(default) \
                and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg,
                                    persist_config=False)
    except ConfigException as exc:
        raise ClusterError(f"kubeconfig: {exc}", file=kubeconfig) from None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"kubeconfig: {exc}", file=kubeconfig) from None
    cfg.retries = 0
    return client.ApiClient(cfg)


def _error(exc: BaseException, api: Any, path: str) -> ClusterError:
    """One line for what went wrong talking to the API server."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError, MaxRetryError

    host = getattr(api.configuration, "host", "")
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        try:
            body = orjson.loads(exc.body or b"{}")
            message = body.get("message") if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            message = None
        detail = f": {message}" if message else ""
        return ClusterError(f"GET {path}: {exc.status} {reason}{detail}".rstrip(), file=host)
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, HTTPError | OSError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text:
            text = "connection refused"
        elif "CERTIFICATE_VERIFY_FAILED" in text:
            text = "TLS certificate verification failed (check the kubeconfig's certificate-authority)"
        return ClusterError(f"cannot reach the API server: {text}", file=host)
    return ClusterError(f"GET {path}: {type(exc).__name__}: {exc}", file=host)


def get_json(api: Any, path: str, query: list[tuple[str, Any]] | None = None,
             timeout: Any = REQUEST_TIMEOUT) -> dict:
    """One GET through the client's transport (auth, TLS, proxies as the kubeconfig says), as a dict."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        method, url, headers, body, post = api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        resp = api.call_api(method, url, header_params=headers, body=body, post_params=post,
                            _request_timeout=timeout)
        data = resp.read()
    except (ApiException, HTTPError, OSError) as exc:
        raise _error(exc, api, path) from None
    if not 200 <= resp.status <= 299:
        raise _error(ApiException(status=resp.status, reason=resp.reason, body=data), api, path)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ClusterError(f"GET {path}: the API server did not answer JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ClusterError(f"GET {path}: the API server did not answer an object")
    return doc


def list_pages(api: Any, res: Resource, namespace: str | None = None, limit: int = PAGE_SIZE,
               ) -> Iterator[list[dict]]:
    """Each page of a list call, following ``continue`` tokens; only one page is held at a time."""
    for page, _ in list_pages_meta(api, res, namespace, limit):
        yield page


def list_objects(api: Any, res: Resource, namespace: str | None = None, limit: int = PAGE_SIZE,
                 ) -> Iterator[dict]:
    """Every object of a list call, one page in memory at a time, with ``kind`` filled in."""
    for page in list_pages(api, res, namespace, limit):
        for obj in page:
            obj.setdefault("kind", res.kind)
            obj.setdefault("apiVersion", res.group_version)
            yield obj


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace kubectl would use without ``-n``: the context's, the service account's, else default."""
    import os

    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
        ns = ((chosen or {}).get("context") or {}).get("namespace")
        if isinstance(ns, str) and ns:
            return ns
    except (ConfigException, OSError, ValueError):
        sa = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        if os.path.exists(sa):
            with open(sa) as fh:
                return fh.read().strip() or "default"
    return "default"


def list_pages_meta(api: Any, res: Resource, namespace: str | None = None, limit: int = PAGE_SIZE,
                    ) -> Iterator[tuple[list[dict], dict]]:
    """Like :func:`list_pages`, with each page's list ``metadata`` (its ``resourceVersion`` starts a watch)."""
    path = res.path(namespace)
    token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        query: list[tuple[str, Any]] = [("limit", limit)]
        if token:
            query.append(("continue", token))
        doc = get_json(api, path, query)
        items = doc.get("items")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        yield ([i for i in items if isinstance(i, dict)] if isinstance(items, list) else []), meta
        token = meta.get("continue")
        if not token:
            return
        if token in seen_tokens:  # a server that loops would keep podsec busy forever
            raise ClusterError(f"GET {path}: the API server returned the same continue token twice")
        seen_tokens.add(token)


def server_version(api: Any) -> str | None:
    """The API server's ``major.minor`` from ``/version`` (its schema decides which fields exist), None when
    it does not say."""
    try:
        doc = get_json(api, "/version", timeout=(5.0, 10.0))
    except ClusterError:
        return None
    major, minor = str(doc.get("major") or ""), str(doc.get("minor") or "").rstrip("+")
    return f"{major}.{minor}" if major.isdigit() and minor.isdigit() else None
