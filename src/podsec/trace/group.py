"""Where to mount emptyDirs so an app can run with ``readOnlyRootFilesystem: true``: the fewest directories
that hold every write, none of which hides a file of the image.

An emptyDir mounted at ``D`` replaces everything the image has below ``D``. So ``D`` is a candidate for a
write to ``P`` only when ``D`` is ``P``'s ancestor (or ``P`` itself, for a directory) and the image has
nothing below ``D``: ``D`` is not in the image (the app or the runtime created it) or is an empty image
directory. Candidates for one path form a chain (below an empty directory everything is empty), so taking
the shallowest candidate of each write gives the smallest set, with no directory inside another. System
top-level directories (``/``, ``/etc``, ``/usr``, ``/var``, …) are never proposed, even when empty.

A write with no candidate (a file of the image changed or deleted, a new file in a directory the image
fills, like ``/etc/nginx/conf.d``) is a *problem*: an emptyDir there would hide the image's files, so the
fix is in the image or the app, not in the manifest; the message says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from podsec.trace.diff import ancestors
from podsec.trace.model import Change, MountDir

NEVER_MOUNT = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys",
    "/usr", "/var",
})
"""Directories podsec never proposes for an emptyDir, whatever the image holds there."""

NOT_IN_IMAGE = "not in the image"
EMPTY_IN_IMAGE = "empty in the image"
LIST_LIMIT = 4


class ImageLike(Protocol):
    def kind(self, path: str) -> str | None: ...

    def entries(self, path: str) -> list[str]: ...


@dataclass(slots=True)
class Grouping:
    mounts: list[MountDir] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uncovered: list[Change] = field(default_factory=list)


def _candidates(change: Change) -> list[str]:
    """Directories that could hold ``change``, shallowest first."""
    out = list(ancestors(change.path))
    if change.type == "dir" and change.action != "deleted":
        out.append(change.path)
    return out


def mount_point(change: Change, image: ImageLike) -> tuple[str, str] | None:
    """(directory, why it is safe) of the shallowest emptyDir that can hold ``change``, or None."""
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


def problem_message(directory: str, changes: Sequence[Change], image: ImageLike) -> str:
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
            f"would hide; bake the change into the image, or mount an emptyDir at {directory} and fill it "
            f"from an init container of the same image (cp -a {directory}/. /mnt/), or make the app write "
            f"elsewhere")


def group_writes(changes: Sequence[Change], image: ImageLike) -> Grouping:
    """The smallest set of emptyDir directories for ``changes`` (root-filesystem writes), with their sizes,
    and a problem for each directory whose image content blocks the writes in it."""
    chosen: dict[str, tuple[str, int, int]] = {}
    unplaced: list[Change] = []
    out = Grouping()
    for c in changes:
        found = mount_point(c, image)
        if found is None:
            unplaced.append(c)
            continue
        path, why = found
        _, size, files = chosen.get(path, (why, 0, 0))
        if c.type != "dir":
            size, files = size + c.size, files + 1
        chosen[path] = (why, size, files)
    blocked: dict[str, list[Change]] = {}
    for c in unplaced:
        if c.action == "created" and c.type == "dir" and any(m.startswith(c.path + "/") for m in chosen):
            continue  # a new directory on the way to a mount point: the runtime creates it for the mount
        out.uncovered.append(c)
        blocked.setdefault(_blocking_dir(c, image), []).append(c)
    out.mounts = [MountDir(p, why, size, files) for p, (why, size, files) in sorted(chosen.items())]
    out.problems = [problem_message(d, cs, image) for d, cs in sorted(blocked.items())]
    return out
