"""The local image store as the static commands read it (check, explain, fix, perms): image facts by reference,
or nothing when there is no store, so a missing store never turns into an error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import PodsecError


def image_lookup(root: str) -> Callable[[str], Any] | None:
    """Image info from the local store, when there is one, so resolve can use USER and /etc/passwd."""
    if not os.path.exists(os.path.join(root, "oci", "index.json")):
        return None
    from podsec.image.store import ImageStore

    store = ImageStore(Path(root))
    cache: dict[str, Any] = {}

    def lookup(ref: str) -> Any:
        if ref not in cache:
            try:
                cache[ref] = store.info(ref) if store.resolve(ref) is not None else None
            except PodsecError:
                cache[ref] = None
        return cache[ref]

    return lookup


def image_facts(root: str) -> Callable[[str], Any]:
    """s6-overlay files in an image's rootfs (read only for PUID/PGID candidates), from the local store."""
    from podsec.image.s6 import store_facts
    from podsec.image.store import ImageStore

    return store_facts(ImageStore(Path(root)))
