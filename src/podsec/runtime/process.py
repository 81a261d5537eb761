"""A container's argv, environment and working directory, as the kubelet and containerd compute them.

Pure functions of the pod spec, the image config and the ConfigMaps/Secrets given with the pod:

* argv (containerd ``WithProcessArgs``, Docker's rules): ``command`` replaces the image Entrypoint and
  drops its Cmd; ``args`` replace Cmd; neither: Entrypoint + Cmd.
* env (kubelet ``makeEnvironmentVariables``): ``envFrom`` first, then ``env`` in order, each value
  ``$(VAR)``-expanded against what came before; ``valueFrom`` reads ConfigMaps, Secrets, the pod's own
  fields and resources. containerd then builds ``HOSTNAME``, the image Env, and these on top.
* ``$(VAR)`` in command/args is expanded against the kubelet env (not the image's), as the kubelet does.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podsec.image.model import ImageInfo

if TYPE_CHECKING:
    from fractions import Fraction

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


class ConfigError(Exception):
    """The kubelet could not build the container's config: ``CreateContainerConfigError``."""


# -- $(VAR) expansion ----------------------------------------------------------------------------


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Kubernetes' ``third_party/forked/golang/expansion.Expand``: ``$(VAR)`` → value, ``$$`` → ``$``,
    an undefined or unterminated reference stays as written."""
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


def mapping_for(*contexts: dict[str, str]) -> Callable[[str], str]:
    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


# -- ConfigMaps and Secrets ----------------------------------------------------------------------


@dataclass(slots=True)
class Objects:
    """The ConfigMaps and Secrets given next to the pod (what the API server would hold)."""

    configmaps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, docs: Iterable[dict], default_namespace: str = "default") -> Objects:
        objs = cls()
        for doc in docs:
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            name = meta.get("name")
            if not isinstance(name, str):
                continue
            key = (meta.get("namespace") or default_namespace, name)
            if doc.get("kind") == "ConfigMap":
                data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
                objs.configmaps[key] = {str(k): "" if v is None else str(v) for k, v in data.items()}
            elif doc.get("kind") == "Secret":
                objs.secrets[key] = secret_data(doc)
        return objs


    def env_sources(self, namespace: str, *, missing_is_absent: bool) -> Callable[[str, str], dict[str, str] | None]:
        """``lookup(kind, name)`` of a ConfigMap's or Secret's data for PUID/PGID from ``envFrom``/``valueFrom``.

        ``missing_is_absent``: ``run``, where these objects are all the kubelet would find (``{}``); ``explain``
        passes False, as one not in the input may still exist in the cluster (``None``: unknown).
        """
        def lookup(kind: str, name: str) -> dict[str, str] | None:
            data = (self.configmaps if kind == "ConfigMap" else self.secrets).get((namespace, name))
            return {} if data is None and missing_is_absent else data

        return lookup


def secret_data(doc: dict) -> dict[str, str]:
    """A Secret's values as text: ``data`` base64-decoded, then ``stringData`` on top (the API server's merge)."""
    import base64
    import binascii

    out: dict[str, str] = {}
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    for k, v in data.items():
        try:
            out[str(k)] = base64.b64decode(str(v or ""), validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            out[str(k)] = str(v)
    string_data = doc.get("stringData") if isinstance(doc.get("stringData"), dict) else {}
    for k, v in string_data.items():
        out[str(k)] = "" if v is None else str(v)
    return out


# -- resources (resourceFieldRef) ----------------------------------------------------------------

_SUFFIX: dict[str, tuple[int, int]] = {
    "Ki": (2**10, 1), "Mi": (2**20, 1), "Gi": (2**30, 1), "Ti": (2**40, 1), "Pi": (2**50, 1), "Ei": (2**60, 1),
    "n": (1, 10**9), "u": (1, 10**6), "m": (1, 1000), "": (1, 1),
    "k": (10**3, 1), "M": (10**6, 1), "G": (10**9, 1), "T": (10**12, 1), "P": (10**15, 1), "E": (10**18, 1),
}  # fmt: skip
"""Suffix → (numerator, denominator) of its multiplier."""
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: object) -> Fraction | None:
    """A Kubernetes resource quantity (``500m``, ``64Mi``, ``1e3``, ``2``) as an exact number."""
    from fractions import Fraction

    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if not m:
        return None
    try:
        number = Fraction(m.group(1))
    except (ValueError, ZeroDivisionError):
        return None
    if m.group(2):
        return number * Fraction(10) ** int(m.group(2)[1:])
    num, den = _SUFFIX[m.group(3) or ""]
    return number * Fraction(num, den)


def node_allocatable() -> dict[str, Fraction]:
    """What the kubelet fills in for unset limits: the node's CPUs, memory and root disk."""
    from fractions import Fraction

    out: dict[str, Fraction] = {"cpu": Fraction(os.cpu_count() or 1)}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    out["memory"] = Fraction(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    try:
        st = os.statvfs("/")
        out["ephemeral-storage"] = Fraction(st.f_blocks * st.f_frsize)
    except OSError:
        pass
    return out


def resource_value(container: dict, resource: str, divisor: object) -> str:
    """kubelet ``ExtractContainerResourceValue`` with unset limits taken from the node (best effort)."""
    from fractions import Fraction

    kind, _, res = resource.partition(".")
    resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
    if kind == "limits":
        value = parse_quantity(limits.get(res))
        if value is None:
            value = node_allocatable().get(res, Fraction(0))
    else:
        value = parse_quantity(requests.get(res))
        if value is None:
            value = parse_quantity(limits.get(res)) or Fraction(0)  # API defaulting: requests = limits
    div = parse_quantity(divisor) if divisor not in (None, "") else None
    if not div:
        div = Fraction(1)
    if res == "cpu":
        # convertResourceCPUToString works in milli-units: ceil(milli(value) / milli(divisor)).
        milli = math.ceil(value * 1000)
        return str(math.ceil(Fraction(milli) / max(math.ceil(div * 1000), 1)))
    return str(math.ceil(math.ceil(value) / max(math.ceil(div), 1)))


# -- the pod's own fields (fieldRef) -------------------------------------------------------------


@dataclass(slots=True)
class PodFacts:
    """What ``fieldRef`` can read: the pod's metadata plus what the node decided."""

    metadata: dict
    spec: dict
    node_name: str
    pod_ip: str
    host_ip: str


def _format_map(m: dict) -> str:
    """``metadata.labels``/``annotations`` as a whole: ``k="v"`` lines, sorted (downward API format)."""
    return "\n".join(f'{k}="{v}"' for k, v in sorted(m.items()))


def field_value(path: str, facts: PodFacts) -> str:
    """kubelet ``podFieldSelectorRuntimeValue`` + ``fieldpath.ExtractFieldPathAsString``."""
    meta = facts.metadata
    if path == "spec.nodeName":
        return facts.node_name
    if path == "spec.serviceAccountName":
        return str(facts.spec.get("serviceAccountName") or facts.spec.get("serviceAccount") or "default")
    if path in ("status.hostIP", "status.hostIPs"):
        return facts.host_ip
    if path in ("status.podIP", "status.podIPs"):
        return facts.pod_ip
    if path == "metadata.name":
        return str(meta.get("name") or "")
    if path == "metadata.namespace":
        return str(meta.get("namespace") or "default")
    if path == "metadata.uid":
        return str(meta.get("uid") or "")
    if path in ("metadata.labels", "metadata.annotations"):
        m = meta.get(path.split(".")[1])
        return _format_map(m) if isinstance(m, dict) else ""
    sub = _SUBSCRIPT.match(path)
    if sub:
        m = meta.get(sub.group(1))
        value = m.get(sub.group(2)) if isinstance(m, dict) else None
        return "" if value is None else str(value)
    raise ConfigError(f"unsupported fieldPath: {path}")


# -- env -----------------------------------------------------------------------------------------


def _ref(src: object) -> dict:
    return src if isinstance(src, dict) else {}


def kubelet_env(
    container: dict, facts: PodFacts, objects: Objects, all_containers: Iterable[dict] = ()
) -> dict[str, str]:
    """The env the kubelet sends over CRI (insertion order kept; the kubelet's map order is random).

    Raises :class:`ConfigError` with the kubelet's message when a non-optional source is missing.
    """
    namespace = str(facts.metadata.get("namespace") or "default")
    env: dict[str, str] = {}
    for src in container.get("envFrom") or ():
        src = _ref(src)
        prefix = str(src.get("prefix") or "")
        for kind, table in (("configMapRef", objects.configmaps), ("secretRef", objects.secrets)):
            ref = src.get(kind)
            if not isinstance(ref, dict):
                continue
            name = str(ref.get("name") or "")
            data = table.get((namespace, name))
            if data is None:
                if ref.get("optional") is True:
                    continue
                raise ConfigError(f'{"configmap" if kind == "configMapRef" else "secret"} "{name}" not found')
            for k, v in data.items():
                key = prefix + k
                if _ENV_NAME.match(key):
                    env[key] = v
    for var in container.get("env") or ():
        var = _ref(var)
        name = str(var.get("name") or "")
        value = var.get("value")
        if isinstance(value, str) and value != "":
            env[name] = expand(value, mapping_for(env))
            continue
        vf = var.get("valueFrom")
        if not isinstance(vf, dict):
            env[name] = ""
            continue
        if isinstance(vf.get("fieldRef"), dict):
            env[name] = field_value(str(vf["fieldRef"].get("fieldPath") or ""), facts)
        elif isinstance(vf.get("resourceFieldRef"), dict):
            rf = vf["resourceFieldRef"]
            target = container
            if rf.get("containerName"):
                target = next((c for c in all_containers if c.get("name") == rf["containerName"]), container)
            env[name] = resource_value(target, str(rf.get("resource") or ""), rf.get("divisor"))
        elif isinstance(vf.get("configMapKeyRef"), dict) or isinstance(vf.get("secretKeyRef"), dict):
            is_cm = isinstance(vf.get("configMapKeyRef"), dict)
            ref = vf["configMapKeyRef"] if is_cm else vf["secretKeyRef"]
            obj_name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
            data = (objects.configmaps if is_cm else objects.secrets).get((namespace, obj_name))
            optional = ref.get("optional") is True
            if data is None:
                if optional:
                    continue
                raise ConfigError(f'{"configmap" if is_cm else "secret"} "{obj_name}" not found')
            if key not in data:
                if optional:
                    continue
                kind = "ConfigMap" if is_cm else "Secret"
                raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{obj_name}")
            env[name] = data[key]
        else:
            env[name] = ""
    return env


def process_env(hostname: str, image: ImageInfo | None, kube_env: dict[str, str]) -> list[str]:
    """containerd's order: ``HOSTNAME``, the image Env, then the kubelet's (later keys win in place)."""
    return [f"HOSTNAME={hostname}", *(image.env if image else ()), *(f"{k}={v}" for k, v in kube_env.items())]


def process_args(container: dict, image: ImageInfo | None, kube_env: dict[str, str]) -> list[str]:
    """containerd ``WithProcessArgs`` after the kubelet expanded ``$(VAR)`` in command and args."""
    mapping = mapping_for(kube_env)
    command = [expand(str(c), mapping) for c in container.get("command") or ()]
    args = [expand(str(a), mapping) for a in container.get("args") or ()]
    if not command and image is not None:  # the kubelet sends an empty command as nil
        if not args and image.cmd:
            args = list(image.cmd)
        if image.entrypoint and image.entrypoint != ("",):
            command = list(image.entrypoint)
    return command + args


def working_dir(container: dict, image: ImageInfo | None) -> str:
    return str(container.get("workingDir") or (image.working_dir if image else "") or "/")
