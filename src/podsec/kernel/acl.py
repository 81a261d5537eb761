"""POSIX ACLs as the kernel stores them: the ``system.posix_acl_access`` / ``system.posix_acl_default`` xattrs.

Why not libacl: the binary format is tiny (a 4-byte version header, then 8-byte entries ``tag, perm, id``,
little endian, sorted by tag then id) and reading it straight from the xattr keeps the scan to one
syscall per inode. Reads and writes relative to a directory fd use ``getxattrat``/``setxattrat``
(Linux 6.13) with ``AT_SYMLINK_NOFOLLOW`` when the kernel has them, else the same call through
``/proc/self/fd/N/name`` without following the last component: a symlink is never followed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from podsec.libc import Syscall, syscall_if

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
_ACCESS_B = ACCESS.encode()
_DEFAULT_B = DEFAULT.encode()

VERSION = 2
USER_OBJ = 0x01
USER = 0x02
GROUP_OBJ = 0x04
GROUP = 0x08
MASK = 0x10
OTHER = 0x20
UNDEFINED_ID = 0xFFFFFFFF
TAG_ORDER = (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER)
TAG_NAMES = {USER_OBJ: "user", USER: "user", GROUP_OBJ: "group", GROUP: "group", MASK: "mask", OTHER: "other"}

_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")


def perm_str(perm: int) -> str:
    """``6`` → ``rw-`` (getfacl's spelling)."""
    return ("r" if perm & 4 else "-") + ("w" if perm & 2 else "-") + ("x" if perm & 1 else "-")


def parse_perm(text: str) -> int:
    """``rw-``/``rw``/``6`` → 6; ``X`` is not a stored permission and is refused."""
    if text.isdigit():
        value = int(text)
        if value > 7:
            raise ValueError(f"bad permission {text!r}")
        return value
    perm = 0
    for ch in text:
        if ch == "r":
            perm |= 4
        elif ch == "w":
            perm |= 2
        elif ch == "x":
            perm |= 1
        elif ch != "-":
            raise ValueError(f"bad permission {text!r}")
    return perm


@dataclass(frozen=True, slots=True)
class Entry:
    tag: int
    perm: int
    id: int | None = None
    """The uid (USER) or gid (GROUP); None for the other tags."""

    def text(self) -> str:
        qualifier = "" if self.id is None else str(self.id)
        return f"{TAG_NAMES[self.tag]}:{qualifier}:{perm_str(self.perm)}"


def _sort_key(e: Entry) -> tuple[int, int]:
    return TAG_ORDER.index(e.tag), -1 if e.id is None else e.id


@dataclass(frozen=True, slots=True)
class Acl:
    """One ACL, entries in the kernel's canonical order (hashable: decisions are cached by it)."""

    entries: tuple[Entry, ...]

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Acl:
        """Sorted into the kernel's order and validated; a named id given twice is refused."""
        acl = cls(tuple(sorted(entries, key=_sort_key)))
        acl.validate()
        for tag in (USER, GROUP):
            ids = [e.id for e in acl.entries if e.tag == tag]
            if len(ids) != len(set(ids)):
                raise ValueError(f"duplicate named {TAG_NAMES[tag]} entry")
        return acl

    @classmethod
    def from_mode(cls, mode: int) -> Acl:
        """The minimal ACL equivalent to a mode (what ``getfacl`` shows for a file without an ACL)."""
        return cls((Entry(USER_OBJ, mode >> 6 & 7), Entry(GROUP_OBJ, mode >> 3 & 7), Entry(OTHER, mode & 7)))

    @classmethod
    def from_xattr(cls, data: bytes) -> Acl:
        """Decode the xattr value; raises ValueError for anything the kernel would not have stored."""
        if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
            raise ValueError(f"bad POSIX ACL xattr size {len(data)}")
        (version,) = _HEADER.unpack_from(data)
        if version != VERSION:
            raise ValueError(f"unsupported POSIX ACL version {version}")
        entries = []
        for off in range(_HEADER.size, len(data), _ENTRY.size):
            tag, perm, ident = _ENTRY.unpack_from(data, off)
            if tag not in TAG_NAMES:
                raise ValueError(f"unknown ACL tag {tag:#x}")
            if perm & ~7:
                raise ValueError(f"bad ACL permission {perm:#x}")
            entries.append(Entry(tag, perm, ident if tag in (USER, GROUP) else None))
        acl = cls(tuple(entries))  # the stored order is the order the kernel checks
        acl.validate()
        return acl

    @classmethod
    def parse(cls, text: str) -> Acl:
        """``user::rwx,group::r-x,other::---`` (commas or newlines; ``u``/``g``/``m``/``o`` accepted)."""
        entries = []
        for raw in text.replace("\n", ",").split(","):
            item = raw.split("#", 1)[0].strip()
            if not item:
                continue
            parts = item.split(":")
            if len(parts) != 3:
                raise ValueError(f"bad ACL entry {item!r}")
            kind, qual, perm = parts
            kind = {"u": "user", "g": "group", "m": "mask", "o": "other"}.get(kind, kind)
            if kind == "user":
                tag, ident = (USER, int(qual)) if qual else (USER_OBJ, None)
            elif kind == "group":
                tag, ident = (GROUP, int(qual)) if qual else (GROUP_OBJ, None)
            elif kind == "mask" and not qual:
                tag, ident = MASK, None
            elif kind == "other" and not qual:
                tag, ident = OTHER, None
            else:
                raise ValueError(f"bad ACL entry {item!r}")
            entries.append(Entry(tag, parse_perm(perm), ident))
        return cls.of(entries)

    def validate(self) -> None:
        """``posix_acl_valid``: tags in order (user::, user:*, group::, group:*, mask::, other::), one of each
        base entry, a mask whenever there are named entries. (The kernel does not check ids for order or
        duplicates; the first matching entry counts.)"""
        state = USER_OBJ
        needs_mask = False
        for e in self.entries:
            if e.tag == USER_OBJ and state == USER_OBJ:
                state = USER
            elif e.tag == USER and state == USER:
                needs_mask = True
            elif e.tag == GROUP_OBJ and state == USER:
                state = GROUP
            elif e.tag == GROUP and state == GROUP:
                needs_mask = True
            elif e.tag == MASK and state == GROUP:
                state = OTHER
            elif e.tag == OTHER and (state == OTHER or (state == GROUP and not needs_mask)):
                state = 0
            else:
                raise ValueError(f"invalid ACL {self.text()!r}: entry {e.text()!r} out of place or missing a "
                                 "mask/base entry")
        if state != 0:
            raise ValueError(f"invalid ACL {self.text()!r}: it needs user::, group:: and other:: entries "
                             "(and mask:: with named entries)")

    # -- views ----------------------------------------------------------------------------------

    def to_xattr(self) -> bytes:
        out = [_HEADER.pack(VERSION)]
        for e in self.entries:
            out.append(_ENTRY.pack(e.tag, e.perm, UNDEFINED_ID if e.id is None else e.id))
        return b"".join(out)

    def _one(self, tag: int) -> Entry | None:
        for e in self.entries:
            if e.tag == tag:
                return e
        return None

    @property
    def user_obj(self) -> int:
        e = self._one(USER_OBJ)
        return e.perm if e else 0

    @property
    def group_obj(self) -> int:
        e = self._one(GROUP_OBJ)
        return e.perm if e else 0

    @property
    def other(self) -> int:
        e = self._one(OTHER)
        return e.perm if e else 0

    @property
    def mask(self) -> int | None:
        e = self._one(MASK)
        return e.perm if e else None

    @property
    def users(self) -> dict[int, int]:
        return {e.id: e.perm for e in self.entries if e.tag == USER and e.id is not None}

    @property
    def groups(self) -> dict[int, int]:
        return {e.id: e.perm for e in self.entries if e.tag == GROUP and e.id is not None}

    @property
    def is_minimal(self) -> bool:
        """Only the three base entries: the same as plain mode bits (the kernel never stores these)."""
        return len(self.entries) == 3

    def mode_bits(self) -> int:
        """The 0o777 bits the kernel keeps in ``i_mode`` for this ACL (group bits = mask if any)."""
        group = self.mask if self.mask is not None else self.group_obj
        return self.user_obj << 6 | group << 3 | self.other

    def text(self, sep: str = ",") -> str:
        return sep.join(e.text() for e in self.entries)

    def with_entry(self, tag: int, perm: int, ident: int | None = None) -> Acl:
        """A copy with the entry (tag, id) set to ``perm`` (added if missing); not re-validated."""
        out = [e for e in self.entries if not (e.tag == tag and e.id == ident)]
        out.append(Entry(tag, perm, ident))
        return Acl(tuple(sorted(out, key=_sort_key)))

    def __str__(self) -> str:
        return self.text()


def create_masq(acl: Acl, mode: int) -> tuple[Acl | None, int]:
    """The kernel's ``posix_acl_create_masq``: a new inode's access ACL from the parent's default ACL.

    ``mode`` is the creation mode the program asked for (umask NOT applied when a default ACL exists).
    Returns (access ACL or None when it is equivalent to the mode bits, the new inode's 0o777 bits).
    """
    user_obj = acl.user_obj & (mode >> 6 & 7)
    other = acl.other & (mode & 7)
    entries = []
    for e in acl.entries:
        if e.tag == USER_OBJ:
            entries.append(Entry(USER_OBJ, user_obj))
        elif e.tag == OTHER:
            entries.append(Entry(OTHER, other))
        elif e.tag == MASK:
            entries.append(Entry(MASK, e.perm & (mode >> 3 & 7)))
        elif e.tag == GROUP_OBJ and acl.mask is None:
            entries.append(Entry(GROUP_OBJ, e.perm & (mode >> 3 & 7)))
        else:
            entries.append(e)
    new = Acl(tuple(entries))
    bits = new.mode_bits()
    return (None if new.is_minimal else new), bits


# --------------------------------------------------------------------------------------------------
# xattr I/O


_SYS_SETXATTRAT = 463
_SYS_GETXATTRAT = 464
_AT_SYMLINK_NOFOLLOW = 0x100
_BUF_SIZE = 4096


class _XattrArgs(ctypes.Structure):
    _fields_ = (("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32))


_L = ctypes.c_long
"""Every integer goes to the variadic ``syscall(long, ...)`` as a full long: a plain Python int is passed
as a 32-bit int whose upper register half is undefined (seen here as E2BIG for the size argument)."""
_GETXATTRAT = _L(_SYS_GETXATTRAT)
_SETXATTRAT = _L(_SYS_SETXATTRAT)
_NOFOLLOW = _L(_AT_SYMLINK_NOFOLLOW)
_ARGS_SIZE = _L(ctypes.sizeof(_XattrArgs))


_syscall: Callable[..., int] | None = None
_probed = False
_lock = threading.Lock()
_local = threading.local()


def _probe() -> Callable[..., int] | None:
    """libc ``syscall`` when the kernel has ``getxattrat`` (Linux 6.13), probed once per process."""
    global _syscall, _probed
    with _lock:
        if _probed:
            return _syscall

        def works(fn: Syscall, fd: int) -> bool:
            buf = ctypes.create_string_buffer(64)
            args = _XattrArgs(ctypes.addressof(buf), 64, 0)
            r = fn(_L(_SYS_GETXATTRAT), _L(fd), b".", _L(_AT_SYMLINK_NOFOLLOW), b"user.podsec-probe",
                   ctypes.byref(args), _ARGS_SIZE)
            return r >= 0 or ctypes.get_errno() in (errno.ENODATA, errno.EOPNOTSUPP)

        _syscall = syscall_if(works)
        _probed = True
        return _syscall


def _buffers() -> tuple[ctypes.Array, _XattrArgs]:
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        buf = ctypes.create_string_buffer(_BUF_SIZE)
        bufs = (buf, _XattrArgs(ctypes.addressof(buf), _BUF_SIZE, 0))
        _local.bufs = bufs
    return bufs


def _absent(err: int) -> bool:
    return err in (errno.ENODATA, errno.EOPNOTSUPP, errno.ENOTSUP)


def get_raw_at(dir_fd: int, name: str, which: bytes = _ACCESS_B) -> bytes | None:
    """The raw ACL xattr of ``name`` in ``dir_fd`` (never following a symlink); None when there is none."""
    fn = _syscall if _probed else _probe()
    if fn is not None:
        buf, args = _buffers()
        args.size = _BUF_SIZE
        n = fn(_GETXATTRAT, _L(dir_fd), name.encode("utf-8", "surrogateescape"), _NOFOLLOW, which,
               ctypes.byref(args), _ARGS_SIZE)
        if n >= 0:
            return buf.raw[:n]
        err = ctypes.get_errno()
        if _absent(err):
            return None
        if err != errno.ERANGE:
            raise OSError(err, os.strerror(err), name)
    try:
        return os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", which.decode(), follow_symlinks=False)
    except OSError as e:
        if _absent(e.errno or 0):
            return None
        raise


def get_raw_fd(fd: int, which: bytes = _ACCESS_B) -> bytes | None:
    """The raw ACL xattr of an open file or directory; None when there is none."""
    try:
        return os.getxattr(fd, which.decode())
    except OSError as e:
        if _absent(e.errno or 0):
            return None
        raise


def read_at(dir_fd: int, name: str, which: str = ACCESS) -> Acl | None:
    raw = get_raw_at(dir_fd, name, which.encode())
    return None if raw is None else Acl.from_xattr(raw)


def read_fd(fd: int, which: str = ACCESS) -> Acl | None:
    raw = get_raw_fd(fd, which.encode())
    return None if raw is None else Acl.from_xattr(raw)


def read_path(path: str | os.PathLike[str], which: str = ACCESS) -> Acl | None:
    """The ACL of ``path`` itself (a symlink's own — none — is never followed)."""
    try:
        raw = os.getxattr(path, which, follow_symlinks=False)
    except OSError as e:
        if _absent(e.errno or 0):
            return None
        raise
    return Acl.from_xattr(raw)


def write_at(dir_fd: int, name: str, acl: Acl, which: str = ACCESS) -> None:
    """Set the ACL of ``name`` in ``dir_fd`` without following a symlink (a symlink raises OSError)."""
    set_raw_at(dir_fd, name, acl.to_xattr(), which.encode())


_values: dict[bytes, tuple[Any, Any, Any]] = {}
"""Prepared ``xattr_args`` per value (the bytes, kept alive by the tuple): trees repeat a few ACLs."""


def set_raw_at(dir_fd: int, name: str, data: bytes, which: bytes = _ACCESS_B) -> None:
    """:func:`write_at` with the xattr value already encoded (the apply walk caches it per attribute set)."""
    fn = _syscall if _probed else _probe()
    if fn is not None:
        prepared = _values.get(data)
        if prepared is None:
            if len(_values) > 256:
                _values.clear()
            ptr = ctypes.c_char_p(data)
            args = _XattrArgs(ctypes.cast(ptr, ctypes.c_void_p).value or 0, len(data), 0)
            prepared = _values[data] = (ptr, ctypes.byref(args), args)
        if fn(_SETXATTRAT, _L(dir_fd), name.encode("utf-8", "surrogateescape"), _NOFOLLOW,
              which, prepared[1], _ARGS_SIZE) == 0:
            return
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), name)
    os.setxattr(f"/proc/self/fd/{dir_fd}/{name}", which.decode(), data, follow_symlinks=False)


def write_fd(fd: int, acl: Acl, which: str = ACCESS) -> None:
    os.setxattr(fd, which, acl.to_xattr())


def remove_fd(fd: int, which: str = DEFAULT) -> None:
    try:
        os.removexattr(fd, which)
    except OSError as e:
        if not _absent(e.errno or 0):
            raise


def effective_acl(mode: int, acl: Acl | None) -> Acl:
    """The ACL an inode behaves by: its stored one, or the minimal one its mode bits stand for."""
    return acl if acl is not None else Acl.from_mode(stat.S_IMODE(mode))
