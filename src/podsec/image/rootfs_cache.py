"""Reading images out of the store: configs, the cache of unpacked root filesystems (one per manifest,
written once, then only read) and what a container's user resolves to inside it."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
from pathlib import Path
from typing import Any

from podsec.errors import ImageError
from podsec.image.index import StoreIndex
from podsec.image.layout import (
    _check_digest,
    _Image,
    _json,
    _os_errors,
    _rmtree,
    log,
)
from podsec.image.model import ImageInfo, info_from_config
from podsec.image.passwd import read_user_db


class RootfsCache(StoreIndex):
    """Image configs, ImageInfo, the unpacked rootfs cache and user lookups in it."""

    # -- reading images ------------------------------------------------------------------------
    @_os_errors
    def config(self, ref: str) -> dict[str, Any]:
        """The parsed image config (the whole OCI config document)."""
        rec, _ = self._require(ref)
        return _json(self._blob(rec.config_digest), f"{rec.ref}@{rec.config_digest}")

    @_os_errors
    def rootfs(self, ref: str) -> Path:
        """The unpacked rootfs of ``ref``, unpacked on first use (into tmp/, then renamed into place)."""
        rec, image = self._require(ref)
        final = self.rootfs_dir / image.manifest_digest.split(":", 1)[1]
        if final.is_dir():
            return final
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_SH):
            if final.is_dir():
                return final
            from podsec.image.unpack import unpack_layers

            staging = self._staging("rootfs-")
            try:
                os.chmod(staging, 0o755)
                layers = [(self.blob_path(d), diff_id) for (d, _), diff_id in zip(image.layers, image.diff_ids)]
                for path, _ in layers:
                    if not path.is_file():
                        raise ImageError(f"layer {path.name} of {rec.ref} is missing from the store")
                report = unpack_layers(layers, staging)
                for msg in report.skipped:
                    log.info("%s: %s", rec.ref, msg)
                try:
                    os.rename(staging, final)
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    _rmtree(staging)  # another process finished first; its copy is identical
            except BaseException:
                _rmtree(staging)
                raise
        return final

    @_os_errors
    def info(self, ref: str) -> ImageInfo:
        """What resolve needs: config fields plus /etc/passwd and /etc/group (cached per config)."""
        rec, image = self._require(ref)
        cached = self._info.get(rec.config_digest)
        if cached is not None:
            return cached if cached.ref == rec.ref else dataclasses.replace(cached, ref=rec.ref)
        doc = self.config(ref)
        where = f"{rec.ref}@{rec.config_digest}"
        info = info_from_config(doc, rec.ref, rec.config_digest, None, None, where)  # raises before the unpack
        passwd, group = self._user_db(ref, image)
        info = dataclasses.replace(info, passwd=passwd, group=group)
        self._info[rec.config_digest] = info
        return info

    def _user_db(self, ref: str, image: _Image) -> tuple[Any, Any]:
        """passwd/group for a layer stack; any unpacked image with the same layers will do.

        The fixture's five tags share one layer: reading it once saves four unpacks.
        """
        found = self._userdb.get(image.diff_ids)
        if found is None:
            root: Path | None = None
            for entry in self._entries():
                try:
                    digest = _check_digest(entry.get("digest"), "index.json")
                    cached = self._image(digest, entry.get("mediaType"), "index.json")
                except ImageError:
                    continue
                if cached.diff_ids == image.diff_ids:
                    candidate = self.rootfs_dir / cached.manifest_digest.split(":", 1)[1]
                    if candidate.is_dir():
                        root = candidate
                        break
            found = read_user_db(root if root is not None else self.rootfs(ref))
            self._userdb[image.diff_ids] = found
        return found
