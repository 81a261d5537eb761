"""The pod's own facts as the kubelet hands them to a container: env vars and downward API values.

One module for both consumers, so ``run``'s environment and a ``downwardAPI`` volume's files never
disagree: ``fieldRef`` (``podFieldSelectorRuntimeValue`` + ``fieldpath.ExtractFieldPathAsString``),
``resourceFieldRef`` (``ExtractResourceValueByContainerNameAndNodeAllocatable``), ``$(VAR)`` expansion
(``third_party/forked/golang/expansion``), and the ConfigMaps/Secrets given with the pod, looked up by
the pod's namespace as the API server would hold them.

The rules, where two older copies disagreed, are the kubelet's:

* a whole ``metadata.labels``/``metadata.annotations`` is ``fieldpath.FormatMap``: ``key=%q`` lines,
  sorted, values in Go quoting (env used to print them unquoted);
* a ConfigMap/Secret document without ``metadata.namespace`` lives in the pod's namespace, whatever it is
  (``kubectl apply -f`` puts both in the current namespace); one with another namespace is not found;
* resource quantities are parsed exactly (:mod:`podsec.quantity`); unset limits are the node's
  allocatable (:class:`NodeInfo`, this host), unset requests the limit, else 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podsec.goquote import go_quote


class FieldRefError(ValueError):
    """A fieldRef/resourceFieldRef the kubelet cannot answer (its own wording)."""


# -- node ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the downward API's resourceFieldRef falls back to when a container sets no limit."""

    name: str = "localhost"
    cpu_millis: int = 1000
    memory_bytes: int = 0
    ephemeral_storage_bytes: int = 0

    @classmethod
    def from_host(cls, disk: Path | None = None) -> NodeInfo:
        """This host standing in for the node's allocatable: hostname, CPUs, MemTotal, and the size of
        ``disk``'s filesystem (the pod directory's, for ephemeral-storage; its nearest existing parent)."""
        storage = 0
        if disk is not None:
            probe = disk
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            try:
                sv = os.statvfs(probe)
                storage = sv.f_blocks * sv.f_frsize
            except OSError:
                storage = 0
        return cls(name=os.uname().nodename,  # gethostname(), without importing socket
                   cpu_millis=(os.cpu_count() or 1) * 1000, memory_bytes=host_memory_bytes() or 0,
                   ephemeral_storage_bytes=storage)


def host_memory_bytes() -> int | None:
    """MemTotal of this host, standing in for the node's allocatable memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What ``fieldRef`` can read: the pod's metadata plus what the node decided for it."""

    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    node_name: str
    pod_ip: str
    host_ip: str


# -- FormatMap ------------------------------------------------------------------------------------

def format_map(m: Mapping[str, Any]) -> str:
    """``fieldpath.FormatMap``: ``key="value"`` lines sorted by key, no trailing newline."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


# -- fieldRef ------------------------------------------------------------------------------------


def _split_subscript(path: str) -> tuple[str, str] | None:
    """``metadata.labels['key']`` → ("metadata.labels", "key") (``SplitMaybeSubscriptedPath``)."""
    if not path.endswith("']"):
        return None
    head, sep, sub = path[:-2].partition("['")
    if not sep or not head:
        return None
    return head, sub


def _map(meta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = meta.get(key)
    return value if isinstance(value, Mapping) else {}


def field_value(path: str, facts: PodFacts, *, env: bool = True) -> str:
    """The value of ``fieldRef.fieldPath``. ``env=False`` (a volume file): the ``status.*`` paths are
    env-only upstream, so they are refused there; ``spec.*`` is answered in both (podsec's own leniency
    for a manifest that gets past validation)."""
    meta = facts.metadata
    split = _split_subscript(path)
    if split is not None:
        head, sub = split
        if head in ("metadata.annotations", "metadata.labels"):
            value = _map(meta, head.split(".")[1]).get(sub)
            return "" if value is None else str(value)
        raise FieldRefError(f'fieldPath "{path}" does not support subscript')
    if path in ("metadata.annotations", "metadata.labels"):
        return format_map(_map(meta, path.split(".")[1]))
    if path == "metadata.name":
        return str(meta.get("name") or "")
    if path == "metadata.namespace":
        return str(meta.get("namespace") or "default")
    if path == "metadata.uid":
        return str(meta.get("uid") or "")
    if path == "spec.nodeName":
        return str(facts.spec.get("nodeName") or facts.node_name)
    if path == "spec.serviceAccountName":
        return str(facts.spec.get("serviceAccountName") or facts.spec.get("serviceAccount") or "default")
    if env and path in ("status.hostIP", "status.hostIPs"):
        return facts.host_ip
    if env and path in ("status.podIP", "status.podIPs"):
        return facts.pod_ip
    raise FieldRefError(f"unsupported fieldPath: {path}")


# -- resourceFieldRef ----------------------------------------------------------------------------


def find_container(spec: Mapping[str, Any], name: object) -> Mapping[str, Any] | None:
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping) and c.get("name") == name:
                return c
    return None


def resource_value(container: Mapping[str, Any], resource: str, divisor: object, node: NodeInfo) -> str:
    """kubelet ``ExtractContainerResourceValue`` after ``MergeContainerResourceLimits`` with the node's
    allocatable: CPU rounds ``ceil(milli / divisor milli)``, everything else ``ceil(value / divisor)``."""
    from podsec.quantity import parse_quantity  # fractions: only for pods that ask

    div = parse_quantity(divisor if divisor not in (None, "") else "1")
    if div <= 0:
        raise FieldRefError(f"invalid divisor for {resource}")
    res = container.get("resources") if isinstance(container.get("resources"), Mapping) else {}
    limits = dict(res.get("limits") or {})
    requests = dict(res.get("requests") or {})
    node_limits: dict[str, object] = {
        "cpu": f"{node.cpu_millis}m",
        "memory": node.memory_bytes,
        "ephemeral-storage": node.ephemeral_storage_bytes,
    }
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise FieldRefError(f"unsupported container resource : {resource}")
    if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
        raise FieldRefError(f"unsupported container resource : {resource}")
    if kind == "limits":
        raw = limits.get(name, node_limits.get(name, 0))
    else:
        raw = requests.get(name, limits.get(name, 0))
    value = parse_quantity(raw)
    if name == "cpu":
        return str(math.ceil(math.ceil(value * 1000) / math.ceil(div * 1000)))
    return str(math.ceil(math.ceil(value) / math.ceil(div)))


def resource_field_value(ref: Mapping[str, Any], spec: Mapping[str, Any], default_container: object,
                         node: NodeInfo) -> str:
    """``resourceFieldRef`` of an env var (``default_container``: its own) or a volume item (named)."""
    cname = ref.get("containerName") or default_container
    container = find_container(spec, cname)
    if container is None:
        raise FieldRefError(f'container "{cname}" not found')
    return resource_value(container, str(ref.get("resource") or ""), ref.get("divisor"), node)


# -- $(VAR) --------------------------------------------------------------------------------------


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Kubernetes' ``expansion.Expand``: ``$(VAR)`` → value, ``$$`` → ``$``, an undefined or
    unterminated reference stays as written."""
    if "$" not in text:
        return text
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close < 0:
                    out.append("$(")
                else:
                    out.append(mapping(text[cursor + 2 : close]))
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


