"""Pod namespaces without an infra container, as CRI-O's ``pinns`` makes them.

A pod whose containers do not share a PID namespace needs the sandbox only to own its network, IPC and
UTS namespaces. Here one short-lived thread unshares them (``unshare(2)`` is per task), names the UTS
namespace (the pod's hostname), writes the pod's sysctls inside them, brings ``lo`` up, and bind-mounts
``/proc/thread-self/ns/{net,ipc,uts}`` onto ``<pod-dir>/ns/``; the bind mounts keep the namespaces alive
after the thread is gone, and the containers join them by path. A host namespace (hostNetwork, hostIPC,
hostPID) is pinned as it is. :func:`podsec.runtime.cleanup.release_mounts` unmounts them with the rest.

This saves a whole ``runc run`` of a pause container per pod. A pod with ``shareProcessNamespace``
keeps its pause container, whose process is PID 1 of the shared PID namespace, as on a cluster.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from podsec.errors import RuntimeFailure

CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
MS_BIND = 0x1000

IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
"""runc's ``namespaceSysctls`` of the IPC namespace (plus the ``fs.mqueue.`` prefix)."""

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"


def check_sysctls(sysctls: Mapping[str, str], *, net: bool, ipc: bool, uts: bool) -> None:
    """runc's ``sysctl`` validation: a sysctl must belong to a namespace the pod owns (same words)."""
    for name in sysctls:
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if not ipc:
                raise RuntimeFailure(f'sysctl "{name}" is not allowed in the host\'s ipc namespace')
        elif name.startswith("net."):
            if not net:
                raise RuntimeFailure(f'sysctl "{name}" not allowed in host network namespace')
        elif name in ("kernel.domainname", "kernel.hostname"):
            if not uts:
                raise RuntimeFailure(f'sysctl "{name}" is not allowed in the host\'s UTS namespace')
        else:
            raise RuntimeFailure(f'sysctl "{name}" is not in a separate kernel namespace')


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _loopback_up() -> None:
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def _pin_in_thread(ns_dir: Path, names: dict[str, bool], hostname: str | None, sysctls: Mapping[str, str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    flags = (CLONE_NEWNET if names.get("net") else 0) | (CLONE_NEWIPC if names.get("ipc") else 0) | (
        CLONE_NEWUTS if names.get("uts") else 0)
    if flags:
        _check(libc.unshare(flags), "unshare")
    if names.get("uts") and hostname:
        raw = hostname.encode()
        _check(libc.sethostname(raw, len(raw)), "sethostname")
    for key, value in sysctls.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
            fh.write(value)
    if names.get("net"):
        _loopback_up()
    for name in names:
        target = ns_dir / name
        target.touch(0o444)
        _check(libc.mount(f"/proc/thread-self/ns/{name}".encode(), str(target).encode(), None, MS_BIND, None),
               f"bind {name} namespace")


def pin_namespaces(ns_dir: Path, *, net: bool, ipc: bool, uts: bool, host_pid: bool, hostname: str | None,
                   sysctls: Mapping[str, str]) -> None:
    """Create the pod's namespaces (``net``/``ipc``/``uts`` True: new ones, False: the host's) and pin
    them at ``ns_dir/{net,ipc,uts}`` (and ``pid``, the host's, for hostPID). Raises RuntimeFailure."""
    check_sysctls(sysctls, net=net, ipc=ipc, uts=uts)
    ns_dir.mkdir(mode=0o700, exist_ok=True)
    names = {"net": net, "ipc": ipc, "uts": uts}
    if host_pid:
        names["pid"] = False
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _pin_in_thread(ns_dir, names, hostname if uts else None, sysctls)
        except BaseException as e:  # reported by the caller's thread
            errors.append(e)

    t = threading.Thread(target=work, name="podsec-pinns")
    t.start()
    t.join()
    if errors:
        e = errors[0]
        if isinstance(e, OSError):
            raise RuntimeFailure(f"{e.strerror}: {e.filename}" if e.filename else str(e.strerror)) from e
        raise RuntimeFailure(str(e)) from e
