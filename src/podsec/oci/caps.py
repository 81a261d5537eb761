"""Capability names, numbers and containerd's capability arithmetic (oci-translation §4, §5).

containerd writes capability *names* into config.json; the kernel speaks bitmasks. Keeping the table here
lets tests and ``explain`` print the exact ``CapBnd`` line a process would see. The capability *rule*
(containerd's ``WithCapabilities``, then execve) has one owner: :func:`podsec.resolve.resolve_capabilities`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

CAPABILITY_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
"""Every capability containerd's ``pkg/cap`` knows, by kernel bit number (41 on kernel ≥ 5.9)."""

CAPABILITY_NAMES: dict[int, str] = {num: name for name, num in CAPABILITY_NUMBERS.items()}

DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
"""containerd's ``defaultUnixCaps()`` in its own order (bitmask ``a80425fb``)."""


def cap_mask(names: Iterable[str]) -> str:
    """The 16-digit hex bitmask the kernel prints in ``/proc/self/status``.

    Unknown names (``CAP_CAP_NET_ADMIN``) are skipped, as runc skips them with a warning.
    """
    mask = 0
    for name in names:
        num = CAPABILITY_NUMBERS.get(name)
        if num is not None:
            mask |= 1 << num
    return f"{mask:016x}"


def caps_from_mask(mask: int) -> list[str]:
    """Names of the known capabilities set in ``mask``, in bit order (how ``pkg/cap`` lists them)."""
    return [CAPABILITY_NAMES[n] for n in sorted(CAPABILITY_NAMES) if mask & (1 << n)]


def read_host_cap_eff(status_path: str = "/proc/self/status") -> int:
    """Our own effective set: containerd's "all capabilities" is its own ``CapEff`` (§4)."""
    with open(status_path, encoding="ascii") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split(":", 1)[1].strip(), 16)
    raise OSError(f"no CapEff line in {status_path}")


def all_caps(host_cap_eff: int | None = None) -> list[str]:
    """Every known capability the host lets us hold: used for ``add: [ALL]`` and privileged."""
    return caps_from_mask(read_host_cap_eff() if host_cap_eff is None else host_cap_eff)


@functools.cache
def host_capabilities() -> tuple[str, ...]:
    """What ``add: [ALL]`` and ``privileged`` grant on this host (containerd: its own CapEff), read once;
    every known capability when ``/proc`` cannot tell."""
    try:
        return tuple(all_caps())
    except OSError:
        return tuple(CAPABILITY_NUMBERS)
