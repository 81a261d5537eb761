"""Whether a container may be a PUID/PGID (s6-overlay ``/init``) one, from its spec alone: the program it
starts, the names its environment sets, its image reference.

Kept apart from :mod:`podsec.puid` (the verdicts) because ``podsec run`` asks :func:`pod_has_candidate`
for every pod before a container starts: this module imports only the standard library and defines no
classes, so an ordinary pod costs a fraction of a millisecond here instead of the verdict module's import
and an image rootfs read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from podsec.image.model import ImageInfo

INIT = "/init"
LSIO_PREFIXES = ("lscr.io/linuxserver/", "linuxserver/", "docker.io/linuxserver/", "ghcr.io/linuxserver/",
                 "index.docker.io/linuxserver/")

EnvSources = Callable[[str, str], Mapping[str, str] | None]
"""``(kind, name)`` → the data of the ConfigMap/Secret (kind ``"ConfigMap"``/``"Secret"``) in the pod's
namespace: a mapping when podsec knows it (empty: known to be absent), ``None`` when it cannot know."""


def argv0(container: Mapping, image: ImageInfo | None) -> tuple[str | None, str]:
    """The program the container starts and who chose it (Kubernetes: command → ENTRYPOINT; args → CMD)."""
    command = container.get("command")
    if isinstance(command, list) and command:
        return str(command[0]), "container command"
    if image is None:
        return None, "image"
    if image.entrypoint:
        return image.entrypoint[0], "image ENTRYPOINT"
    args = container.get("args")
    if isinstance(args, list) and args:
        return str(args[0]), "container args"
    if image.cmd:
        return image.cmd[0], "image CMD"
    return None, "image"


def env_from(container: Mapping, sources: EnvSources | None) -> Iterator[tuple[str, str, Mapping[str, str] | None]]:
    """Each ``envFrom`` source in order as (label, prefix, data); data is ``None`` when unknown. The label
    names it for the verdict's evidence: ``envFrom configMapRef ids (prefix LSIO_)``."""
    for src in container.get("envFrom") or ():
        if not isinstance(src, dict):
            continue
        prefix = src.get("prefix") if isinstance(src.get("prefix"), str) else ""
        for ref_key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = src.get(ref_key)
            if not isinstance(ref, dict):
                continue
            name = str(ref.get("name") or "")
            label = f"envFrom {ref_key} {name}" + (f" (prefix {prefix})" if prefix else "")
            yield label, prefix, sources(kind, name) if sources is not None else None


def candidate(container: Mapping, image_ref: str, image: ImageInfo | None, sources: EnvSources | None = None) -> bool:
    """Cheap pre-check before any rootfs is read: PUID/PGID set (image ``Env``, ``env``, or an ``envFrom``
    podsec can read), ``/init`` run, or a linuxserver image.

    An ``envFrom`` podsec cannot read may set PUID/PGID too; it matters only for a container that runs
    ``/init`` or is a linuxserver image, and those are candidates whatever their env. Elsewhere it is not
    taken as a hint: every ordinary pod with an ``envFrom`` would pay for a rootfs read.
    """
    names = {e.get("name") for e in container.get("env") or () if isinstance(e, dict)}
    if image is not None:
        names |= {item.partition("=")[0] for item in image.env}
    for _, prefix, data in env_from(container, sources):
        names |= {prefix + str(k) for k in data or ()}
    if "PUID" in names or "PGID" in names or image_ref.startswith(LSIO_PREFIXES):
        return True
    prog, _ = argv0(container, image)
    return prog == INIT


def pod_has_candidate(spec: Mapping, images: Mapping[str, ImageInfo | None],
                      sources: EnvSources | None = None) -> bool:
    """Whether any container of the pod passes :func:`candidate` (``images``: by container name); ``run``
    skips the verdict module entirely when none does."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict) and candidate(c, str(c.get("image") or ""), images.get(str(c.get("name"))),
                                                 sources):
                return True
    return False
