"""TCP ports a pod listens on, read from the host side of its network namespace.

``/proc/PID/net/tcp`` (and ``tcp6``) list the sockets of the network namespace PID lives in, so one pid in
the pod (the pause process, or any running container's) is enough: no tool in the image, no ``nsenter``.
A server "runs as well as before" only when it still listens where it did.
"""

from __future__ import annotations

from collections.abc import Iterable

LISTEN = "0A"
"""``st`` of a listening socket (TCP_LISTEN)."""


def parse_listening(lines: Iterable[str], proto: str = "tcp") -> set[str]:
    """``{"80/tcp", …}`` from the lines of a ``/proc/net/tcp``-format table (the header line is skipped)."""
    out: set[str] = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        try:
            port = int(fields[1].rsplit(":", 1)[1], 16)
        except ValueError:
            continue
        out.add(f"{port}/{proto}")
    return out


def listening(pid: int) -> list[str]:
    """The TCP ports listened on in ``pid``'s network namespace (IPv4 and IPv6), sorted by number."""
    ports: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as fh:
                ports |= parse_listening(fh)
        except OSError:
            continue
    return sorted(ports, key=lambda p: int(p.split("/")[0]))
