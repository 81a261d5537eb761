"""A container's argv, environment and working directory, as the kubelet and containerd compute them.

Pure functions of the pod spec, the image config and the ConfigMaps/Secrets given with the pod:

* argv (containerd ``WithProcessArgs``, Docker's rules): ``command`` replaces the image Entrypoint and
  drops its Cmd; ``args`` replace Cmd; neither: Entrypoint + Cmd.
* env (kubelet ``makeEnvironmentVariables``): ``envFrom`` first, then ``env`` in order, each value
  ``$(VAR)``-expanded against what came before; ``valueFrom`` reads ConfigMaps, Secrets, the pod's own
  fields and resources (:mod:`podsec.downward`, shared with downwardAPI volumes). containerd then builds
  ``HOSTNAME``, the image Env, and these on top.
* ``$(VAR)`` in command/args is expanded against the kubelet env (not the image's), as the kubelet does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from podsec.downward import (
    FieldRefError,
    NodeInfo,
    ObjectStore,
    PodFacts,
    expand,
    field_value,
    mapping_for,
    resource_field_value,
)
from podsec.errors import PodsecError
from podsec.image.model import ImageInfo

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """The kubelet could not build the container's config: ``CreateContainerConfigError``."""


def _ref(src: object) -> Mapping[str, Any]:
    return src if isinstance(src, Mapping) else {}


def kubelet_env(container: Mapping[str, Any], facts: PodFacts, objects: ObjectStore, node: NodeInfo,
                ) -> dict[str, str]:
    """The env the kubelet sends over CRI (insertion order kept; the kubelet's map order is random).

    Raises :class:`ConfigError` with the kubelet's message when a non-optional source is missing.
    """
    namespace = str(facts.metadata.get("namespace") or "default")
    env: dict[str, str] = {}
    for src in container.get("envFrom") or ():
        src = _ref(src)
        prefix = str(src.get("prefix") or "")
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = src.get(key)
            if not isinstance(ref, Mapping):
                continue
            name = str(ref.get("name") or "")
            data = objects.text_data(kind, namespace, name)
            if data is None:
                if ref.get("optional") is True:
                    continue
                raise ConfigError(f'{kind.lower()} "{name}" not found')
            for k, v in data.items():
                if _ENV_NAME.match(prefix + k):
                    env[prefix + k] = v
    for var in container.get("env") or ():
        var = _ref(var)
        name = str(var.get("name") or "")
        value = var.get("value")
        if isinstance(value, str) and value != "":
            env[name] = expand(value, mapping_for(env))
            continue
        vf = var.get("valueFrom")
        if not isinstance(vf, Mapping):
            env[name] = ""
            continue
        try:
            if isinstance(vf.get("fieldRef"), Mapping):
                env[name] = field_value(str(vf["fieldRef"].get("fieldPath") or ""), facts)
                continue
            if isinstance(vf.get("resourceFieldRef"), Mapping):
                env[name] = resource_field_value(vf["resourceFieldRef"], facts.spec, container.get("name"), node)
                continue
        except FieldRefError as e:
            raise ConfigError(str(e)) from None
        except PodsecError as e:  # a quantity the API server would have refused
            raise ConfigError(e.message) from None
        if isinstance(vf.get("configMapKeyRef"), Mapping) or isinstance(vf.get("secretKeyRef"), Mapping):
            kind = "ConfigMap" if isinstance(vf.get("configMapKeyRef"), Mapping) else "Secret"
            ref = vf["configMapKeyRef"] if kind == "ConfigMap" else vf["secretKeyRef"]
            obj_name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
            data = objects.text_data(kind, namespace, obj_name)
            optional = ref.get("optional") is True
            if data is None:
                if optional:
                    continue
                raise ConfigError(f'{kind.lower()} "{obj_name}" not found')
            if key not in data:
                if optional:
                    continue
                raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{obj_name}")
            env[name] = data[key]
        else:
            env[name] = ""
    return env


def process_env(hostname: str, image: ImageInfo | None, kube_env: Mapping[str, str]) -> list[str]:
    """containerd's order: ``HOSTNAME``, the image Env, then the kubelet's (later keys win in place)."""
    return [f"HOSTNAME={hostname}", *(image.env if image else ()), *(f"{k}={v}" for k, v in kube_env.items())]


def process_args(container: Mapping[str, Any], image: ImageInfo | None, kube_env: Mapping[str, str]) -> list[str]:
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


def working_dir(container: Mapping[str, Any], image: ImageInfo | None) -> str:
    return str(container.get("workingDir") or (image.working_dir if image else "") or "/")


def all_containers(spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            if isinstance(c, Mapping):
                yield c
