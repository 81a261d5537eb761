"""``get pods``, ``describe`` and ``-o json`` views of pod records, in kubectl's layouts."""

from __future__ import annotations

import time
from typing import Any

from podsec.runtime.state import ContainerStatus, PodRecord
from podsec.runtime.status import human_duration, pod_phase, ready_column, restarts_column, status_word


def table(rows: list[list[str]], padding: int = 3) -> str:
    """kubectl's tabwriter: columns as wide as their widest cell plus 3 spaces, the last one bare."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i] + padding) for i, c in enumerate(r[:-1])] + [r[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def get_rows(records: list[PodRecord], *, wide: bool = False, all_namespaces: bool = False) -> str:
    now = time.time()
    header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    if wide:
        header += ["IP", "NODE"]
    rows = [header]
    for r in records:
        row = [r.name, ready_column(r), status_word(r), restarts_column(r, now), human_duration(now - r.created)]
        if all_namespaces:
            row.insert(0, r.namespace)
        if wide:
            row += [r.pod_ip if not r.sandbox_error else "<none>", r.node_name or "<none>"]
        rows.append(row)
    return table(rows)


def rfc3339(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _http_date(ts: float | None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts)) if ts else "<unset>"


def _container_state(c: ContainerStatus) -> dict[str, Any]:
    if c.state == "running":
        return {"running": {"startedAt": rfc3339(c.started_at)}}
    if c.state == "terminated":
        term: dict[str, Any] = {"exitCode": c.exit_code, "reason": c.reason, "startedAt": rfc3339(c.started_at),
                                "finishedAt": rfc3339(c.finished_at), "containerID": f"runc://{c.runtime_id}"}
        if c.message:
            term["message"] = c.message
        if c.signal:
            term["signal"] = c.signal
        return {"terminated": term}
    waiting: dict[str, Any] = {"reason": c.reason} if c.reason else {}
    if c.message:
        waiting["message"] = c.message
    return {"waiting": waiting}


def _last_state(c: ContainerStatus) -> dict[str, Any]:
    last = c.last_state
    if not last:
        return {}
    term = {"exitCode": last.get("exit_code"), "reason": last.get("reason"),
            "startedAt": rfc3339(last.get("started_at")), "finishedAt": rfc3339(last.get("finished_at"))}
    if last.get("message"):
        term["message"] = last["message"]
    return {"terminated": term}


def container_status(c: ContainerStatus, runtime: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "image": c.image,
        "imageID": c.image_id,
        "ready": c.ready,
        "restartCount": c.restart_count,
        "started": c.state == "running",
        "state": _container_state(c),
        "lastState": _last_state(c),
    }
    if c.state != "waiting" or c.last_state:
        out["containerID"] = f"{runtime}://{c.runtime_id}"
    return out


def pod_object(r: PodRecord) -> dict[str, Any]:
    """The record as a v1 Pod with a ``status`` (what ``kubectl get pod -o json`` would show)."""
    meta = dict(r.metadata)
    meta["creationTimestamp"] = rfc3339(r.created)
    if r.deleting:
        meta["deletionTimestamp"] = rfc3339(r.deletion_time)
    status: dict[str, Any] = {
        "phase": pod_phase(r),
        "hostIP": r.host_ip,
        "startTime": rfc3339(r.started),
        "qosClass": "BestEffort",
    }
    if not r.sandbox_error:
        status["podIP"] = r.pod_ip
        status["podIPs"] = [{"ip": r.pod_ip}]
    if r.message:
        status["message"] = r.message
    if r.init_containers:
        status["initContainerStatuses"] = [container_status(c, r.runtime) for c in r.init_containers]
    status["containerStatuses"] = [container_status(c, r.runtime) for c in r.app_containers]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": r.spec, "status": status,
            "podsec": {"statusWord": status_word(r), "resolved": r.resolved}}


# -- describe ------------------------------------------------------------------------------------


def _kv(lines: list[str], indent: int, key: str, value: str, width: int) -> None:
    lines.append(" " * indent + f"{key + ':':<{width}}{value}")


def _describe_container(lines: list[str], r: PodRecord, c: ContainerStatus, spec: dict) -> None:
    w = 16
    lines.append(f"  {c.name}:")
    _kv(lines, 4, "Container ID", f"{r.runtime}://{c.runtime_id}" if c.state != "waiting" else "", w)
    _kv(lines, 4, "Image", c.image, w)
    _kv(lines, 4, "Image ID", c.image_id, w)
    for key, title in (("command", "Command"), ("args", "Args")):
        if spec.get(key):
            lines.append(f"    {title}:")
            lines += [f"      {part}" for arg in spec[key] for part in str(arg).rstrip("\n").split("\n")]
    if c.state == "running":
        _kv(lines, 4, "State", "Running", w)
        _kv(lines, 6, "Started", _http_date(c.started_at), w - 2)
    elif c.state == "terminated":
        _kv(lines, 4, "State", "Terminated", w)
        _kv(lines, 6, "Reason", c.reason, w - 2)
        if c.message:
            _kv(lines, 6, "Message", c.message, w - 2)
        _kv(lines, 6, "Exit Code", str(c.exit_code), w - 2)
        _kv(lines, 6, "Started", _http_date(c.started_at), w - 2)
        _kv(lines, 6, "Finished", _http_date(c.finished_at), w - 2)
    else:
        _kv(lines, 4, "State", "Waiting", w)
        if c.reason:
            _kv(lines, 6, "Reason", c.reason, w - 2)
        if c.message:
            _kv(lines, 6, "Message", c.message, w - 2)
    if c.last_state:
        last = c.last_state
        _kv(lines, 4, "Last State", "Terminated", w)
        _kv(lines, 6, "Reason", str(last.get("reason") or ""), w - 2)
        _kv(lines, 6, "Exit Code", str(last.get("exit_code")), w - 2)
        _kv(lines, 6, "Started", _http_date(last.get("started_at")), w - 2)
        _kv(lines, 6, "Finished", _http_date(last.get("finished_at")), w - 2)
    _kv(lines, 4, "Ready", "True" if c.ready else "False", w)
    _kv(lines, 4, "Restart Count", str(c.restart_count), w)
    sec = r.resolved.get(c.name)
    if sec:
        groups = ",".join(str(g) for g in sec.get("groups") or ())
        _kv(lines, 4, "Runs As", f"uid={sec.get('uid')} gid={sec.get('gid')} groups={groups or '<none>'}", w)
        _kv(lines, 4, "Capabilities", _caps_line(sec), w)
    env = spec.get("env") or []
    if env:
        lines.append("    Environment:")
        for e in env:
            value = e.get("value")
            if value is None and isinstance(e.get("valueFrom"), dict):
                src = e["valueFrom"]
                kind = next(iter(src), "")
                ref = src.get(kind) or {}
                value = f"<set to the key '{ref.get('key')}' of {kind.removesuffix('KeyRef')} '{ref.get('name')}'>" \
                    if "key" in ref else f"({kind}: {ref.get('fieldPath') or ref.get('resource')})"
            lines.append(f"      {e.get('name')}:  {value}")
    else:
        _kv(lines, 4, "Environment", "<none>", w)
    mounts = spec.get("volumeMounts") or []
    if mounts:
        lines.append("    Mounts:")
        for m in mounts:
            ro = "ro" if m.get("readOnly") else "rw"
            sub = f",path=\"{m['subPath']}\"" if m.get("subPath") else ""
            lines.append(f"      {m.get('mountPath')} from {m.get('name')} ({ro}{sub})")
    else:
        _kv(lines, 4, "Mounts", "<none>", w)


def _events(r: PodRecord, now: float) -> list[str]:
    if not r.events:
        return ["Events:            <none>"]
    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for ev in r.events:
        age = human_duration(now - ev.last)
        if ev.count > 1:
            age = f"{age} (x{ev.count} over {human_duration(now - ev.first)})"
        rows.append([ev.type, ev.reason, age, ev.source, ev.message])
    return ["Events:"] + ["  " + line for line in table(rows, padding=2).splitlines()]


def _caps_line(sec: dict[str, Any]) -> str:
    """What the process holds (effective) and what it could regain (bounding): a non-root container's
    added capabilities are only in the bounding set."""
    def names(caps: Any) -> str:
        return ",".join(cap.removeprefix("CAP_") for cap in caps or ()) or "<none>"

    bounding = names(sec.get("capabilities"))
    if "effective" not in sec:  # a record from before effective sets were kept
        return f"{bounding} (bounding)"
    effective = names(sec.get("effective"))
    if effective == bounding:
        return f"{effective} (effective and bounding)"
    return f"{effective} (effective); bounding: {bounding}"


def describe(r: PodRecord) -> str:
    now = time.time()
    meta = r.metadata
    w = 18
    lines: list[str] = []
    _kv(lines, 0, "Name", r.name, w)
    _kv(lines, 0, "Namespace", r.namespace, w)
    _kv(lines, 0, "Service Account", str(r.spec.get("serviceAccountName") or "default"), w)
    _kv(lines, 0, "Node", f"{r.node_name}/{r.host_ip}", w)
    _kv(lines, 0, "Start Time", _http_date(r.started or r.created), w)
    for key, title in (("labels", "Labels"), ("annotations", "Annotations")):
        m = meta.get(key) or {}
        items = [f"{k}={v}" for k, v in sorted(m.items())] or ["<none>"]
        _kv(lines, 0, title, items[0], w)
        lines += [" " * w + item for item in items[1:]]
    status = "Terminating" if r.deleting else pod_phase(r)
    _kv(lines, 0, "Status", status, w)
    if r.deleting:
        _kv(lines, 0, "Termination Grace Period", f"{r.spec.get('terminationGracePeriodSeconds', 30)}s", w)
    if r.message:
        _kv(lines, 0, "Message", r.message, w)
    _kv(lines, 0, "IP", "" if r.sandbox_error else r.pod_ip, w)
    _kv(lines, 0, "Runtime", f"{r.runtime} (sandbox {r.sandbox_id})", w)
    specs = {c.get("name"): c for k in ("initContainers", "containers") for c in r.spec.get(k) or ()}
    if r.init_containers:
        lines.append("Init Containers:")
        for c in r.init_containers:
            _describe_container(lines, r, c, specs.get(c.name) or {})
    lines.append("Containers:")
    for c in r.app_containers:
        _describe_container(lines, r, c, specs.get(c.name) or {})
    inits_ok = all(c.terminated_ok for c in r.init_containers)
    ready = bool(r.app_containers) and all(c.ready for c in r.app_containers)
    lines.append("Conditions:")
    cond_rows = [["Type", "Status"], ["Initialized", str(inits_ok)], ["Ready", str(ready)],
                 ["ContainersReady", str(ready)], ["PodScheduled", "True"]]
    lines += ["  " + line for line in table(cond_rows).splitlines()]
    vols = r.spec.get("volumes") or []
    if vols:
        lines.append("Volumes:")
        for v in vols:
            kind = next((k for k in v if k != "name"), "emptyDir")
            lines.append(f"  {v.get('name')}:")
            lines.append(f"    Type:  {kind}")
    else:
        _kv(lines, 0, "Volumes", "<none>", w)
    _kv(lines, 0, "QoS Class", "BestEffort", w)
    lines += _events(r, now)
    return "\n".join(lines) + "\n"