# -- ConfigMaps and Secrets ----------------------------------------------------------------------


class ObjectStore:
    """ConfigMaps and Secrets from the input files, by (kind, namespace, name).

    A document without ``metadata.namespace`` is taken to live in every namespace, like
    ``kubectl apply -f`` putting the pod and its ConfigMap in the same current namespace.
    """

    def __init__(self, documents: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_ns: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self._any_ns: dict[tuple[str, str], Mapping[str, Any]] = {}
        for doc in documents:
            if not isinstance(doc, Mapping):
                continue
            kind = doc.get("kind")
            meta = doc.get("metadata") or {}
            name = meta.get("name") if isinstance(meta, Mapping) else None
            if kind not in ("ConfigMap", "Secret") or not isinstance(name, str):
                continue
            ns = meta.get("namespace")
            if isinstance(ns, str) and ns:
                self._by_ns[(kind, ns, name)] = doc
            else:
                self._any_ns.setdefault((kind, name), doc)

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._by_ns.get((kind, namespace, name)) or self._any_ns.get((kind, name))

    def text_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data`` or a Secret's decoded ``data``+``stringData``, as env values (None: not given)."""
        doc = self.get(kind, namespace, name)
        if doc is None:
            return None
        if kind == "Secret":
            return secret_text(doc)
        data = doc.get("data") if isinstance(doc.get("data"), Mapping) else {}
        return {str(k): "" if v is None else str(v) for k, v in data.items()}

    def env_sources(self, namespace: str, *, missing_is_absent: bool) -> Callable[[str, str], dict[str, str] | None]:
        """``lookup(kind, name)`` of a ConfigMap's or Secret's data for PUID/PGID from ``envFrom``/``valueFrom``.

        ``missing_is_absent``: ``run``, where these objects are all the kubelet would find (``{}``); ``explain``
        passes False, as one not in the input may still exist in the cluster (``None``: unknown).
        """
        def lookup(kind: str, name: str) -> dict[str, str] | None:
            data = self.text_data(kind, namespace, name)
            return {} if data is None and missing_is_absent else data

        return lookup


def secret_text(doc: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values as text: ``data`` base64-decoded, then ``stringData`` on top (the API server's merge).
    A value that is not base64 stays as written (the API server would have refused it)."""
    import base64
    import binascii

    out: dict[str, str] = {}
    data = doc.get("data") if isinstance(doc.get("data"), Mapping) else {}
    for k, v in data.items():
        try:
            out[str(k)] = base64.b64decode("".join(str(v or "").split()), validate=True).decode(
                "utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            out[str(k)] = str(v)
    string_data = doc.get("stringData") if isinstance(doc.get("stringData"), Mapping) else {}
    for k, v in string_data.items():
        out[str(k)] = "" if v is None else str(v)
    return out
