"""The store's index and locks: directories, flock(2) locks, blobs, index.json, resolving names, removal
and garbage collection (the part of :class:`podsec.image.store.ImageStore` every command uses)."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podsec.errors import ImageError
from podsec.image.layout import (
    _DIGEST_RE,
    _HEX_PREFIX_RE,
    _JSON_LIMIT,
    ANN_CONTAINERD_NAME,
    ANN_REF_NAME,
    DEFAULT_ROOT,
    INDEX_TYPES,
    MT_OCI_INDEX,
    ImageRecord,
    _check_digest,
    _choose_platform,
    _dict,
    _Image,
    _int,
    _is_id,
    _json,
    _os_errors,
    _rmtree,
    _write_atomic,
    log,
)
from podsec.image.model import ImageInfo
from podsec.image.reference import normalize, parse


class StoreIndex:
    """The store's directories, locks, blobs and index.json; names resolved to images (see podsec.image.store)."""

    def __init__(self, root: Path = DEFAULT_ROOT, *, skopeo: str | None = None) -> None:
        self.root = Path(root)
        self.oci_dir = self.root / "oci"
        self.blobs_dir = self.oci_dir / "blobs"
        self.rootfs_dir = self.root / "rootfs"
        self.tmp_dir = self.root / "tmp"
        self._skopeo = skopeo
        self._index_key: tuple[int, int, int] | None = None
        self._index_entries: builtins.list[dict[str, Any]] = []
        self._images: dict[str, _Image] = {}
        self._info: dict[str, ImageInfo] = {}
        self._userdb: dict[tuple[str, ...], tuple[Any, Any]] = {}

    # -- files and locks ---------------------------------------------------------------------
    def _init_dirs(self) -> None:
        try:
            for d in (self.blobs_dir / "sha256", self.rootfs_dir, self.tmp_dir):
                d.mkdir(parents=True, exist_ok=True)
            for d in (self.rootfs_dir, self.tmp_dir):
                # Image rootfs hold other people's setuid binaries: keep local users out, as containerd does.
                if stat.S_IMODE(d.stat().st_mode) != 0o700:
                    d.chmod(0o700)
            layout = self.oci_dir / "oci-layout"
            if not layout.exists():
                _write_atomic(layout, b'{"imageLayoutVersion":"1.0.0"}')
            index = self.oci_dir / "index.json"
            if not index.exists():
                with self._lock("index.lock", fcntl.LOCK_EX):
                    if not index.exists():
                        _write_atomic(index, self._index_bytes([]))
        except OSError as e:
            raise ImageError(f"cannot create image store: {e.strerror or e}", file=str(self.root)) from e

    @contextlib.contextmanager
    def _lock(self, name: str, mode: int) -> Iterator[None]:
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _staging(self, prefix: str) -> Path:
        import tempfile  # staging is for writers: ``run`` of an unpacked image never needs it

        return Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix=prefix))

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = _check_digest(digest, str(self.oci_dir)).partition(":")
        return self.blobs_dir / algo / hexpart

    def _blob(self, digest: str, limit: int = _JSON_LIMIT) -> bytes:
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError as e:
            raise ImageError(f"blob {digest} is missing from the store", file=str(self.oci_dir)) from e
        if len(data) > limit:
            raise ImageError(f"blob {digest} is too large for a manifest or config", file=str(path))
        return data

    # -- index.json ----------------------------------------------------------------------------
    @staticmethod
    def _index_bytes(entries: builtins.list[dict[str, Any]]) -> bytes:
        doc = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def _read_index_file(self) -> builtins.list[dict[str, Any]]:
        path = self.oci_dir / "index.json"
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise ImageError(f"cannot read image index: {e.strerror}", file=str(path)) from e
        manifests = _json(data, str(path)).get("manifests") or []
        if not isinstance(manifests, list):
            raise ImageError("'manifests' is not a list", file=str(path))
        return [m for m in manifests if isinstance(m, dict)]

    def _entries(self) -> builtins.list[dict[str, Any]]:
        """index.json entries, re-read only when the file changed (it is replaced, never edited)."""
        try:
            st = os.stat(self.oci_dir / "index.json")
        except (FileNotFoundError, NotADirectoryError):  # no store yet: nothing in it
            return []
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._index_key:
            self._index_entries = self._read_index_file()
            self._index_key = key
        return self._index_entries

    @staticmethod
    def entry_name(entry: dict[str, Any]) -> str | None:
        """The normalised name of an index entry (containerd's annotation first), or None."""
        ann = _dict(entry.get("annotations"))
        for key in (ANN_CONTAINERD_NAME, ANN_REF_NAME):
            value = ann.get(key)
            if isinstance(value, str) and value:
                if _is_id(value):
                    return value
                try:
                    return normalize(value)
                except ImageError:
                    return None
        return None

    def _commit(self, named: builtins.list[tuple[str, dict[str, Any]]]) -> None:
        """Point each name at its descriptor (a retagged old image stays as content until gc())."""
        latest = dict(named)  # a name given twice points at the last descriptor
        with self._lock("index.lock", fcntl.LOCK_EX):
            current = self._read_index_file()
            kept = [e for e in current if self.entry_name(e) not in latest]
            for name, desc in latest.items():
                entry = {k: v for k, v in desc.items() if k in ("mediaType", "digest", "size", "platform")}
                entry["annotations"] = {ANN_CONTAINERD_NAME: name, ANN_REF_NAME: name}
                kept.append(entry)
            _write_atomic(self.oci_dir / "index.json", self._index_bytes(kept))

    # -- resolving images ----------------------------------------------------------------------
    def _image(self, digest: str, media_type: str | None, where: str, depth: int = 0) -> _Image:
        import hashlib

        cached = self._images.get(digest)
        if cached is not None:
            return cached
        raw = self._blob(digest)
        algo = digest.split(":", 1)[0]
        if f"{algo}:{hashlib.new(algo, raw).hexdigest()}" != digest:
            raise ImageError(f"blob {digest} is corrupt (content does not match its digest)", file=where)
        doc = _json(raw, f"{where}@{digest}")
        mt = doc.get("mediaType") or media_type
        if mt in INDEX_TYPES or (mt is None and "manifests" in doc):
            if depth > 2:
                raise ImageError("image index nested too deeply", file=where)
            child = _choose_platform(doc, where)
            image = self._image(_check_digest(child.get("digest"), where), child.get("mediaType"), where, depth + 1)
        else:
            if doc.get("schemaVersion") != 2 or not isinstance(doc.get("config"), dict):
                raise ImageError(f"unsupported manifest {digest} (only schema 2 images)", file=where)
            config_digest = _check_digest(doc["config"].get("digest"), where)
            layers_raw = doc.get("layers") or []
            if not isinstance(layers_raw, list):
                raise ImageError(f"manifest {digest}: 'layers' is not a list", file=where)
            layers = tuple(
                (_check_digest(lay.get("digest"), where), _int(lay.get("size")))
                for lay in layers_raw
                if isinstance(lay, dict)
            )
            config = _json(self._blob(config_digest), f"{where}@{config_digest}")
            diff_ids = _dict(config.get("rootfs")).get("diff_ids") or []
            if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
                raise ImageError(
                    f"config {config_digest} lists {len(diff_ids)} diff_ids for {len(layers)} layers", file=where
                )
            size = len(raw) + _int(doc["config"].get("size")) + sum(s for _, s in layers)
            image = _Image(digest, config_digest, layers, tuple(str(d) for d in diff_ids), size)
        self._images[digest] = image
        return image

    def _record(self, entry: dict[str, Any], name: str) -> ImageRecord:
        digest = _check_digest(entry.get("digest"), str(self.oci_dir / "index.json"))
        image = self._image(digest, entry.get("mediaType"), name)
        return ImageRecord(ref=name, digest=digest, config_digest=image.config_digest, size=image.size)

    @_os_errors
    def list(self) -> builtins.list[ImageRecord]:
        """Every name in the store (a broken entry is logged and left out)."""
        out = []
        for entry in self._entries():
            name = self.entry_name(entry)
            if name is None:
                continue
            try:
                out.append(self._record(entry, name))
            except ImageError as e:
                log.warning("skipping broken image %s: %s", name, e)
        return out

    @_os_errors
    def resolve(self, ref: str) -> ImageRecord | None:
        """The record for ``ref``: a short or full name, ``name@digest``, or an image ID (prefix)."""
        entries = [(self.entry_name(e), e) for e in self._entries()]
        if ref.startswith("sha256:") or (_HEX_PREFIX_RE.fullmatch(ref) and not self._name_exists(ref, entries)):
            want = ref if ref.startswith("sha256:") else "sha256:" + ref
            matches = []
            for name, e in entries:
                if name is None:
                    continue
                try:
                    rec = self._record(e, name)
                except ImageError:
                    continue
                if rec.config_digest.startswith(want) or rec.digest == want or name == want:
                    matches.append(rec)
            if len({m.config_digest for m in matches}) > 1:
                raise ImageError(f"image ID prefix {ref!r} is ambiguous")
            return matches[0] if matches else None
        full = normalize(ref)
        for name, e in entries:
            if name == full:
                return self._record(e, name)
        parsed = parse(full)
        if parsed.digest:  # repo@digest finds the image under any tag of that repository
            for name, e in entries:
                if (
                    name
                    and not _is_id(name)
                    and e.get("digest") == parsed.digest
                    and parse(name).repository == parsed.repository
                ):
                    return dataclasses.replace(self._record(e, name), ref=full)
        return None

    def _name_exists(self, ref: str, entries: builtins.list[tuple[str | None, dict[str, Any]]]) -> bool:
        try:
            full = normalize(ref)
        except ImageError:
            return False
        return any(name == full for name, _ in entries)

    def _require(self, ref: str) -> tuple[ImageRecord, _Image]:
        rec = self.resolve(ref)
        if rec is None:
            raise ImageError(f"image {ref!r} is not in the local store ({self.root}); load or pull it first")
        entry_mt = next((e.get("mediaType") for e in self._entries() if e.get("digest") == rec.digest), None)
        return rec, self._image(rec.digest, entry_mt, rec.ref)

    # -- removing ------------------------------------------------------------------------------
    @_os_errors
    def remove(self, ref: str) -> ImageRecord:
        """Drop a name (by ID: every name of that image), then collect what nothing references."""
        rec = self.resolve(ref)
        if rec is None:
            raise ImageError(f"image {ref!r} is not in the local store ({self.root})")
        mode = "id"  # an image ID (or prefix) removes every name of that image
        if not ref.startswith("sha256:"):
            with contextlib.suppress(ImageError):
                full = parse(ref)
                if str(full) == rec.ref and any(self.entry_name(e) == rec.ref for e in self._entries()):
                    mode = "name"  # just that name; other tags of the image stay
                elif full.digest:
                    mode = "repo-digest"  # repo@digest: that repository's names of the image

        def dropped(entry: dict[str, Any]) -> bool:
            name = self.entry_name(entry)
            if mode == "name":
                return name == rec.ref
            if entry.get("digest") != rec.digest:
                return False
            if mode == "id" or name is None or _is_id(name):
                return True
            return parse(name).repository == parse(rec.ref).repository

        with self._lock("index.lock", fcntl.LOCK_EX):
            current = self._read_index_file()
            kept = [e for e in current if not dropped(e)]
            _write_atomic(self.oci_dir / "index.json", self._index_bytes(kept))
        self.gc()
        return rec

    @_os_errors
    def gc(self) -> None:
        """Delete blobs and rootfs caches no index entry reaches, and leftovers of crashed imports."""
        if not self.oci_dir.is_dir():
            return
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_EX):
            blobs: set[str] = set()
            manifests: set[str] = set()
            for entry in self._read_index_file():
                self._mark(entry.get("digest"), blobs, manifests, 0)
            for algo_dir in self.blobs_dir.iterdir():
                for blob in algo_dir.iterdir():
                    if f"{algo_dir.name}:{blob.name}" not in blobs:
                        blob.unlink(missing_ok=True)
            for rootfs in self.rootfs_dir.iterdir():
                if f"sha256:{rootfs.name}" not in manifests:
                    _rmtree(rootfs)
            for leftover in self.tmp_dir.iterdir():  # nobody holds gc.lock shared: all stale
                if leftover.is_dir() and not leftover.is_symlink():
                    _rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
            self._images.clear()

    def _mark(self, digest: object, blobs: set[str], manifests: set[str], depth: int) -> None:
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest) or depth > 3:
            return
        blobs.add(digest)
        try:
            doc = _json(self._blob(digest), digest)
        except ImageError:
            return
        for child in doc.get("manifests") or []:
            if isinstance(child, dict):
                self._mark(child.get("digest"), blobs, manifests, depth + 1)
        if isinstance(doc.get("config"), dict):
            manifests.add(digest)
            blobs.add(str(doc["config"].get("digest")))
            for layer in doc.get("layers") or []:
                if isinstance(layer, dict):
                    blobs.add(str(layer.get("digest")))
