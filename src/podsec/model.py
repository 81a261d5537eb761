"""The resolved view of a pod: every container's effective settings and where each came from.

One truth for ``explain``, ``check`` and ``run``: :func:`podsec.resolve.resolve_pod` builds it,
the OCI spec builder translates it, the explain renderer words it.
Sources are short strings: ``"container"``, ``"pod"``, ``"image"``, ``"default"``, ``"runtime"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Path = tuple[str | int, ...]
"""A field path from the pod template root, e.g. ``("spec", "containers", 0, "securityContext")``."""


def render_path(path: Path) -> str:
    """``("spec","containers",0,"image")`` → ``spec.containers[0].image`` (the API server's spelling)."""
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif out:
            out.append("." + seg)
        else:
            out.append(seg)
    return "".join(out)


@dataclass(slots=True)
class Identity:
    """The process credentials the runtime will set (``None`` = depends on an unknown image)."""

    uid: int | None
    gid: int | None
    groups: tuple[int, ...] | None
    username: str | None = None
    uid_source: str = "default"
    gid_source: str = "default"
    group_sources: dict[int, str] = field(default_factory=dict)
    # What the kubelet sends over CRI (LinuxContainerSecurityContext).
    cri_run_as_user: int | None = None
    cri_run_as_username: str | None = None
    cri_run_as_group: int | None = None
    error: str | None = None
    """A runtime (containerd) error creating the container, e.g. a USER name not in /etc/passwd."""
    run_as_user: int | None = None
    """The securityContext's runAsUser, the container's else the pod's (None: the image decides): what the
    kubelet checks against runAsNonRoot and ``FsUserFrom`` compares across containers."""


@dataclass(slots=True)
class NonRootOutcome:
    """The kubelet's runAsNonRoot verification (kubelet-semantics §2.2)."""

    required: bool
    ok: bool | None
    """``True`` passes, ``False`` blocks start (CreateContainerConfigError), ``None`` depends on the image."""
    message: str | None = None
    source: str = "default"


@dataclass(slots=True)
class Capabilities:
    bounding: tuple[str, ...]
    """The runtime's B=E=P list as containerd writes it (may hold names the kernel rejects)."""
    effective: tuple[str, ...]
    """What the process really has after execve (empty for non-root without file caps)."""
    unknown: tuple[str, ...] = ()
    """Names that are not capabilities (``CAP_CAP_SYS_ADMIN``); runc ignores them, crun fails."""
    source: str = "default"


@dataclass(slots=True)
class SeccompProfile:
    type: str  # Unconfined | RuntimeDefault | Localhost
    localhost_ref: str | None = None
    source: str = "default"
    error: str | None = None


@dataclass(slots=True)
class AppArmorProfile:
    type: str | None  # None = nothing requested (runtime default where AppArmor exists)
    profile: str | None = None
    source: str = "default"


@dataclass(slots=True)
class Mount:
    name: str
    mount_path: str
    read_only: bool
    volume_type: str  # emptyDir, hostPath, configMap, secret, projected, downwardAPI, persistentVolumeClaim, ...
    sub_path: str | None = None
    sub_path_expr: str | None = None
    medium: str | None = None
    field: Path = ()

    @property
    def writable(self) -> bool:
        return not self.read_only and self.volume_type not in ATOMIC_VOLUME_TYPES


ATOMIC_VOLUME_TYPES = frozenset({"configMap", "secret", "projected", "downwardAPI"})


@dataclass(slots=True)
class ResolvedContainer:
    name: str
    kind: str  # init | container | ephemeral
    index: int
    path: Path
    image: str
    image_known: bool
    identity: Identity
    run_as_non_root: NonRootOutcome
    capabilities: Capabilities
    privileged: bool
    no_new_privileges: bool
    seccomp: SeccompProfile
    apparmor: AppArmorProfile
    selinux: dict[str, str] | None
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    readonly_rootfs: bool
    proc_mount: str
    mounts: list[Mount]
    depends_on_image: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    """Where privileged/readOnlyRootFilesystem/allowPrivilegeEscalation/... came from."""

    @property
    def writable_mounts(self) -> list[Mount]:
        return [m for m in self.mounts if m.writable]


@dataclass(slots=True)
class ResolvedPod:
    kind: str
    name: str
    namespace: str
    uid: str
    host_network: bool
    host_pid: bool
    host_ipc: bool
    share_process_namespace: bool
    host_users: bool
    fs_group: int | None
    fs_group_change_policy: str
    supplemental_groups: tuple[int, ...]
    supplemental_groups_policy: str
    sysctls: tuple[tuple[str, str], ...]
    containers: list[ResolvedContainer]
    sandbox_error: str | None = None
    """containerd refusing the pod sandbox (RunPodSandbox), so no container ever starts."""
    fs_user: int | None = None
    """``spec.securityContext.fsUser`` (KEP-5280) as written; it counts only under its feature gate."""
    sandbox_user: int | None = None
    sandbox_group: int | None = None
    """Pod-level runAsUser/runAsGroup: all the kubelet sends for the sandbox (the pause container's user)."""
