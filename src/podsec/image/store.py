"""The local image store: an OCI image layout plus a cache of unpacked root filesystems.

Layout under ``root``::

    oci/                 OCI image layout (blobs/sha256/…, index.json, oci-layout); every index
                         entry names its image with io.containerd.image.name and
                         org.opencontainers.image.ref.name (both the normalised ref)
    rootfs/<hex>/        unpacked rootfs of manifest sha256:<hex>, written once, then only read
    tmp/                 staging (same filesystem, so finished work is renamed into place)
    index.lock, gc.lock  flock(2) locks shared by every podsec process using this root

Any number of processes may load, pull and unpack at once: importers hold ``gc.lock`` shared
while their blobs are not yet referenced, index.json is rewritten whole under ``index.lock``
and renamed into place, and garbage collection takes ``gc.lock`` exclusively.
"""

from __future__ import annotations

from podsec.image.layout import DEFAULT_ROOT, ImageRecord, host_arch
from podsec.image.pull import PULL_TRANSPORTS, SkopeoPull, pull_source
from podsec.image.rootfs_cache import RootfsCache


class ImageStore(SkopeoPull, RootfsCache):
    """A containerd-like local image store in an OCI layout; see the module docstring for the layout.

    Its parts, one module each: :mod:`.index` (index and locks), :mod:`.rootfs_cache` (reading images,
    unpacked rootfs), :mod:`.archive` (importing layouts and archives), :mod:`.pull` (skopeo)."""


__all__ = ["DEFAULT_ROOT", "PULL_TRANSPORTS", "ImageRecord", "ImageStore", "host_arch", "pull_source"]
