"""What podsec needs to know about an image: its config and its user databases.

Kept free of I/O so :mod:`podsec.resolve` can be tested with hand-made images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str = "/"
    shell: str = ""


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image as resolve sees it.

    ``user`` is the config's ``User`` verbatim (``None`` when the key is absent).
    ``passwd``/``group`` are ``None`` when the file does not exist in the rootfs,
    which is different from an empty file for nobody but is kept apart anyway.
    """

    ref: str
    user: str | None = None
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    volumes: tuple[str, ...] = ()
    passwd: tuple[PasswdEntry, ...] | None = None
    group: tuple[GroupEntry, ...] | None = None
    config_digest: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def user_by_uid(self, uid: int) -> PasswdEntry | None:
        """First passwd entry with this uid, as containerd's WithUserID looks it up."""
        for entry in self.passwd or ():
            if entry.uid == uid:
                return entry
        return None

    def user_by_name(self, name: str) -> PasswdEntry | None:
        for entry in self.passwd or ():
            if entry.name == name:
                return entry
        return None

    def group_by_name(self, name: str) -> GroupEntry | None:
        for entry in self.group or ():
            if entry.name == name:
                return entry
        return None

    def group_name(self, gid: int) -> str | None:
        for entry in self.group or ():
            if entry.gid == gid:
                return entry.name
        return None


class ImageFacts(NamedTuple):
    """What the image's rootfs shows (gathered by :func:`podsec.image.s6.probe`; judged by :mod:`podsec.puid`)."""

    markers: tuple[str, ...] = ()
    """s6-overlay / linuxserver paths present, e.g. ``/etc/s6-overlay``, ``/command/s6-svscan``, ``/docker-mods``."""
    run_owner: tuple[int, int, int] | None = None
    """uid, gid and permission bits of the image's ``/run`` (``None``: absent)."""


def info_from_config(doc: dict, ref: str, config_digest: str, passwd: tuple[PasswdEntry, ...] | None,
                     group: tuple[GroupEntry, ...] | None, where: str) -> ImageInfo:
    """An image config document (OCI or docker) as resolve sees it; the store and a registry's config
    (``podsec audit --inspect-images``) both read it here. Raises ImageError on a malformed config."""
    from podsec.errors import ImageError

    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ImageError("image config 'config' is not an object", file=where)

    def strings(key: str) -> tuple[str, ...] | None:
        value = cfg.get(key)
        if value is None:
            return None
        if isinstance(value, str):  # old docker configs may hold a shell string
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ImageError(f"config {key} is not a list of strings", file=where)
        return tuple(value)

    user = cfg.get("User")
    labels = cfg.get("Labels") or {}
    volumes = cfg.get("Volumes") or {}
    return ImageInfo(
        ref=ref,
        user=str(user) if user is not None else None,
        env=strings("Env") or (),
        entrypoint=strings("Entrypoint"),
        cmd=strings("Cmd"),
        working_dir=str(cfg.get("WorkingDir") or ""),
        volumes=tuple(sorted(volumes)) if isinstance(volumes, dict) else (),
        passwd=passwd,
        group=group,
        config_digest=config_digest,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )
