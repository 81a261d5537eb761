"""Which non-root account an app should run as, read from its image: the one its package runs it as.

A root image (Debian's nginx, redis…) usually has the app's own unprivileged account in /etc/passwd
(``www-data``, ``redis``, ``postgres``): its package's start scripts ``chown`` to it and the image's files for
the app belong to it. Running as that account keeps those files usable; an arbitrary uid such as 65532 owns
nothing. The evidence, strongest first, each naming an account of the image's /etc/passwd:

1. a systemd unit of the image that starts the same program with ``User=``;
2. the app's own config (``/etc/<app>/``) saying ``user NAME`` (nginx's ``user www-data;``);
3. the account owning the app's directories and files (``/var/lib/<app>*``, ``/var/log/<app>*``, ``/run/<app>*``,
   ``/var/cache/<app>*``, ``/etc/<app>*``);
4. an account named after the program (``redis`` for ``redis-server``).

A shell command (``sh -c …``) names no program, so there is no evidence and the caller keeps its default.
Image files are read through :class:`podsec.trace.diff.ImageTree` (never following a symlink) and bounded
in number and size: an image cannot make this slow or read outside itself.
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podsec.image.model import ImageInfo, PasswdEntry
from podsec.trace.diff import ImageTree, join

UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/system")
APP_DIRS = ("/var/lib", "/var/log", "/run", "/var/cache", "/etc", "/var/spool")
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "busybox", "env", "tini", "dumb-init"})
MAX_FILES = 400
MAX_BYTES = 64_000
_CONFIG_USER = re.compile(r"^\s*(?:user|User|username)\s*[=:\s]\s*\"?([a-z_][a-z0-9_.-]*)\"?\s*;?\s*$", re.M)


@dataclass(frozen=True, slots=True)
class AccountChoice:
    entry: PasswdEntry
    why: str
    """Why this account: ``its /etc/nginx/nginx.conf runs nginx as www-data``."""


def program(command: Sequence[str]) -> str | None:
    """The program a container runs (basename), or None for a shell command or nothing."""
    if not command:
        return None
    name = os.path.basename(str(command[0]))
    return None if not name or name in SHELLS else name


def stems(name: str) -> list[str]:
    """Names the app's directories and account may have: ``redis-server`` → redis-server, redis."""
    out = [name]
    for suffix in ("-server", "-daemon", "-service"):
        if name.endswith(suffix) and len(name) > len(suffix):
            out.append(name[: -len(suffix)])
    if name.endswith("d") and len(name) > 3:
        out.append(name[:-1])  # sshd → ssh
    return out


def _read(tree: ImageTree, path: str) -> str | None:
    """A regular image file's text (at most MAX_BYTES), never through a symlink."""
    st = tree.lstat(path)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    try:
        fd = os.open(tree.root / path.lstrip("/"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(MAX_BYTES).decode(errors="replace")


def _usable(info: ImageInfo, name: str) -> PasswdEntry | None:
    entry = info.user_by_name(name)
    return entry if entry is not None and entry.uid != 0 else None


def from_units(tree: ImageTree, info: ImageInfo, prog: str) -> AccountChoice | None:
    seen = 0
    for d in UNIT_DIRS:
        for name in tree.entries(d):
            if not name.endswith(".service") or seen >= MAX_FILES:
                continue
            seen += 1
            text = _read(tree, join(d, name))
            if not text:
                continue
            starts = [ln.split("=", 1)[1].strip().lstrip("-@+!:") for ln in text.splitlines()
                      if ln.strip().startswith("ExecStart=")]
            users = [ln.split("=", 1)[1].strip() for ln in text.splitlines() if ln.strip().startswith("User=")]
            if users and any(s.split() and os.path.basename(s.split()[0]) == prog for s in starts):
                entry = _usable(info, users[-1])
                if entry is not None:
                    return AccountChoice(entry, f"its systemd unit {name} runs {prog} as User={entry.name}")
    return None


def from_config(tree: ImageTree, info: ImageInfo, prog: str) -> AccountChoice | None:
    seen = 0
    for stem in stems(prog):
        todo = [f"/etc/{stem}"]
        while todo and seen < MAX_FILES:
            d = todo.pop(0)
            for name in tree.entries(d):
                path = join(d, name)
                kind = tree.kind(path)
                if kind == "dir" and path.count("/") <= 3:
                    todo.append(path)
                elif kind == "file" and seen < MAX_FILES:
                    seen += 1
                    for m in _CONFIG_USER.finditer(_read(tree, path) or ""):
                        entry = _usable(info, m.group(1))
                        if entry is not None:
                            return AccountChoice(entry, f"its {path} runs {prog} as {entry.name}")
    return None


def from_owners(tree: ImageTree, info: ImageInfo, prog: str) -> AccountChoice | None:
    owners: Counter[int] = Counter()
    where: dict[int, str] = {}
    seen = 0
    names = stems(prog)
    for base in APP_DIRS:
        for top in [join(base, n) for n in tree.entries(base) if any(n.startswith(s) for s in names)]:
            todo = [top] if tree.kind(top) == "dir" else []  # /var/lib/postgresql for postgres
            while todo and seen < MAX_FILES:
                d = todo.pop()
                paths = [d] + [join(d, n) for n in tree.entries(d)]
                for path in paths:
                    st = tree.lstat(path)
                    seen += 1
                    if st is None or st.st_uid == 0:
                        continue
                    owners[st.st_uid] += 1
                    where.setdefault(st.st_uid, path)
                    if stat.S_ISDIR(st.st_mode) and path != d:
                        todo.append(path)
    for uid, _ in owners.most_common():
        entry = info.user_by_uid(uid)
        if entry is not None and entry.uid != 0:
            return AccountChoice(entry, f"the image's files for {prog} ({where[uid]}) belong to {entry.name}")
    return None


def from_name(info: ImageInfo, prog: str) -> AccountChoice | None:
    for stem in stems(prog):
        entry = _usable(info, stem)
        if entry is not None:
            return AccountChoice(entry, f"its account {entry.name} is named after {prog}")
    return None


def choose_account(info: ImageInfo, rootfs: Path, command: Sequence[str]) -> AccountChoice | None:
    """The image's own account for the program ``command`` runs, with the evidence; None without any."""
    prog = program(command)
    if prog is None or not info.passwd:
        return None
    tree = ImageTree(rootfs)
    for find in (from_units, from_config, from_owners):
        found = find(tree, info, prog)
        if found is not None:
            return found
    return from_name(info, prog)
