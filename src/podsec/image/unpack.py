"""Apply OCI image layers to a directory, safely.

Layers come from registries and archives nobody vetted, so every entry is placed with
directory fds and ``O_NOFOLLOW``: parent symlinks resolve *inside* ``dest`` (as containerd's
``fs.RootPath`` does), ``..`` is refused, hardlinks only point inside ``dest``, device nodes
are skipped (a container never needs them from an image; the runtime makes /dev).
Whiteouts follow the OCI image spec (``.wh.<name>`` and ``.wh..wh..opq``).
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from podsec.errors import ImageError
from podsec.image.fsutil import open_dir_in_root, split_path
from podsec.logger import get_logger

log = get_logger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_CHUNK = 1 << 20

MAX_LAYER_SIZE_ENV = "PODSEC_MAX_LAYER_SIZE"
"""Set by ``podsec --max-layer-size`` (so the detached pod supervisor, which unpacks lazily, inherits it)."""
DEFAULT_MAX_LAYER_SIZE = 16 << 30


def max_layer_size() -> int:
    """The most bytes one layer may expand to: ``$PODSEC_MAX_LAYER_SIZE`` (bytes; the CLI turns ``16Gi`` into
    them), else 16 GiB."""
    raw = os.environ.get(MAX_LAYER_SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_LAYER_SIZE
    if not raw.isdigit() or int(raw) <= 0:
        raise ImageError(f"{MAX_LAYER_SIZE_ENV}={raw!r}: not a size in bytes (podsec --max-layer-size takes 16Gi)")
    return int(raw)


def human_bytes(n: int) -> str:
    """``3.0 GiB``: binary units, as the cap is given."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@dataclass(slots=True)
class LayerBudget:
    """How much a layer may still write: the cap per layer, and what is left free on the filesystem
    (shared by the layers of one image). Counted from the tar headers before any byte is written, so a
    3 MB gzip or a 1.5 KiB sparse tar that expands to 3 GiB is refused at once."""

    cap: int
    free: int | None = None
    used: int = 0

    def take(self, size: int, name: str, label: str) -> None:
        self.used += size
        if self.used > self.cap:
            raise ImageError(
                f"layer expands to more than {human_bytes(self.cap)} (the --max-layer-size cap): "
                f"{human_bytes(self.used)} by {name!r}", file=label)
        if self.free is not None and self.used > self.free:
            raise ImageError(
                f"layer expands to more than the {human_bytes(self.free)} free where the image store unpacks: "
                f"{human_bytes(self.used)} by {name!r}", file=label)


@dataclass(slots=True)
class UnpackReport:
    """What a layer did not apply as written (kept so a caller can show it, not just log it)."""

    skipped: list[str] = field(default_factory=list)
    entries: int = 0

    def skip(self, name: str, why: str) -> None:
        msg = f"{name}: {why}"
        self.skipped.append(msg)
        log.warning("layer entry skipped: %s", msg)


class _HashingReader(io.RawIOBase):
    """Hashes what tarfile reads so the uncompressed stream can be checked against the diff_id."""

    def __init__(self, raw: IO[bytes], algo: str = "sha256") -> None:
        self.raw = raw
        self.hash = hashlib.new(algo)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        return n

    def drain(self) -> None:
        while chunk := self.raw.read(_CHUNK):
            self.hash.update(chunk)


