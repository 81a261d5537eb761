"""What ``kubectl get pods`` and the kubelet would say about a pod record: phase, STATUS word, ages.

Pure functions over :class:`podsec.runtime.state.PodRecord`, ported from the kubelet's ``getPhase`` and
kubectl's ``printPod``, so the words match a cluster's (``Init:0/1``, ``PodInitializing``,
``CrashLoopBackOff``, ``CreateContainerConfigError``, ``Completed``, ``Error``, ``Terminating``…).
"""

from __future__ import annotations

import time

from podsec.runtime.state import ContainerStatus, PodRecord


def _was_terminated(c: ContainerStatus) -> bool:
    return c.last_state is not None


def pod_phase(record: PodRecord) -> str:
    """kubelet ``getPhase`` over the record's container statuses."""
    policy = record.spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for c in record.init_containers:
        if c.state == "running":
            pending_init += 1
        elif c.state == "terminated":
            if c.exit_code != 0:
                failed_init += 1
        elif c.last_state is not None:
            if (c.last_state.get("exit_code") or 0) != 0:
                failed_init += 1
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for c in record.app_containers:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            if c.exit_code == 0:
                succeeded += 1
        elif _was_terminated(c):
            stopped += 1
        else:
            waiting += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_init > 0 or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _terminated_reason(c: ContainerStatus) -> str:
    if c.reason:
        return c.reason
    if c.signal:
        return f"Signal:{c.signal}"
    return f"ExitCode:{c.exit_code}"


def status_word(record: PodRecord) -> str:
    """kubectl ``printPod``'s STATUS column."""
    reason = record.reason or pod_phase(record)
    inits = record.init_containers
    initializing = False
    for i, c in enumerate(inits):
        if c.state == "terminated" and c.exit_code == 0:
            continue
        initializing = True
        if c.state == "terminated":
            reason = "Init:" + c.reason if c.reason else (
                f"Init:Signal:{c.signal}" if c.signal else f"Init:ExitCode:{c.exit_code}"
            )
        elif c.state == "waiting" and c.reason and c.reason != "PodInitializing":
            reason = "Init:" + c.reason
        else:
            reason = f"Init:{i}/{len(inits)}"
        break
    if not initializing:
        has_running = False
        for c in reversed(record.app_containers):
            if c.state == "waiting" and c.reason:
                reason = c.reason
            elif c.state == "terminated":
                reason = _terminated_reason(c)
            elif c.state == "running" and c.ready:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if record.deleting:
        reason = "Terminating"
    return reason


def ready_column(record: PodRecord) -> str:
    apps = record.app_containers
    ready = sum(1 for c in apps if c.state == "running" and c.ready)
    return f"{ready}/{len(apps)}"


def restarts_column(record: PodRecord, now: float | None = None) -> str:
    """``N`` or, since kubectl 1.24, ``N (AGE ago)`` after the last restart."""
    now = time.time() if now is None else now
    inits = record.init_containers
    init_done = all(c.state == "terminated" and c.exit_code == 0 for c in inits)
    counted = record.app_containers if init_done else inits
    total = sum(c.restart_count for c in counted)
    last = max(
        (c.last_state.get("finished_at") or 0 for c in counted if c.last_state and c.restart_count),
        default=0,
    )
    if total and last:
        return f"{total} ({human_duration(now - last)} ago)"
    return str(total)


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration`` (what the AGE column prints)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for the back-off message (``10s``, ``1m20s``, ``5m0s``, ``200ms``)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    total = round(seconds, 9)
    hours, rem = divmod(total, 3600)
    minutes, secs = divmod(rem, 60)
    sec_s = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_s}"
    if minutes:
        return f"{int(minutes)}m{sec_s}"
    return sec_s


def exit_code_of(record: PodRecord) -> tuple[int, str | None]:
    """What ``podsec run`` exits with: the highest app exit code, or 1 and the reason when an app
    container never ran (a config error, a failed init container, a sandbox that did not start)."""
    if record.sandbox_error:
        return 1, f"RunPodSandbox: {record.sandbox_error}"
    for c in record.init_containers:
        if c.state == "terminated" and c.exit_code != 0:
            return 1, f'init container "{c.name}": Init:{c.reason or "Error"} (exit code {c.exit_code})'
        if c.state == "waiting" and c.reason not in ("PodInitializing", "ContainerCreating", "CrashLoopBackOff"):
            return 1, f'init container "{c.name}": {c.reason}: {c.message}'
    codes: list[int] = []
    for c in record.app_containers:
        if c.state == "terminated" and c.exit_code is not None:
            codes.append(c.exit_code)
        elif c.last_state is not None and c.last_state.get("exit_code") is not None:
            codes.append(int(c.last_state["exit_code"]))
        else:
            message = c.message or record.message
            detail = f"{c.reason}: {message}" if message else c.reason
            return 1, f'container "{c.name}" did not run: {detail}'
    return (max(codes) if codes else 0), None
