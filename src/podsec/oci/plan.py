"""What the spec builder needs besides the resolved pod: host paths and runtime facts.

The lead's planner fills these; every field is plain data so a spec can be rebuilt (and tested) without
touching the machine. Fields beyond the brief's list are optional and default to containerd's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podsec.model import ResolvedContainer, ResolvedPod
from podsec.oci.seccomp import KUBELET_SECCOMP_ROOT


@dataclass(slots=True)
class ContainerPlan:
    """One app container: the resolved settings plus where its files live on this host."""

    pod: ResolvedPod
    container: ResolvedContainer
    rootfs: str
    """Absolute host path of the container's rootfs (overlay mount point)."""
    args: list[str]
    """Final argv (command/args vs image entrypoint/cmd already resolved)."""
    env: list[str]
    """Final ``K=V`` list (HOSTNAME, image env, container env — already merged)."""
    cwd: str = "/"
    volume_mounts: list[dict] = field(default_factory=list)
    """OCI bind mounts for volumes, in the kubelet's order: ``{destination, type, source, options}``."""
    etc_hosts: str | None = None
    """Kubelet-managed hosts file, bound rw at /etc/hosts."""
    termination_log: str | None = None
    """Kubelet's termination-message file, bound rw at ``termination_message_path`` after /etc/hosts."""
    termination_message_path: str = "/dev/termination-log"
    etc_hostname: str | None = None
    """Bound at /etc/hostname, ro iff readonly rootfs."""
    etc_resolv: str | None = None
    """Bound at /etc/resolv.conf, ro iff readonly rootfs."""
    shm: str | None = None
    """Host dir (a tmpfs) for /dev/shm, or ``/dev/shm`` for hostIPC; None keeps the default tmpfs mount."""
    sandbox_ns: str | None = None
    """Directory of the pod's namespace files to join (``/proc/<pause pid>/ns``: net, ipc, uts; pid if
    shared). None: new namespaces (host ones for host*)."""
    cgroups_path: str | None = None
    seccomp_root: str = KUBELET_SECCOMP_ROOT
    arch: str = "amd64"
    cgroup_v2: bool = False
    host_cap_eff: int | None = None
    """Host CapEff bitmask (None reads /proc/self/status); only consulted for the oom score."""
    own_oom_score_adj: int | None = None
    """Our own oom_score_adj (None reads /proc/self/oom_score_adj); the floor when restricted."""
    oom_score_adj: int | None = None
    """CRI ``Resources.OomScoreAdj`` (kubelet QoS, §1.5); None leaves it unset."""
    restrict_oom_score_adj: bool | None = None
    """containerd's ``restrict_oom_score_adj``: never go below our own score. None = only when the host
    denies CAP_SYS_RESOURCE (lowering the score needs it; runc/crun fail with EACCES otherwise)."""
    host_devices: list[dict] | None = None
    """``linux.devices`` for privileged containers; None walks the host /dev like containerd."""


@dataclass(slots=True)
class SandboxPlan:
    """The pod's pause container (§11.2): it owns the pod's namespaces and sysctls."""

    pod: ResolvedPod
    rootfs: str
    args: list[str]
    hostname: str
    shm: str | None
    """Host dir bound ro at /dev/shm (host /dev/shm for hostIPC); None keeps the default tmpfs."""
    cgroups_path: str | None = None
    cgroup_v2: bool = False
    etc_resolv: str | None = None
    env: list[str] = field(default_factory=list)
    """Pause image env, merged over the default PATH."""
    cwd: str = "/"
    run_as_user: int | None = None
    """Pod-level runAsUser (the kubelet sends only pod-level identity for the sandbox)."""
    run_as_group: int | None = None
    image_user: str = "65535:65535"
    """The pause image's USER, used when the pod sets no runAsUser."""
    netns_path: str | None = None
    """An existing network namespace (CNI); None creates a new one with only loopback."""
    oom_score_adj: int = -998
    restrict_oom_score_adj: bool | None = None
    """As for :class:`ContainerPlan`."""
    host_cap_eff: int | None = None
    """Host CapEff bitmask (None reads /proc/self/status); only consulted for the oom score."""
    own_oom_score_adj: int | None = None
    arch: str = "amd64"


def sandbox_user_error(run_as_user: int | None, run_as_group: int | None) -> str | None:
    """containerd's RunPodSandbox refusal of a pod-level runAsGroup without runAsUser: the one copy of the rule
    (resolve puts it on the pod for check's PS009, explain and run; :func:`podsec.oci.steps.with_sandbox_user`
    refuses with it)."""
    if run_as_group is None or run_as_user is not None:
        return None
    return ("failed to generate sanbdox container spec options: failed to generate user string: "
            f'user group "{run_as_group}" is specified without user')
