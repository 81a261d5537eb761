"""Where to mount emptyDirs so an app can run with ``readOnlyRootFilesystem: true``: the fewest directories
that hold every write, judged by what each one would hide.

An emptyDir mounted at ``D`` replaces everything the image has below ``D``. The first choice for a write to
``P`` is the shallowest ancestor ``D`` (or ``P`` itself, for a directory) with nothing below it in the image:
``D`` is not in the image (the app or the runtime created it) or is an empty image directory. Such candidates
form a chain (below an empty directory everything is empty), so taking the shallowest of each write gives the
smallest set, with no directory inside another.

When no ancestor is empty (a pid file in ``/run``, which holds ``lock/``; a log file the image ships empty;
a config file the app rewrites) the directory holding the write is judged by what it would hide:

- only empty directories and empty files: harmless, the app recreates what it uses (nginx reopens its logs);
- content that matters: kept by an init container of the same image that copies it into the emptyDir before
  the app starts (when the image has ``cp`` and the content is small enough to copy at every start);
- otherwise a *problem*: the fix is in the image or the app, and the message says what to bake in.

System top-level directories (``/``, ``/etc``, ``/usr``, ``/var``, …) are never proposed, even when empty.
The judgement is a proposal: ``podsec trace`` and ``fix --trace`` run the app again under it and keep it only
when the app runs as well and writes nothing more to the root filesystem.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from podsec.trace.diff import ancestors, join
from podsec.trace.model import Change, MountDir

NEVER_MOUNT = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys",
    "/usr", "/var",
})
"""Directories podsec never proposes for an emptyDir, whatever the image holds there."""

NOT_IN_IMAGE = "not in the image"
EMPTY_IN_IMAGE = "empty in the image"
HIDES_EMPTY = "hides only empty entries, the app recreates what it uses"
SEEDED = "filled from the image by an init container"
LIST_LIMIT = 4
SEED_MAX_BYTES = 64_000_000
SEED_MAX_ENTRIES = 10_000
"""Beyond this an init container would copy too much at every start: bake the change into the image."""
COPY_COMMANDS = ("/usr/bin/cp", "/bin/cp", "/usr/local/bin/cp")


class ImageLike(Protocol):
    def kind(self, path: str) -> str | None: ...

    def entries(self, path: str) -> list[str]: ...

    def lstat(self, path: str) -> Any: ...


@dataclass(slots=True)
class Grouping:
    mounts: list[MountDir] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uncovered: list[Change] = field(default_factory=list)


@dataclass(slots=True)
class Hidden:
    """What the image has below a directory: what an emptyDir there would hide."""

    dirs: int = 0
    empty_files: int = 0
    files: int = 0
    """Non-empty regular files."""
    other: int = 0
    """Symlinks, devices, fifos."""
    size: int = 0
    names: list[str] = field(default_factory=list)
    """The directory's own entries (sorted)."""
    truncated: bool = False
    """Stopped counting at ``SEED_MAX_ENTRIES``."""

    @property
    def entries(self) -> int:
        return self.dirs + self.empty_files + self.files + self.other

    @property
    def harmless(self) -> bool:
        """Only empty directories and empty files: nothing an app reads from them."""
        return not (self.files or self.other or self.truncated)

    def describe(self) -> str:
        """``2 empty directories: lock, mount``; ``3 files, 12.1 kB: a.conf, b.conf, c.conf``."""
        if self.harmless:
            parts = [_count(self.dirs, "empty directory", "empty directories"),
                     _count(self.empty_files, "empty file", "empty files")]
            text = " and ".join(p for p in parts if p)
        else:
            n = self.empty_files + self.files + self.other
            text = f"{'more than ' if self.truncated else ''}{_count(n, 'file', 'files')}, {_size(self.size)}"
        return f"{text}: {_listing(self.names)}" if text else ""


def _count(n: int, one: str, many: str) -> str:
    return "" if not n else f"1 {one}" if n == 1 else f"{n} {many}"


def _size(n: int) -> str:
    from podsec.trace.report import human_size

    return human_size(n)


def hidden(image: ImageLike, directory: str, limit: int = SEED_MAX_ENTRIES) -> Hidden:
    """Count what the image holds below ``directory`` (symlinks are entries, never followed)."""
    out = Hidden(names=list(image.entries(directory)))
    todo = [directory]
    while todo:
        d = todo.pop()
        for name in image.entries(d):
            if out.entries >= limit:
                out.truncated = True
                return out
            path = join(d, name)
            st = image.lstat(path)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                todo.append(path)
                if image.entries(path):
                    continue
                out.dirs += 1
            elif stat.S_ISREG(st.st_mode):
                if st.st_size:
                    out.files += 1
                    out.size += st.st_size
                else:
                    out.empty_files += 1
            else:
                out.other += 1
    return out


def has_copy_command(image: ImageLike) -> bool:
    """The image has a ``cp`` an init container can run (a file or symlink where PATH usually finds it)."""
    return any(image.kind(p) in ("file", "symlink") for p in COPY_COMMANDS)


def _candidates(change: Change) -> list[str]:
    """Directories that could hold ``change``, shallowest first."""
    out = list(ancestors(change.path))
    if change.type == "dir" and change.action != "deleted":
        out.append(change.path)
    return out


