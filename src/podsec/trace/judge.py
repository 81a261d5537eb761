"""Does a container run as well under a proposed change as it did before? Pure: two traces in, a reason out.

"As well" is what a user would check after the change: a container that exited 0 still exits 0; one that was
still working when the trace stopped it still is, still stops cleanly on the stop signal (not killed after
the grace period), and its pod still listens on every TCP port it listened on before.
"""

from __future__ import annotations

from podsec.trace.model import ContainerTrace, PodTrace

KILLED = 137
"""128 + SIGKILL: the container ignored the stop signal and was killed after the grace period."""
SETTLED = 1.0
"""Seconds a container must have run before being killed on stop counts against it: a stop signal that comes
earlier may arrive before the app installed its handler (a shell's ``trap``, PID 1 ignores SIGTERM)."""


def outcome(c: ContainerTrace) -> str:
    """How the container ended, in words (``exited 0``, ``still running``, ``never ran``)."""
    if not c.ran:
        return "never ran"
    if c.stopped:
        return "still running"
    return f"exited {c.exit_code}"


def worse(before: ContainerTrace, after: ContainerTrace) -> str | None:
    """Why ``after`` runs worse than ``before`` (same container, two runs), or None when it runs as well."""
    if not after.ran:
        return after.status if after.status.startswith("never ran") else f"never ran ({after.status})"
    if after.exit_code:
        last = f": {after.log_tail[-1]}" if after.log_tail else ""
        return f"exited {after.exit_code} after it had {outcome(before)}{last}"
    if before.stopped and not after.stopped:
        return "exited 0 before the trace ended, where it had kept running"
    if not before.stopped and after.stopped:
        return f"was still running when the run ended, where it had exited 0 after {before.seconds:.1f}s"
    if (before.stopped and after.stop_code == KILLED and before.stop_code != KILLED
            and after.seconds >= SETTLED and before.seconds >= SETTLED):
        return ("ignored the stop signal and was killed after the grace period, where it had stopped cleanly "
                "(it may have failed to save its state)")
    return None


def lost_ports(before: PodTrace, after: PodTrace) -> list[str]:
    """TCP ports the pod listened on before and no longer does."""
    now = set(after.listening)
    return [p for p in before.listening if p not in now]


def slow_init(before: PodTrace, after: PodTrace) -> str:
    """An init container still running when the run ended, where it had finished: the app containers never
    got their turn, so the run shows nothing about them (a longer ``--duration`` would)."""
    for c in after.containers:
        b = before.container(c.name)
        if c.init and c.stopped and b is not None and b.ran and not b.stopped and not b.exit_code:
            return (f"; init container {c.name!r} was still running when the run ended (it took {b.seconds:.1f}s "
                    "as written): try a longer --duration")
    return ""
