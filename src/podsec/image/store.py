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

import builtins
import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from podsec.errors import ImageError
from podsec.image.model import ImageInfo, info_from_config
from podsec.image.passwd import read_user_db
from podsec.image.reference import normalize, parse
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


def _os_errors(func: Callable[Concatenate[ImageStore, _P], _R]) -> Callable[Concatenate[ImageStore, _P], _R]:
    """Public store calls report a failing filesystem (EACCES, ENOSPC, …) as one ImageError line."""

    @functools.wraps(func)
    def wrapper(self: ImageStore, *args: _P.args, **kwargs: _P.kwargs) -> _R:
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


PULL_TRANSPORTS = ("docker", "containers-storage", "docker-daemon", "oci", "oci-archive", "docker-archive")


def pull_source(src: str) -> str:
    """A bare image name (``nginx:1.25``, ``localhost:5000/app``) is a registry image, normalised as
    containerd/crictl and podman do (``docker://docker.io/library/nginx:1.25``); a source with one of
    :data:`PULL_TRANSPORTS` is kept as given."""
    transport, sep, rest = src.partition(":")
    if sep and rest and transport in PULL_TRANSPORTS:
        return src
    try:
        return f"docker://{normalize(src)}"
    except ImageError as e:
        raise ImageError(
            f"source {src!r}: neither an image name ({e.message}) nor a transport "
            "(docker://, containers-storage:, docker-daemon:, oci:, oci-archive:, docker-archive:)"
        ) from None