def detect_compression(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return "tar"


@contextlib.contextmanager
def decompressed(raw: BinaryIO, label: str) -> Iterator[IO[bytes]]:
    """Yield the uncompressed tar stream of ``raw``, whatever the (detected) compression."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    kind = detect_compression(buffered.peek(8)[:8])
    if kind == "tar":
        yield buffered
    elif kind == "gzip":
        with gzip.GzipFile(fileobj=buffered, mode="rb") as gz:
            yield gz  # type: ignore[misc]
    elif kind in ("bzip2", "xz"):
        opener = bz2.BZ2File if kind == "bzip2" else lzma.LZMAFile
        with opener(buffered, "rb") as f:
            yield f
    else:
        zstd = shutil.which("zstd")
        if zstd is None:
            raise ImageError("zstd-compressed layer but no zstd program is installed", file=label)
        proc = subprocess.Popen([zstd, "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None

        def feed() -> None:
            try:
                while chunk := buffered.read(_CHUNK):
                    proc.stdin.write(chunk)  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # type: ignore[union-attr]

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        ok = False
        try:
            yield proc.stdout
            ok = True
        finally:
            proc.stdout.close()
            feeder.join()
            status = proc.wait()
        if ok and status != 0:
            raise ImageError("zstd could not decompress the layer", file=label)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    try:
        return int(float(member.mtime) * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return 0


class _Applier:
    """Applies one layer's entries to the tree under ``root_fd``."""

    def __init__(self, root_fd: int, report: UnpackReport, budget: LayerBudget | None = None,
                 label: str = "") -> None:
        self.root_fd = root_fd
        self.report = report
        self.budget = budget
        self.label = label
        self.is_root = os.geteuid() == 0
        self.created: set[tuple[str, ...]] = set()
        self.dirs: list[tuple[tuple[str, ...], int, int]] = []  # parts, mode, mtime_ns

    # -- helpers -------------------------------------------------------------------------------
    def _parent(self, parts: list[str], create: bool = True) -> int:
        return open_dir_in_root(self.root_fd, parts[:-1], create=create)

    @staticmethod
    def _remove(parent: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)

    def _chown(self, name: str | int, uid: int, gid: int, parent: int | None = None) -> None:
        try:
            if isinstance(name, int):
                os.fchown(name, uid, gid)
            else:
                os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        except PermissionError:
            if self.is_root:
                raise
        except OSError as e:  # e.g. uid not mapped in a user namespace
            if e.errno != errno.EINVAL:
                raise

    @staticmethod
    def _xattrs(fd: int, member: tarfile.TarInfo) -> None:
        for key, value in (member.pax_headers or {}).items():
            if not key.startswith("SCHILY.xattr."):
                continue
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                os.setxattr(fd, key[len("SCHILY.xattr.") :], raw)
            except OSError as e:
                log.warning("cannot set xattr %s: %s", key, e)

    # -- entry types ---------------------------------------------------------------------------
    def whiteout(self, parts: list[str], name: str) -> None:
        try:
            parent = self._parent(parts, create=False)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise
            return
        try:
            if name == WHITEOUT_OPAQUE:
                self._opaque(parent, tuple(parts[:-1]))
            else:
                self._remove(parent, name[len(WHITEOUT_PREFIX) :])
        finally:
            os.close(parent)

    def _opaque(self, dir_fd: int, prefix: tuple[str, ...]) -> None:
        """Clear everything in the directory that this layer did not itself put there."""
        with os.scandir(dir_fd) as it:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            key = (*prefix, child)
            if key not in self.created:
                self._remove(dir_fd, child)
            elif is_dir:
                sub = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    self._opaque(sub, key)
                finally:
                    os.close(sub)

    def entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]) -> None:
        mode = member.mode & 0o7777
        mtime = _mtime_ns(member)
        if not parts:
            if member.isdir():
                self._attrs_fd(self.root_fd, member)
                self.dirs.append(((), mode, mtime))
            else:
                self.report.skip(member.name, "non-directory entry for the root")
            return
        if member.ischr() or member.isblk():
            self.report.skip(member.name, "device node")
            return
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk() or member.isfifo()):
            self.report.skip(member.name, f"unsupported tar entry type {member.type!r}")
            return
        name = parts[-1]
        try:
            parent = self._parent(parts)
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            self.report.skip(
                member.name,
                "a parent is not a directory"
                if e.errno == errno.ENOTDIR
                else "too many levels of symbolic links in the parent path",
            )
            return
        try:
            if member.islnk():
                self._hardlink(parent, name, member)
            else:
                try:
                    st: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and not (member.isdir() and stat.S_ISDIR(st.st_mode)):
                    self._remove(parent, name)
                if member.isdir():
                    if st is None or not stat.S_ISDIR(st.st_mode):
                        os.mkdir(name, 0o700, dir_fd=parent)
                    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                    try:
                        self._attrs_fd(fd, member)
                    finally:
                        os.close(fd)
                    self.dirs.append((tuple(parts), mode, mtime))
                elif member.isreg():
                    self._regular(tf, parent, name, member)
                elif member.issym():
                    os.symlink(member.linkname, name, dir_fd=parent)
                    self._chown(name, member.uid, member.gid, parent)
                    os.utime(name, ns=(mtime, mtime), dir_fd=parent, follow_symlinks=False)
                else:  # fifo
                    os.mkfifo(name, 0o600, dir_fd=parent)
                    self._chown(name, member.uid, member.gid, parent)
                    os.chmod(name, mode, dir_fd=parent)
                    os.utime(name, ns=(mtime, mtime), dir_fd=parent)
            self.created.add(tuple(parts))
        finally:
            os.close(parent)

    def _attrs_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        self._chown(fd, member.uid, member.gid)
        # Directories stay writable for the owner until the layer is done (matters when not root).
        os.fchmod(fd, (member.mode & 0o7777) | (0 if self.is_root else 0o700))
        self._xattrs(fd, member)

    def _regular(self, tf: tarfile.TarFile, parent: int, name: str, member: tarfile.TarInfo) -> None:
        if self.budget is not None:
            self.budget.take(member.size, member.name, self.label)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            src = tf.extractfile(member)
            if src is not None:
                with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            self._chown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            self._xattrs(fd, member)
            mtime = _mtime_ns(member)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _hardlink(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        target = split_path(member.linkname)
        if not target:
            self.report.skip(member.name, f"hardlink target {member.linkname!r} is outside the layer root")
            return
        try:
            tparent = open_dir_in_root(self.root_fd, target[:-1])
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise
            self.report.skip(member.name, f"hardlink target {member.linkname!r} does not exist")
            return
        try:
            try:
                tst = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
            except FileNotFoundError:
                self.report.skip(member.name, f"hardlink target {member.linkname!r} does not exist")
                return
            if stat.S_ISDIR(tst.st_mode):
                self.report.skip(member.name, f"hardlink target {member.linkname!r} is a directory")
                return
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == (tst.st_dev, tst.st_ino):
                return  # already that file (a link to itself, or a repeated entry)
            if st is not None:
                self._remove(parent, name)
            os.link(target[-1], name, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(tparent)

    def _open_exact(self, parts: tuple[str, ...]) -> int | None:
        """The directory at exactly ``parts`` (no symlink anywhere on the way), or ``None``."""
        fd = os.dup(self.root_fd)
        for comp in parts:
            try:
                nxt = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                os.close(fd)
                return None
            os.close(fd)
            fd = nxt
        return fd

    def finish(self) -> None:
        """Directory modes and mtimes last: adding children would otherwise bump the mtimes."""
        for parts, mode, mtime in reversed(self.dirs):
            fd = self._open_exact(parts)
            if fd is None:
                continue  # replaced or removed later in the same layer
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _apply(stream: IO[bytes], root_fd: int, label: str, report: UnpackReport,
           budget: LayerBudget | None = None) -> None:
    applier = _Applier(root_fd, report, budget, label)
    try:
        tf = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 (closed below)
    except tarfile.ReadError as e:
        if "empty file" in str(e):  # a zero-byte layer adds nothing
            return
        raise ImageError(f"not a tar layer: {e}", file=label) from e
    except tarfile.TarError as e:
        raise ImageError(f"not a tar layer: {e}", file=label) from e
    with tf:
        for member in tf:
            report.entries += 1
            parts = split_path(member.name)
            if parts is None:
                report.skip(member.name, "path contains '..'")
                continue
            base = parts[-1] if parts else ""
            if base.startswith(WHITEOUT_PREFIX):
                if base == WHITEOUT_OPAQUE:
                    applier.whiteout(parts, base)
                elif not base.startswith(WHITEOUT_META_PREFIX):
                    if base[len(WHITEOUT_PREFIX) :] in ("", ".", ".."):
                        report.skip(member.name, "whiteout without a usable name")
                    else:
                        applier.whiteout(parts, base)
                continue
            applier.entry(tf, member, parts)
    applier.finish()


def unpack_layer(
    src: Path | str | BinaryIO,
    dest: Path,
    *,
    diff_id: str | None = None,
    report: UnpackReport | None = None,
    budget: LayerBudget | None = None,
) -> UnpackReport:
    """Apply one layer (a path or a binary file object; tar, gzip, zstd, bzip2 or xz) onto ``dest``.

    With ``diff_id`` (``sha256:<hex>`` of the uncompressed tar) the content is verified; a
    mismatch raises ImageError after the entries were applied, so callers unpack into a
    temporary directory they can throw away. ``budget`` bounds what the layer may write
    (default: :func:`max_layer_size` and the free space under ``dest``).
    """
    report = report if report is not None else UnpackReport()
    label = str(src) if isinstance(src, (str, Path)) else getattr(src, "name", "<layer>")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ImageError(f"cannot open unpack destination: {e.strerror}", file=str(dest)) from e
    if budget is None:
        budget = LayerBudget(max_layer_size(), free_bytes(root_fd))
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(src, (str, Path)):
                try:
                    raw: BinaryIO = stack.enter_context(open(src, "rb", buffering=0))
                except OSError as e:
                    raise ImageError(f"cannot read layer: {e.strerror}", file=label) from e
            else:
                raw = src
            algo = diff_id.split(":", 1)[0] if diff_id else "sha256"
            try:
                with decompressed(raw, label) as plain:
                    hasher = _HashingReader(plain, algo)
                    _apply(io.BufferedReader(hasher, _CHUNK), root_fd, label, report, budget)
                    hasher.drain()
            except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile, ValueError) as e:
                if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise ImageError(f"no space left while unpacking layer into {dest}", file=label) from e
                raise ImageError(f"broken layer: {e}", file=label) from e
            if diff_id and f"{algo}:{hasher.hash.hexdigest()}" != diff_id:
                raise ImageError(
                    f"layer content is {algo}:{hasher.hash.hexdigest()}, config expects {diff_id}", file=label
                )
    finally:
        os.close(root_fd)
    return report


def free_bytes(fd: int) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem of ``fd`` (root may use a little more)."""
    try:
        st = os.fstatvfs(fd)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def unpack_layers(
    layers: Iterable[Path | str | BinaryIO | tuple[Path, str | None]],
    dest: Path,
) -> UnpackReport:
    """Apply layers bottom-up; an item may be ``(path, diff_id)`` to verify it. Each layer may expand
    to :func:`max_layer_size`; all of them together to the free space under ``dest`` when they started."""
    report = UnpackReport()
    cap = max_layer_size()
    dest.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        free = free_bytes(fd)
    finally:
        os.close(fd)
    for layer in layers:
        budget = LayerBudget(cap, free)
        if isinstance(layer, tuple):
            unpack_layer(layer[0], dest, diff_id=layer[1], report=report, budget=budget)
        else:
            unpack_layer(layer, dest, report=report, budget=budget)
        if free is not None:
            free -= budget.used
    return report
