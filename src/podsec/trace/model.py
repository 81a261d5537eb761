"""What ``podsec trace`` found, as plain data: the interface ``podsec fix --trace`` builds on.

``Change.path`` is always a container path (``/var/cache/app/x``); sizes are apparent sizes in bytes
(for a deleted directory: the bytes of the image files below it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Action = Literal["created", "changed", "deleted"]
EntryType = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True, slots=True)
class Change:
    """One path the app created, changed or deleted."""

    path: str
    action: Action
    type: EntryType
    size: int


@dataclass(frozen=True, slots=True)
class MountDir:
    """A directory to back with an emptyDir, with what it would hold and why it is safe to mount there."""

    path: str
    reason: str
    """``empty in the image`` or ``not in the image (created by the app)``."""
    size: int
    files: int
    """Non-directory paths written below it."""
    hides: str = ""
    """The image content the emptyDir hides (``2 empty files: access.log, error.log``); empty when none."""
    seed: bool = False
    """The hidden content matters: an init container of the same image copies it into the emptyDir first."""


@dataclass(slots=True)
class ContainerTrace:
    """One container's writes: where to mount emptyDirs, what cannot be fixed that way, and volume writes."""

    name: str
    init: bool
    changes: list[Change] = field(default_factory=list)
    mount_dirs: list[str] = field(default_factory=list)
    """The minimal set of directories (container paths) to mount as emptyDir, sorted."""
    volume_writes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    mounts: list[MountDir] = field(default_factory=list)
    """``mount_dirs`` with sizes and reasons."""
    ran: bool = False
    """The container started (its writes are known); False: it never did (see ``status``)."""
    status: str = ""
    """How it ended: ``exited 0 after 1.2s``, ``stopped after 30s``, ``CreateContainerConfigError: …``."""
    exit_code: int | None = None
    """Its exit code when it exited on its own; None when it never ran or the trace stopped it."""
    stopped: bool = False
    """It was still running when the trace ended (after ``duration``, or Ctrl-C) and was stopped."""
    readonly_in_manifest: bool = False
    """The manifest asked for readOnlyRootFilesystem (the trace ran it with a writable layer)."""
    log_tail: list[str] = field(default_factory=list)
    """The last lines of its output when it failed."""
    seconds: float = 0.0
    """How long it ran."""
    stop_code: int | None = None
    """When the trace stopped it: its exit code after the stop signal (137: it had to be killed)."""
    user: tuple[int, int] | None = None
    """(uid, gid) it ran as."""
    verified: str = ""
    """How it ran again under the proposed mounts (empty when that run did not happen)."""
    rounds: int = 0
    """Runs under proposed mounts (each adds what the previous one showed was missing)."""

    @property
    def failed(self) -> bool:
        """It exited non-zero on its own, or never ran: its writes are not the whole story."""
        return not self.ran or bool(self.exit_code)

    @property
    def fixable(self) -> bool:
        """It ran without failing, and every write outside volumes can be moved to an emptyDir without hiding
        what the app needs (checked by running it again under the mounts, when that run happened)."""
        return self.ran and not self.exit_code and not self.problems


@dataclass(slots=True)
class PodTrace:
    """One workload of the input, run as a pod for the trace."""

    source: str
    """The file as given (``-`` for stdin)."""
    doc_index: int
    """0-based document number in that file."""
    kind: str
    name: str
    containers: list[ContainerTrace] = field(default_factory=list)
    namespace: str = "default"
    display: str = ""
    """The file name shown to people (Helm's ``# Source:`` for ``helm template`` output)."""
    line: int = 0
    duration: float = 0.0
    """Seconds the pod ran."""
    error: str = ""
    """Why the pod could not run at all (sandbox, volumes); empty when it ran."""
    interrupted: bool = False
    listening: list[str] = field(default_factory=list)
    """TCP ports the pod listened on when the trace stopped it (``80/tcp``), from its network namespace."""
    fs_group: int | None = None
    """The ``fsGroup`` the proposal adds (the new user must write the pod's volumes)."""
    notes: list[str] = field(default_factory=list)
    """What the runs under the proposal changed in it on the way."""

    @property
    def ok(self) -> bool:
        """The pod ran and every container started."""
        return not self.error and all(c.ran for c in self.containers)

    def container(self, name: str) -> ContainerTrace | None:
        return next((c for c in self.containers if c.name == name), None)

    def mounts_for_patch(self) -> dict[tuple[int, str], list[str]]:
        """``{(doc_index, container): mount_dirs}`` for :func:`podsec.manifest.rewrite.patch_writable_mounts`,
        only for containers the patch cannot break (they ran and have no problem)."""
        return {(self.doc_index, c.name): list(c.mount_dirs) for c in self.containers if c.fixable}

    def seeds_for_patch(self) -> dict[tuple[int, str], list[str]]:
        """The mounts among :meth:`mounts_for_patch` an init container fills from the image."""
        return {(self.doc_index, c.name): [m.path for m in c.mounts if m.seed] for c in self.containers
                if c.fixable}
