"""What a capability does to the node itself, where the kernel does not namespace its effect.

Containers share the host kernel: a capability checked against the initial user namespace
(``capable()``) acts on the whole machine, not on the pod. ``explain`` and ``check`` name these
effects, and ``run`` warns before starting such a container, because podsec runs it on the user's
own machine. This module is the one table of those facts; every caller asks it.

With ``hostUsers: false`` the container's capabilities belong to its own user namespace and none
of these reach the host, so nothing is reported then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from podsec.model import ResolvedContainer, ResolvedPod


@dataclass(frozen=True, slots=True)
class HostEffect:
    cap: str
    """The capability, as the kernel names it (``CAP_SYS_TIME``)."""
    effect: str
    """What it does to the node, in a user's words."""
    needs: str | None = None
    """A pod field that must be true for the effect to reach the host (``hostNetwork``, ``hostPID``)."""

    @property
    def short(self) -> str:
        """``SYS_TIME`` as Kubernetes spells it in ``capabilities.add``."""
        return self.cap.removeprefix("CAP_")

    def sentence(self) -> str:
        """``SYS_TIME sets the host's clock …`` (with the pod field it depends on)."""
        cond = f" (with {self.needs}: true)" if self.needs else ""
        return f"{self.short}{cond} {self.effect}"


HOST_EFFECTS: tuple[HostEffect, ...] = (
    HostEffect("CAP_SYS_TIME", "sets the host's clock (settimeofday, clock_settime, adjtimex: "
               "the real-time clock is not namespaced)"),
    HostEffect("CAP_SYS_MODULE", "loads and unloads kernel modules in the host's kernel (init_module, "
               "delete_module)"),
    HostEffect("CAP_SYS_BOOT", "loads a new kernel for the host to boot (kexec_load)"),
    HostEffect("CAP_SYS_BOOT", "reboots or powers off the host (reboot(2) in the host's PID namespace)",
               "hostPID"),
    HostEffect("CAP_SYS_RAWIO", "reads and writes the host's I/O ports and physical memory (iopl, ioperm, "
               "/dev/mem and raw block devices where a device is there)"),
    HostEffect("CAP_SYS_ADMIN", "mounts filesystems and administers the host kernel (swapon, quotactl, "
               "BPF and perf on older kernels, most container escapes start here)"),
    HostEffect("CAP_NET_ADMIN", "changes the host's network interfaces, addresses, routes and firewall rules",
               "hostNetwork"),
    HostEffect("CAP_SYS_PTRACE", "traces, reads the memory of and injects code into host processes",
               "hostPID"),
    HostEffect("CAP_SYS_NICE", "changes the scheduling priority and CPU affinity of every host process",
               "hostPID"),
    HostEffect("CAP_KILL", "signals (kills) any host process", "hostPID"),
    HostEffect("CAP_DAC_READ_SEARCH", "opens any host file by handle (open_by_handle_at, the 'shocker' "
               "escape), outside the container's filesystem"),
    HostEffect("CAP_MAC_ADMIN", "changes the host's AppArmor/SELinux/Smack policy"),
    HostEffect("CAP_AUDIT_CONTROL", "changes or disables the host's audit rules"),
    HostEffect("CAP_SYSLOG", "reads and clears the host's kernel log (dmesg -C)"),
    HostEffect("CAP_BPF", "loads BPF programs into the host's kernel"),
    HostEffect("CAP_PERFMON", "observes every process on the host through perf events"),
    HostEffect("CAP_WAKE_ALARM", "sets alarms that wake the host from suspend"),
    HostEffect("CAP_BLOCK_SUSPEND", "keeps the host from suspending"),
)
"""Effects on the node, by capability; an entry with ``needs`` applies only with that pod field."""

BY_CAP: dict[str, tuple[HostEffect, ...]] = {}
for _e in HOST_EFFECTS:
    BY_CAP[_e.cap] = (*BY_CAP.get(_e.cap, ()), _e)


def host_effects(caps: Iterable[str], *, host_network: bool = False, host_pid: bool = False,
                 host_users: bool = True) -> list[HostEffect]:
    """The effects on the node of holding ``caps`` (``CAP_`` names) in a pod with these host namespaces."""
    if not host_users:
        return []
    pod_fields = {"hostNetwork": host_network, "hostPID": host_pid}
    out: list[HostEffect] = []
    for cap in caps:
        for e in BY_CAP.get(cap, ()):
            if e.needs is None or pod_fields.get(e.needs):
                out.append(e)
    return out


def container_host_effects(pod: ResolvedPod, c: ResolvedContainer) -> tuple[list[HostEffect], bool]:
    """(effects, certain) for one resolved container.

    Effective capabilities act; for a user the image decides (uid unknown) the bounding set acts only
    if that user is root, so the effects are returned with ``certain`` False. A non-root container has
    no effective capabilities: nothing.
    """
    if c.capabilities.effective:
        caps, certain = c.capabilities.effective, True
    elif c.identity.uid is None:
        caps, certain = c.capabilities.bounding, False
    else:
        return [], True
    return host_effects(caps, host_network=pod.host_network, host_pid=pod.host_pid,
                        host_users=pod.host_users), certain


def warning_line(pod: ResolvedPod, c: ResolvedContainer) -> str | None:
    """One line for ``run`` to print before starting ``c`` on this machine, or None when nothing reaches it."""
    effects, certain = container_host_effects(pod, c)
    if not effects:
        return None
    what = "; ".join(e.sentence() for e in effects)
    who = "" if certain else " if the image's user is root"
    return (f'container "{c.name}" can change this machine{who}, not only its pod: {what}; '
            "these act on the host's kernel, as they would on a node")
