"""emptyDir (and the emptyDir that wraps configMap/secret/downwardAPI/projected volumes).

Reference: kubelet-semantics §3.5. The directory is created 0777 and chmod'ed to exactly 0777
(the umask must not matter); ``medium: Memory`` mounts a tmpfs on it whose root is the kernel's
1777. The tmpfs size follows ``calculateEmptyDirMemorySize``: node allocatable memory, lowered to
the pod's memory limit and then to the volume's sizeLimit when those are smaller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podsec.errors import InputError, RuntimeFailure
from podsec.quantity import quantity_value
from podsec.volumes import mounts

EMPTY_DIR_MODE = 0o777
MEDIUM_DEFAULT = ""
MEDIUM_MEMORY = "Memory"


def _container_memory_limit(c: Mapping[str, Any]) -> int | None:
    limits = (c.get("resources") or {}).get("limits") or {}
    raw = limits.get("memory")
    return None if raw is None else quantity_value(raw)


def pod_memory_limit(spec: Mapping[str, Any]) -> int | None:
    """``ResourceConfigForPod`` memory: sum of app containers, at least the largest init container.

    None (unlimited) as soon as one app container has no memory limit.
    """
    total = 0
    for c in spec.get("containers") or []:
        lim = _container_memory_limit(c)
        if lim is None:
            return None
        total += lim
    for c in spec.get("initContainers") or []:
        lim = _container_memory_limit(c)
        if lim is None:
            if (c.get("restartPolicy") or "") == "Always":  # a sidecar without limit: unlimited pod
                return None
            continue
        total = max(total, lim)
    pod_limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    if pod_limit is not None:
        return quantity_value(pod_limit)
    return total


def memory_volume_size(
    spec: Mapping[str, Any], size_limit: object, node_allocatable: int | None, *, field: str | None = None
) -> int | None:
    """Bytes for the tmpfs ``size=`` option, or None for the kernel default (half of RAM)."""
    size = node_allocatable if node_allocatable and node_allocatable > 0 else None
    pod_limit = pod_memory_limit(spec)
    if pod_limit is not None and pod_limit > 0 and (size is None or pod_limit <= size):
        size = pod_limit
    if size_limit is not None:
        vol = quantity_value(size_limit, field=field)
        if vol > 0 and (size is None or vol <= size):
            size = vol
    return size


def check_medium(medium: object, volume: str, field: str | None = None) -> str:
    """Only the default medium and Memory can be set up here."""
    if medium in (None, MEDIUM_DEFAULT):
        return MEDIUM_DEFAULT
    if medium == MEDIUM_MEMORY:
        return MEDIUM_MEMORY
    raise InputError(f'volume "{volume}": emptyDir medium {medium!r} is not supported by podsec', field=field)


# --------------------------------------------------------------------------------------------------
# side effects


def setup_dir(path: Path) -> None:
    """``MkdirAll(dir, 0777)`` then chmod to exactly 0777 when the umask got in the way."""
    path.mkdir(mode=EMPTY_DIR_MODE, parents=True, exist_ok=True)
    st = os.lstat(path)
    if st.st_mode & 0o7777 != EMPTY_DIR_MODE:
        os.chmod(path, EMPTY_DIR_MODE)


def setup_empty_dir(path: Path, medium: str, size_bytes: int | None) -> bool:
    """Create the volume directory (and mount its tmpfs); True when a tmpfs was mounted."""
    try:
        setup_dir(path)
        if medium != MEDIUM_MEMORY:
            return False
        if mounts.is_mount_point(path):
            return False
        mounts.mount_tmpfs(path, size_bytes)
        return True
    except OSError as e:
        raise RuntimeFailure(f"emptyDir {path}: {e.strerror or e}") from e
