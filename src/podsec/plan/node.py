"""Reading the node (this host) once, so the plan itself stays a pure function of what was read."""

from __future__ import annotations

import os
from pathlib import Path

from podsec.downward import NodeInfo
from podsec.plan.pod import NodeFacts


def node_ip() -> str:
    """The node's address (status.hostIP): the source address of its default route; nothing is sent."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("198.51.100.1", 9))  # TEST-NET-2: only selects a route
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def node_facts(disk: Path | None = None, *, ip: str | None = None) -> NodeFacts:
    """Everything :func:`podsec.plan.plan_pod` needs from the host. ``ip``: already known (a pod record)."""
    from podsec.oci.caps import read_host_cap_eff

    info = NodeInfo.from_host(disk)
    try:
        own_oom = int(_read("/proc/self/oom_score_adj").strip() or 0)
    except ValueError:
        own_oom = 0
    return NodeFacts(
        name=info.name,
        ip=ip or node_ip(),
        info=info,
        cap_eff=read_host_cap_eff(),
        own_oom_score_adj=own_oom,
        etc_hosts=_read("/etc/hosts"),
        arch={"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        resolv_conf=_read("/etc/resolv.conf"),
    )
