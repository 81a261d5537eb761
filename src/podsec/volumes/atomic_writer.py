"""The kubelet's AtomicWriter: how configMap/secret/downwardAPI/projected files appear in a volume.

Reference: kubelet-semantics §3.6 (``pkg/volume/util/atomic_writer.go``). Layout::

    <target>/..2024_05_01_10_00_00.123456789/<paths>   real files, the "timestamp dir" (0755)
    <target>/..data -> ..2024_05_01_10_00_00.123456789 swapped atomically via ..data_tmp + rename
    <target>/<first path element> -> ..data/<first path element>

Applications watch ``..data`` for updates, so the layout (and the fact that nothing is rewritten
when the content did not change) is part of the behaviour we reproduce.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from podsec.errors import InputError, RuntimeFailure
from podsec.volumes.ownership import change_ownership

DATA_DIR_NAME = "..data"
NEW_DATA_DIR_NAME = "..data_tmp"
MAX_FILE_NAME_LENGTH = 255
MAX_PATH_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class FileProjection:
    """One file of a payload: content, exact mode, and (fsUser / KEP-5936) the owner uid or None."""

    data: bytes
    mode: int
    uid: int | None = None


Payload = Mapping[str, FileProjection]


def validate_path(target_path: str) -> None:
    """Reject paths the kubelet rejects, with its exact messages (raised as :class:`InputError`)."""
    if target_path == "":
        raise InputError(f'invalid path: must not be empty: "{target_path}"')
    if target_path.startswith("/"):
        raise InputError(f"invalid path: must be relative path: {target_path}")
    if len(target_path) > MAX_PATH_LENGTH:
        raise InputError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    items = target_path.split("/")
    for item in items:
        if item == "..":
            raise InputError(f"invalid path: must not contain '..': {target_path}")
        if len(item) > MAX_FILE_NAME_LENGTH:
            raise InputError(f"invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise InputError(f"invalid path: must not start with '..': {target_path}")


def validate_payload(payload: Payload) -> dict[str, FileProjection]:
    """Validate every path and return the payload keyed by the cleaned path (Go ``filepath.Clean``)."""
    clean: dict[str, FileProjection] = {}
    for path in sorted(payload):
        validate_path(path)
        clean[posixpath.normpath(path)] = payload[path]
    return clean


def write_atomic(
    target_dir: Path,
    payload: Payload,
    fs_group: int | None,
    fs_user: int | None = None,
    *,
    set_perms: Callable[[Path], object] | None = None,
) -> bool:
    """Project ``payload`` into ``target_dir`` like ``AtomicWriter.Write``; True if files were written.

    ``fs_user`` owns every file whose projection has no ``uid`` of its own (``None``: root, as
    today's kubelet). After writing, the whole volume gets the fsGroup walk with the read-only mask
    (``set_perms`` replaces that, for callers that own the volume differently).
    Unchanged content → no new timestamp directory, no ownership walk, only missing symlinks fixed.
    """
    clean = validate_payload(payload)
    target = Path(target_dir)
    if not target.is_dir():
        raise RuntimeFailure(f"atomic writer: target directory {target} does not exist")
    data_dir = target / DATA_DIR_NAME
    try:
        old_ts = os.readlink(data_dir)
    except FileNotFoundError:
        old_ts = ""
    except OSError as e:
        raise RuntimeFailure(f"atomic writer: error reading link for data directory {data_dir}: {e}") from e
    old_ts_path = target / old_ts if old_ts else None

    to_remove: set[str] = set()
    should_write = True
    if old_ts_path is not None:
        to_remove = _paths_to_remove(clean, old_ts_path)
        if not _should_write_payload(clean, old_ts_path) and not to_remove:
            # Up to date: keep the timestamp dir, only make sure the visible symlinks exist.
            should_write = False
            old_ts_path = None

    if should_write:
        ts_dir = _new_timestamp_dir(target)
        try:
            _write_payload_to_dir(clean, ts_dir, fs_user)
            if set_perms is not None:
                set_perms(target)
            else:
                change_ownership(target, fs_group, read_only=True, workers=1)
            new_data = target / NEW_DATA_DIR_NAME
            with contextlib.suppress(FileNotFoundError):
                os.unlink(new_data)
            os.symlink(ts_dir.name, new_data)
            os.rename(new_data, data_dir)
        except BaseException:
            _remove_quietly(target / NEW_DATA_DIR_NAME)
            shutil.rmtree(ts_dir, ignore_errors=True)
            raise

    _create_user_visible_files(clean, target)
    _remove_user_visible_paths(to_remove, target)
    if old_ts_path is not None:
        shutil.rmtree(old_ts_path, ignore_errors=False)
    return should_write


# --------------------------------------------------------------------------------------------------


def _should_write_payload(payload: dict[str, FileProjection], old_ts_dir: Path) -> bool:
    """Byte-compare every file with the current timestamp dir (modes are not compared, as upstream)."""
    for path, proj in payload.items():
        full = old_ts_dir / path
        try:
            os.lstat(full)
        except FileNotFoundError:
            return True
        try:
            if full.read_bytes() != proj.data:
                return True
        except OSError as e:
            raise RuntimeFailure(f"atomic writer: cannot read {full}: {e.strerror}") from e
    return False


def _paths_to_remove(payload: dict[str, FileProjection], old_ts_dir: Path) -> set[str]:
    """Paths present in the current version but absent from the new payload (incl. parents)."""
    current: set[str] = set()
    base = os.fspath(old_ts_dir)
    if not os.path.isdir(base):
        return current
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            current.add(os.path.relpath(os.path.join(dirpath, name), base))
    new: set[str] = set()
    for path in payload:
        sub = path
        while sub:
            new.add(sub)
            sub = posixpath.dirname(sub)
    return current - new


def _new_timestamp_dir(target: Path) -> Path:
    """``..YYYY_MM_DD_HH_MM_SS.<random>`` (UTC, like Go's MkdirTemp pattern), then chmod 0755 exactly."""
    prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    for _ in range(100):
        path = target / f"{prefix}{secrets.randbelow(10**9):09d}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)
        return path
    raise RuntimeFailure(f"atomic writer: cannot create a timestamp directory in {target}")


def _write_payload_to_dir(payload: dict[str, FileProjection], ts_dir: Path, fs_user: int | None) -> None:
    for path, proj in payload.items():
        full = ts_dir / path
        _mkdir_all(full.parent, ts_dir)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, proj.mode)
        try:
            view = memoryview(proj.data)
            while view:
                view = view[os.write(fd, view) :]
            # The create mode was filtered by the umask: set the exact one (as upstream does).
            os.fchmod(fd, proj.mode)
            uid = proj.uid if proj.uid is not None else fs_user
            if uid is not None:
                os.fchown(fd, uid, -1)
        finally:
            os.close(fd)


def _mkdir_all(path: Path, base: Path) -> None:
    """MkdirAll(path, 0777) under a 022 umask, i.e. new directories are 0755."""
    missing: list[Path] = []
    p = path
    while p != base and not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            if not d.is_dir() or d.is_symlink():
                raise RuntimeFailure(f"atomic writer: {d} exists and is not a directory") from None
            continue
        os.chmod(d, 0o755)


def _create_user_visible_files(payload: dict[str, FileProjection], target: Path) -> None:
    """``<first element> -> ..data/<first element>`` for every payload path, if not present yet."""
    for path in payload:
        link = path.split("/", 1)[0]
        visible = target / link
        try:
            os.readlink(visible)
        except FileNotFoundError:
            os.symlink(f"{DATA_DIR_NAME}/{link}", visible)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: exists but is not a link; upstream leaves it
                raise


def _remove_user_visible_paths(paths: set[str], target: Path) -> None:
    """Remove stale top-level entries (only those without '/'), keep going on errors like upstream."""
    last: OSError | None = None
    for p in sorted(paths):
        if "/" in p:
            continue
        try:
            os.unlink(target / p)
        except IsADirectoryError:
            try:
                os.rmdir(target / p)
            except OSError as e:
                last = e
        except FileNotFoundError:
            continue
        except OSError as e:
            last = e
    if last is not None:
        raise RuntimeFailure(f"atomic writer: error pruning old user-visible path: {last}")


def _remove_quietly(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)
