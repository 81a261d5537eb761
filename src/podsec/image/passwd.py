"""``/etc/passwd`` and ``/etc/group`` of an image, read the way the runtime reads them.

containerd resolves ``USER web`` and supplementary groups with moby/sys/user against the files
*inside the rootfs*; podsec predicts that outcome, so it parses the same format and follows
symlinks the same confined way (``/etc/passwd -> /shared/passwd`` means the rootfs's /shared).
"""

from __future__ import annotations

import re
from pathlib import Path

from podsec.errors import ImageError
from podsec.image.fsutil import read_in_root
from podsec.image.model import GroupEntry, PasswdEntry

_ID_RE = re.compile(r"[0-9]{1,10}")
_ID_MAX = 0xFFFFFFFF


def _id(text: str) -> int | None:
    """A uid/gid field, or ``None`` when it is not a plain non-negative 32-bit number."""
    text = text.strip()
    if not _ID_RE.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _ID_MAX else None


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def parse_passwd(text: str) -> tuple[PasswdEntry, ...]:
    """``name:pass:uid:gid:gecos:home:shell`` lines; a line without a name or numeric ids is skipped."""
    out: list[PasswdEntry] = []
    for line in _lines(text):
        fields = line.split(":")
        if len(fields) < 4 or not fields[0]:
            continue
        uid, gid = _id(fields[2]), _id(fields[3])
        if uid is None or gid is None:
            continue
        home = fields[5] if len(fields) > 5 else ""
        shell = fields[6] if len(fields) > 6 else ""
        out.append(PasswdEntry(name=fields[0], uid=uid, gid=gid, home=home or "/", shell=shell))
    return tuple(out)


def parse_group(text: str) -> tuple[GroupEntry, ...]:
    """``name:pass:gid:member,member`` lines; a line without a name or numeric gid is skipped."""
    out: list[GroupEntry] = []
    for line in _lines(text):
        fields = line.split(":")
        if len(fields) < 3 or not fields[0]:
            continue
        gid = _id(fields[2])
        if gid is None:
            continue
        members: tuple[str, ...] = ()
        if len(fields) > 3:
            members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
        out.append(GroupEntry(name=fields[0], gid=gid, members=members))
    return tuple(out)


def _read(rootfs: Path, path: str) -> str | None:
    try:
        data = read_in_root(rootfs, path)
    except OSError as e:
        raise ImageError(f"cannot read {path} in image rootfs: {e.strerror or e}", file=str(rootfs)) from e
    return None if data is None else data.decode("utf-8", errors="replace")


def read_user_db(
    rootfs: Path,
) -> tuple[tuple[PasswdEntry, ...] | None, tuple[GroupEntry, ...] | None]:
    """Parsed ``etc/passwd`` and ``etc/group`` of ``rootfs``; ``None`` for a file that is absent."""
    if not rootfs.is_dir():
        raise ImageError("image rootfs is not a directory", file=str(rootfs))
    passwd_text = _read(rootfs, "etc/passwd")
    group_text = _read(rootfs, "etc/group")
    return (
        None if passwd_text is None else parse_passwd(passwd_text),
        None if group_text is None else parse_group(group_text),
    )
