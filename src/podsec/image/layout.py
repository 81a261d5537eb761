"""The OCI image layout the store keeps: media types, annotations, limits and the small helpers every part
of the store (:mod:`.index`, :mod:`.rootfs_cache`, :mod:`.archive`, :mod:`.pull`) shares."""


from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from podsec.errors import ImageError
from podsec.logger import get_logger

log = get_logger(__name__)

DEFAULT_ROOT = Path("/var/lib/podsec")

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)

ANN_CONTAINERD_NAME = "io.containerd.image.name"
ANN_REF_NAME = "org.opencontainers.image.ref.name"

_DIGEST_RE = re.compile(r"(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})")
_ID_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HEX_PREFIX_RE = re.compile(r"[0-9a-f]{12,64}")
_BLOB_NAME_RE = re.compile(r"blobs/(sha256|sha384|sha512)/([0-9a-f]{64,128})")
_JSON_LIMIT = 8 << 20
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
    "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
    "riscv64": "riscv64",
}  # fmt: skip


def host_arch() -> str:
    """The OCI architecture name of this machine (what a node's containerd would pull)."""
    return _ARCH.get(os.uname().machine.lower(), "amd64")


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One name in the store: ``digest`` is what the name points at (a manifest, normally)."""

    ref: str
    digest: str
    config_digest: str
    size: int

    @property
    def id(self) -> str:
        """The image ID a runtime reports: the config digest."""
        return self.config_digest


def _check_digest(value: object, where: str) -> str:
    """A digest from untrusted JSON; it becomes a file name, so it must be exactly hex."""
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        raise ImageError(f"invalid digest {value!r}", file=where)
    return value


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"not valid JSON: {e}", file=where) from e
    if not isinstance(obj, dict):
        raise ImageError("JSON document is not an object", file=where)
    return obj


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename, so readers see the old or the new file, never half."""
    import tempfile  # only writers pay for it (not ``run``)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _dict(value: object) -> dict[str, Any]:
    """A JSON object from untrusted input, or ``{}`` when it is something else."""
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _os_errors(func: Callable[Concatenate[Any, _P], _R]) -> Callable[Concatenate[Any, _P], _R]:
    """Public store calls report a failing filesystem (EACCES, ENOSPC, …) as one ImageError line."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(self, *args, **kwargs)
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise ImageError(f"image store I/O error: {e.strerror or e}{where}", file=str(self.root)) from e

    return wrapper


def _rmtree(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


def _is_id(name: str) -> bool:
    return bool(_ID_RE.fullmatch(name))


def _choose_platform(index: dict[str, Any], where: str) -> dict[str, Any]:
    """The linux/<host arch> entry of an image index, as containerd's default platform matcher picks."""
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise ImageError("image index has no manifests", file=where)
    arch = host_arch()
    candidates = []
    for m in manifests:
        if not isinstance(m, dict):
            continue
        p = _dict(m.get("platform"))
        if p.get("os", "linux") == "linux" and p.get("architecture", arch) == arch:
            candidates.append(m)
    if not candidates:
        raise ImageError(f"image index has no linux/{arch} image", file=where)
    if arch == "arm":
        variant = "v7" if os.uname().machine.lower() == "armv7l" else "v6"
        for m in candidates:
            if _dict(m.get("platform")).get("variant") == variant:
                return m
    return candidates[0]


@dataclass(frozen=True, slots=True)
class _Image:
    """A resolved image: the manifest (after platform choice), its config and layer descriptors."""

    manifest_digest: str
    config_digest: str
    layers: tuple[tuple[str, int], ...]
    diff_ids: tuple[str, ...]
    size: int