class ImageStore:
    """A containerd-like local image store in an OCI layout; see the module docstring for the layout."""

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

    # -- importing: OCI layouts in Python ------------------------------------------------------
    def _put_blob(self, src: Path, digest: str, size: int | None, *, move: bool, where: str) -> None:
        """Bring one verified blob into the store (skipped when already there: content-addressed)."""
        import hashlib

        dest = self.blob_path(digest)
        if dest.exists():
            return
        algo = digest.split(":", 1)[0]
        h = hashlib.new(algo)
        total = 0
        try:
            if move:
                with open(src, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        total += len(chunk)
                staged = src
            else:
                fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
                staged = Path(tmp)
                with open(src, "rb") as f, os.fdopen(fd, "wb") as out:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        total += len(chunk)
                        out.write(chunk)
        except FileNotFoundError as e:
            raise ImageError(f"blob {digest} is missing", file=where) from e
        except OSError as e:
            raise ImageError(f"cannot copy blob {digest}: {e.strerror}", file=where) from e
        try:
            if f"{algo}:{h.hexdigest()}" != digest or (size is not None and size != total):
                raise ImageError(f"blob {digest} does not match its digest or size", file=where)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged, 0o644)
            os.rename(staged, dest)
        finally:
            if not move:
                staged.unlink(missing_ok=True)

    def _import_layout(
        self,
        layout: Path,
        where: str,
        *,
        move: bool,
        select: Callable[[dict[str, Any], str | None], bool] | None = None,
    ) -> builtins.list[str]:
        """Copy the named images of an OCI layout (all of them if none is named) into the store."""
        index = _json(self._read_file(layout / "index.json", where), f"{where}/index.json")
        entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
        named: builtins.list[tuple[str | None, dict[str, Any]]] = []
        for e in entries:
            ann = _dict(e.get("annotations"))
            raw = ann.get(ANN_CONTAINERD_NAME) or ann.get(ANN_REF_NAME)
            name = None
            if isinstance(raw, str) and raw:
                try:
                    name = normalize(raw)
                except ImageError as err:
                    raise ImageError(f"index entry name {raw!r} is not a valid image reference", file=where) from err
            named.append((name, e))
        if any(n for n, _ in named):
            named = [(n, e) for n, e in named if n]
        if select is not None:
            named = [(n, e) for n, e in named if select(e, n)]
        if not named:
            raise ImageError("no matching image in the OCI layout", file=where)
        todo: builtins.list[tuple[str | None, dict[str, Any]]] = []
        for name, entry in named:
            desc = self._import_tree(layout, entry, where, move=move)
            todo.append((name, desc))
        result = []
        for name, desc in todo:
            if name is None:
                name = self._image(desc["digest"], desc.get("mediaType"), where).config_digest
            result.append((name, desc))
        return self._finish_import(result)

    def _read_file(self, path: Path, where: str) -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read(_JSON_LIMIT + 1)
        except FileNotFoundError as e:
            raise ImageError(f"{path.name} is missing", file=where) from e
        except OSError as e:
            raise ImageError(f"cannot read {path.name}: {e.strerror}", file=where) from e
        if len(data) > _JSON_LIMIT:
            raise ImageError(f"{path.name} is too large", file=where)
        return data

    def _import_tree(self, layout: Path, desc: dict[str, Any], where: str, *, move: bool) -> dict[str, Any]:
        """Import one index entry (choosing the host platform of an index); returns the stored descriptor."""
        import hashlib

        digest = _check_digest(desc.get("digest"), where)
        algo, _, hexpart = digest.partition(":")
        src = layout / "blobs" / algo / hexpart
        raw = self._read_file(src, where)
        if f"{algo}:{hashlib.new(algo, raw).hexdigest()}" != digest:
            raise ImageError(f"blob {digest} does not match its digest", file=where)
        doc = _json(raw, f"{where}@{digest}")
        mt = doc.get("mediaType") or desc.get("mediaType")
        if mt in INDEX_TYPES or (mt is None and "manifests" in doc):
            child = _choose_platform(doc, where)
            out = self._import_tree(layout, child, where, move=move)
            if "platform" in child:
                out["platform"] = child["platform"]
            return out
        if not isinstance(doc.get("config"), dict):
            raise ImageError(f"unsupported manifest {digest}", file=where)
        for blob in [doc["config"], *[lay for lay in doc.get("layers") or [] if isinstance(lay, dict)]]:
            bd = _check_digest(blob.get("digest"), where)
            balgo, _, bhex = bd.partition(":")
            size = blob.get("size")
            self._put_blob(
                layout / "blobs" / balgo / bhex, bd, size if isinstance(size, int) else None, move=move, where=where
            )
        self._put_blob(src, digest, len(raw), move=move, where=where)
        out = {"mediaType": mt or MT_OCI_MANIFEST, "digest": digest, "size": len(raw)}
        if isinstance(desc.get("platform"), dict):
            out["platform"] = desc["platform"]
        return out

    def _finish_import(self, named: builtins.list[tuple[str, dict[str, Any]]]) -> builtins.list[str]:
        for name, desc in named:  # everything must resolve before a name points at it
            self._image(desc["digest"], desc.get("mediaType"), name)
        self._commit(named)
        seen: dict[str, None] = {}
        for name, _ in named:
            seen.setdefault(name, None)
        return builtins.list(seen)

    # -- importing: archives -------------------------------------------------------------------
    @staticmethod
    def _archive_kind(path: Path) -> str:
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                names = {n.removeprefix("./").rstrip("/") for n in tf.getnames()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageError(f"not a docker-archive, oci-archive or OCI layout: {e}", file=str(path)) from e
        if "index.json" in names and "oci-layout" in names:
            return "oci"
        if "manifest.json" in names:
            return "docker"
        raise ImageError("tar file is neither a docker-archive nor an oci-archive", file=str(path))

    def _extract_oci_archive(self, path: Path, dest: Path) -> None:
        """Unpack only what an OCI layout may hold (index.json, oci-layout, blobs/<algo>/<hex>)."""
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    name = member.name.removeprefix("./").lstrip("/")
                    if not (member.isreg() or member.islnk()):
                        continue
                    if name in ("index.json", "oci-layout") or _BLOB_NAME_RE.fullmatch(name):
                        out = dest / name
                        out.parent.mkdir(parents=True, exist_ok=True)
                        src = tf.extractfile(member)
                        if src is None:
                            continue
                        with src, open(out, "wb") as f:
                            shutil.copyfileobj(src, f, 1 << 20)
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"broken oci-archive: {e}", file=str(path)) from e
        except OSError as e:
            raise ImageError(f"cannot unpack oci-archive: {e.strerror or e}", file=str(path)) from e

    def _load_oci_archive(
        self, path: Path, select: Callable[[dict[str, Any], str | None], bool] | None = None
    ) -> builtins.list[str]:
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("oci-archive-")
            try:
                self._extract_oci_archive(path, staging)
                return self._import_layout(staging, str(path), move=True, select=select)
            finally:
                _rmtree(staging)

    @staticmethod
    def _docker_manifest(path: Path) -> builtins.list[dict[str, Any]]:
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                member = next(m for m in tf if m.name.removeprefix("./") == "manifest.json")
                f = tf.extractfile(member)
                data = f.read(_JSON_LIMIT) if f else b""
        except StopIteration as e:
            raise ImageError("docker-archive has no manifest.json", file=str(path)) from e
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageError(f"broken docker-archive: {e}", file=str(path)) from e
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise ImageError(f"docker-archive manifest.json is not valid JSON: {e}", file=str(path)) from e
        if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
            raise ImageError("docker-archive manifest.json is not a list of images", file=str(path))
        return doc

    def _load_docker_archive(
        self, path: Path, select: Callable[[int, builtins.list[str]], bool] | None = None
    ) -> builtins.list[str]:
        images = self._docker_manifest(path)
        self._init_dirs()
        result: builtins.list[tuple[str, dict[str, Any]]] = []
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("docker-archive-")
            try:
                link = staging / "archive.tar"  # skopeo splits its argument at ':'; give it a safe name
                self._plain_archive(path, link)
                for i, image in enumerate(images):
                    tags = image.get("RepoTags") or []
                    names = []
                    for tag in tags if isinstance(tags, list) else []:
                        try:
                            names.append(normalize(str(tag)))
                        except ImageError as e:
                            raise ImageError(f"RepoTags entry {tag!r} is not a valid reference", file=str(path)) from e
                    if select is not None and not select(i, names):
                        continue
                    # v2s2 keeps docker's config bytes, so the image ID stays the one docker showed
                    desc = self._skopeo_copy(
                        f"docker-archive:{link}:@{i}", ["--format", "v2s2"], staging / f"img{i}", str(path)
                    )
                    if not names:
                        names = [self._image(desc["digest"], desc.get("mediaType"), str(path)).config_digest]
                    result += [(n, desc) for n in names]
                if not result:
                    raise ImageError("no matching image in the docker-archive", file=str(path))
                return self._finish_import(result)
            finally:
                _rmtree(staging)

    @staticmethod
    def _plain_archive(path: Path, dest: Path) -> None:
        """Put an uncompressed copy (or a symlink) of ``path`` at ``dest``: skopeo reads only plain tars."""
        from podsec.image.unpack import decompressed, detect_compression

        try:
            with open(path, "rb") as f:
                head = f.read(8)
                if detect_compression(head) == "tar":
                    dest.symlink_to(path.resolve())
                    return
                f.seek(0)
                with decompressed(f, str(path)) as plain, open(dest, "wb") as out:
                    shutil.copyfileobj(plain, out, 1 << 20)
        except (OSError, EOFError, ValueError) as e:
            raise ImageError(f"cannot decompress archive: {e}", file=str(path)) from e

    # -- skopeo --------------------------------------------------------------------------------
    def _skopeo_bin(self) -> str:
        exe = self._skopeo or shutil.which("skopeo")
        if exe is None:
            raise ImageError("skopeo is not installed; it is needed to pull images and read docker archives")
        return exe

    def _skopeo_copy(self, src: str, extra: builtins.list[str], layout: Path, where: str) -> dict[str, Any]:
        """``skopeo copy src oci:<layout>`` with blobs written straight into the store's blob dir."""
        if ":" in str(layout):
            raise ImageError("the image store path must not contain ':' (skopeo cannot address it)", file=where)
        cmd = [self._skopeo_bin()]
        if not Path("/etc/containers/policy.json").exists():
            cmd.append("--insecure-policy")  # no signature policy configured on this host at all
        cmd += [
            "copy", "--quiet", "--dest-oci-accept-uncompressed-layers",
            "--dest-shared-blob-dir", str(self.blobs_dir), *extra, src, f"oci:{layout}:image",
        ]  # fmt: skip
        env = dict(os.environ, TMPDIR=str(self.tmp_dir))
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
        except OSError as e:
            raise ImageError(f"cannot run skopeo: {e.strerror}", file=where) from e
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
            detail = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", detail)
            raise ImageError(f"skopeo copy failed: {detail}", file=where)
        entries = _json(self._read_file(layout / "index.json", where), where).get("manifests")
        if not isinstance(entries, list) or not entries or not isinstance(entries[-1], dict):
            raise ImageError("skopeo wrote no image", file=where)
        desc = entries[-1]
        _check_digest(desc.get("digest"), where)
        return desc

    def _source_format(self, src: str, tls_verify: bool) -> str | None:
        """skopeo's ``--format`` that keeps the source manifest (and so its digest) as it is.

        Without it skopeo converts docker schema 2 images to OCI, re-serialising the config and
        so changing the image ID that containerd (which stores manifests verbatim) would report.
        """
        if src.startswith("docker-daemon:"):
            return "v2s2"
        cmd = [self._skopeo_bin(), "inspect", "--raw", *([] if tls_verify else ["--tls-verify=false"]), src]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            return None  # the copy itself will report the problem
        try:
            doc = _json(proc.stdout, src)
            mt = doc.get("mediaType")
            if mt in INDEX_TYPES or (mt is None and "manifests" in doc):
                mt = _choose_platform(doc, src).get("mediaType")
        except ImageError:
            return None
        return {MT_DOCKER_MANIFEST: "v2s2", MT_OCI_MANIFEST: "oci"}.get(str(mt))

    def _pull_skopeo(self, src: str, name: str | None, *, tls_verify: bool = True) -> builtins.list[str]:
        extra = [] if tls_verify else ["--src-tls-verify=false"]
        fmt = self._source_format(src, tls_verify)
        if fmt is not None:
            extra += ["--format", fmt]
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("pull-")
            try:
                desc = self._skopeo_copy(src, extra, staging / "layout", src)
                if name is None:
                    name = self._image(desc["digest"], desc.get("mediaType"), src).config_digest
                return self._finish_import([(name, desc)])
            finally:
                _rmtree(staging)

    # -- public import API ---------------------------------------------------------------------
    @_os_errors
    def load(self, path: Path) -> builtins.list[str]:
        """Import a docker-archive, an oci-archive or an OCI layout directory; returns the refs."""
        path = Path(path)
        if path.is_dir():
            if not (path / "index.json").is_file():
                raise ImageError("directory is not an OCI image layout (no index.json)", file=str(path))
            self._init_dirs()
            with self._lock("gc.lock", fcntl.LOCK_SH):
                return self._import_layout(path, str(path), move=False)
        if not path.exists():
            raise ImageError("no such file or directory", file=str(path))
        kind = self._archive_kind(path)
        return self._load_oci_archive(path) if kind == "oci" else self._load_docker_archive(path)

    @_os_errors
    def pull(self, src: str, *, insecure: bool | None = None) -> builtins.list[str]:
        """Copy an image in through a skopeo transport; the stored name is the normalised source name.

        ``docker://`` (TLS verification off for localhost registries unless ``insecure`` says
        otherwise), ``containers-storage:``, ``docker-daemon:``, ``oci:``, ``oci-archive:`` and
        ``docker-archive:`` (the archive and layout forms without a ref load every named image).
        """
        src = pull_source(src)
        transport, _sep, rest = src.partition(":")
        if transport == "docker":
            if not rest.startswith("//"):
                raise ImageError(f"source {src!r}: docker transport needs docker://")
            ref = parse(rest[2:])
            host = ref.domain.rsplit(":", 1)[0] if not ref.domain.startswith("[") else ref.domain.split("]")[0] + "]"
            if insecure is None:
                insecure = host in _LOCAL_HOSTS
            return self._pull_skopeo(f"docker://{rest[2:]}", str(ref), tls_verify=not insecure)
        if transport in ("containers-storage", "docker-daemon"):
            image = re.sub(r"^\[[^\]]*\]", "", rest) if transport == "containers-storage" else rest
            name: str | None = None  # an image ID: stored under its config digest
            if not (_ID_RE.fullmatch(image) or re.fullmatch(r"@?[0-9a-f]{64}", image)):
                name = normalize(image)
            return self._pull_skopeo(src, name)
        if transport in ("oci", "oci-archive", "docker-archive"):
            path_s, _, ref_s = rest.partition(":")
            path = Path(path_s)
            if not path.exists():
                raise ImageError("no such file or directory", file=path_s)
            if transport == "docker-archive":
                if not ref_s:
                    return self._load_docker_archive(path)
                if ref_s.startswith("@"):
                    want_i = int(ref_s[1:]) if ref_s[1:].isdigit() else -1
                    return self._load_docker_archive(path, lambda i, _names: i == want_i)
                want = normalize(ref_s)
                return self._load_docker_archive(path, lambda _i, names: want in names)
            select = self._layout_selector(ref_s) if ref_s else None
            if transport == "oci-archive":
                if self._archive_kind(path) != "oci":
                    raise ImageError("not an oci-archive", file=path_s)
                return self._load_oci_archive(path, select)
            if not path.is_dir():
                raise ImageError("not an OCI layout directory", file=path_s)
            self._init_dirs()
            with self._lock("gc.lock", fcntl.LOCK_SH):
                return self._import_layout(path, path_s, move=False, select=select)
        raise ImageError(
            f"unsupported source transport {transport!r} (docker://, containers-storage:, docker-daemon:, "
            "oci:, oci-archive:, docker-archive:)"
        )

    @staticmethod
    def _layout_selector(ref: str) -> Callable[[dict[str, Any], str | None], bool]:
        """Match an OCI layout entry by its ref-name annotation or by its normalised name."""
        try:
            full: str | None = normalize(ref)
        except ImageError:
            full = None

        def select(entry: dict[str, Any], name: str | None) -> bool:
            ann = _dict(entry.get("annotations"))
            return ann.get(ANN_REF_NAME) == ref or (full is not None and name == full)

        return select