def mount_point(change: Change, image: ImageLike) -> tuple[str, str] | None:
    """(directory, why it is safe) of the shallowest emptyDir that can hold ``change`` without hiding
    anything of the image, or None."""
    if change.action == "deleted":
        return None  # the image had it: an emptyDir would hide it instead of letting the app delete it
    for cand in _candidates(change):
        kind = image.kind(cand)
        if kind is not None and kind != "dir":
            return None  # the app replaced an image file or symlink with a directory
        if cand in NEVER_MOUNT:
            continue
        if kind is None:
            return cand, NOT_IN_IMAGE
        if not image.entries(cand):
            return cand, EMPTY_IN_IMAGE
    return None


def holder(change: Change, image: ImageLike) -> str | None:
    """The image directory closest to ``change`` that an emptyDir would have to replace to hold it: the
    changed directory itself, else the deepest ancestor the image has; None when the way there is not a
    directory in the image (the app replaced a symlink or file)."""
    if change.type == "dir" and change.action == "changed":
        return change.path if image.kind(change.path) == "dir" else None
    found = None
    for cand in ["/", *ancestors(change.path)]:
        kind = image.kind(cand)
        if kind is None:
            break
        if kind != "dir":
            return None
        found = cand
    return found


def _blocking_dir(change: Change, image: ImageLike) -> str:
    """The directory whose image content (or system role) stands in the way of an emptyDir."""
    cands = ["/", *_candidates(change)]
    for cand in reversed(cands):
        kind = image.kind(cand)
        if kind is not None and kind != "dir":
            continue
        if cand in NEVER_MOUNT or (kind == "dir" and image.entries(cand)):
            return cand
    return "/"


def _describe(c: Change) -> str:
    if c.action == "deleted":
        return f"deletes {c.path} (from the image)"
    if c.action == "changed":
        return f"changes {'directory ' if c.type == 'dir' else ''}{c.path} (from the image)"
    return f"creates {c.path}"


def _listing(items: Sequence[str], limit: int = LIST_LIMIT) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def problem_message(directory: str, changes: Sequence[Change], image: ImageLike, why: str = "") -> str:
    """One sentence a user can act on for the writes blocked at ``directory``."""
    what = _listing([_describe(c) for c in changes], 3)
    content = image.entries(directory) if image.kind(directory) == "dir" else []
    if directory in NEVER_MOUNT:
        where = "/" if directory == "/" else directory
        held = f" (the image's {_listing(content)})" if content else ""
        return (f"{what}: an emptyDir never goes over {where}{held}, so this write fails under "
                f"readOnlyRootFilesystem; bake it into the image or make the app write below a dedicated "
                f"directory (e.g. /tmp, or a volume)")
    return (f"{what}: {directory} holds image files ({_listing(content)}) that an emptyDir at {directory} "
            f"would hide, {why or 'and podsec cannot copy them into it'}; bake the change into the image "
            f"(or ship {directory} with it), or make the app write elsewhere")


def group_writes(changes: Sequence[Change], image: ImageLike) -> Grouping:
    """The smallest set of emptyDir directories for ``changes`` (root-filesystem writes), with their sizes
    and what each hides, and a problem for each directory whose image content blocks the writes in it."""
    chosen: dict[str, tuple[str, int, int]] = {}
    judged: dict[str, Hidden] = {}
    unplaced: list[Change] = []
    out = Grouping()
    for c in changes:
        found = mount_point(c, image)
        if found is None:
            unplaced.append(c)
            continue
        _add(chosen, found[0], found[1], c)
    blocked: dict[str, list[Change]] = {}
    why_blocked: dict[str, str] = {}
    copy = has_copy_command(image)
    for c in unplaced:
        if c.action == "created" and c.type == "dir" and any(m.startswith(c.path + "/") for m in chosen):
            continue  # a new directory on the way to a mount point: the runtime creates it for the mount
        d = holder(c, image)
        if d is not None and d not in NEVER_MOUNT:
            h = judged.get(d) or judged.setdefault(d, hidden(image, d))
            if h.harmless:
                _add(chosen, d, HIDES_EMPTY, c)
                continue
            if copy and h.size <= SEED_MAX_BYTES:
                _add(chosen, d, SEEDED, c)
                continue
            why_blocked[d] = ("and the image has no cp to copy them into it" if not copy else
                              f"and they are too much to copy at every start ({h.describe().split(':')[0]})")
        out.uncovered.append(c)
        where = d if d is not None and d not in NEVER_MOUNT else _blocking_dir(c, image)
        blocked.setdefault(where, []).append(c)
    mounts = sorted(chosen)
    outer = [m for m in mounts if not any(o != m and m.startswith(o.rstrip("/") + "/") for o in mounts)]
    merged: dict[str, tuple[str, int, int]] = {m: chosen[m] for m in outer}
    for m in mounts:
        if m not in merged:  # inside another mount: that one holds it
            top = next(o for o in outer if m.startswith(o.rstrip("/") + "/"))
            why, size, files = merged[top]
            merged[top] = (why, size + chosen[m][1], files + chosen[m][2])
    for p, (why, size, files) in sorted(merged.items()):
        h = judged.get(p)
        out.mounts.append(MountDir(p, why, size, files, hides=h.describe() if h else "", seed=why == SEEDED))
    out.problems = [problem_message(d, cs, image, why_blocked.get(d, "")) for d, cs in sorted(blocked.items())]
    return out


def _add(chosen: dict[str, tuple[str, int, int]], path: str, why: str, c: Change) -> None:
    old_why, size, files = chosen.get(path, (why, 0, 0))
    if c.type != "dir":
        size, files = size + c.size, files + 1
    chosen[path] = (old_why if old_why == SEEDED else why, size, files)
