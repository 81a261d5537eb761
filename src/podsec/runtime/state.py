"""A pod's state on disk: one directory per pod, ``pod.json`` rewritten atomically.

Everything another podsec process needs (``get``, ``describe``, ``exec``, ``delete``, ``gc``) is in
``pod.json``; only the process that owns the pod (the foreground ``run`` or the ``apply`` supervisor)
writes it, always as tmp + fsync + rename so a reader or a crash never sees half a file.

Layout under ``<state>/pods/<namespace>_<name>/``::

    pod.json                 the record below
    sandbox/                 hosts, hostname, resolv.conf, shm/ (64Mi tmpfs), bundle/
    containers/<name>/       bundle/ upper/ work/ rootfs/ (overlay) termination-log
    logs/<name>.log          the container's stdout+stderr (one file description, so order is kept)
    volumes/                 the volume layer's directories
    supervisor.log           stdio of the detached supervisor
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

POD_FILE = "pod.json"
DELETE_REQUEST = "delete-request"
RECORD_VERSION = 1
ID_PREFIX = "podsec-"


def new_uid() -> str:
    """A pod uid like the API server's: a random (version 4) UUID, formatted here because :mod:`uuid` imports
    :mod:`platform`, a few milliseconds on every ``podsec run``."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def runtime_id(pod_uid: str, container: str | None = None) -> str:
    """runc/crun container id: ``podsec-<uid8>`` for the sandbox, ``podsec-<uid8>-<name>`` for containers."""
    short = pod_uid.replace("-", "")[:8]
    return f"{ID_PREFIX}{short}" if container is None else f"{ID_PREFIX}{short}-{container}"


@dataclass(slots=True)
class ContainerStatus:
    """One container as ``kubectl get pod -o yaml`` would show it in ``status.containerStatuses``."""

    name: str
    kind: str  # init | container
    image: str
    runtime_id: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    restart_count: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    ready: bool = False
    image_id: str = ""
    last_state: dict[str, Any] | None = None
    """The previous run's terminated state (exit code, reason, times), as the kubelet keeps it."""
    next_start: float | None = None
    """Back-off: the earliest time the next restart may happen (monotonic clocks do not survive processes,
    so this is wall-clock)."""

    @property
    def terminated_ok(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0


@dataclass(slots=True)
class Event:
    """A kubelet event as ``kubectl describe`` lists it (repeats are counted, not duplicated)."""

    type: str  # Normal | Warning
    reason: str
    message: str
    first: float
    last: float
    count: int = 1
    source: str = "kubelet"


@dataclass(slots=True)
class PodRecord:
    """Everything podsec knows about one pod; serialised as ``pod.json``."""

    name: str
    namespace: str
    uid: str
    manifest: dict[str, Any]
    """The Pod as given (``metadata`` with the uid filled in, ``spec``)."""
    objects: list[dict[str, Any]] = field(default_factory=list)
    """ConfigMaps and Secrets from the same files, for env valueFrom and configMap/secret volumes."""
    image_root: str = ""
    runtime: str = "runc"
    volume_dirs: dict[str, str] = field(default_factory=dict)
    feature_gates: dict[str, bool] = field(default_factory=dict)
    """podsec's feature gates in force for this pod (``--feature-gates``; empty: a stock cluster)."""
    created: float = field(default_factory=time.time)
    started: float | None = None
    owner_pid: int | None = None
    owner_start: int | None = None
    """Start time (clock ticks since boot, /proc/<pid>/stat field 22) of the owner, against pid reuse."""
    mode: str = "foreground"  # foreground | detached
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    pod_ip: str = ""
    host_ip: str = ""
    node_name: str = ""
    sandbox_id: str = ""
    sandbox_pid: int | None = None
    sandbox_error: str = ""
    deleting: bool = False
    deletion_time: float | None = None
    released: bool = False
    """True once the owner stopped everything (terminal pod or failed sandbox): nothing is left to clean
    but this directory, which stays for ``get``/``describe``/``logs`` until ``delete``."""
    containers: list[ContainerStatus] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)
    workload: dict[str, str] = field(default_factory=dict)
    """The workload the pod was made from (``{"kind": "Deployment", "name": "web"}``), empty for a Pod:
    ``apply`` and ``delete -f`` find the pod by it, since its name is generated."""
    version: int = RECORD_VERSION

    # -- lookups -------------------------------------------------------------------------------
    def container(self, name: str) -> ContainerStatus:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def init_containers(self) -> list[ContainerStatus]:
        return [c for c in self.containers if c.kind == "init"]

    @property
    def app_containers(self) -> list[ContainerStatus]:
        return [c for c in self.containers if c.kind == "container"]

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.manifest.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.manifest.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def event(self, type_: str, reason: str, message: str) -> None:
        """Record an event; the same (reason, message) again only bumps its count, like the event recorder."""
        now = time.time()
        for ev in self.events:
            if ev.reason == reason and ev.message == message and ev.type == type_:
                ev.count += 1
                ev.last = now
                return
        self.events.append(Event(type_, reason, message, now, now))

    # -- serialisation -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PodRecord:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in doc.items() if k in known}
        cnames = {f.name for f in fields(ContainerStatus)}
        enames = {f.name for f in fields(Event)}
        data["containers"] = [
            ContainerStatus(**{k: v for k, v in c.items() if k in cnames}) for c in doc.get("containers") or ()
        ]
        data["events"] = [Event(**{k: v for k, v in e.items() if k in enames}) for e in doc.get("events") or ()]
        return cls(**data)


class PodPaths:
    """Where a pod's files live; pure path arithmetic, nothing is created here."""

    def __init__(self, state_root: str | Path, namespace: str, name: str) -> None:
        self.state_root = Path(state_root)
        self.namespace = namespace
        self.name = name
        self.dir = self.state_root / "pods" / f"{namespace}_{name}"

    @classmethod
    def from_dir(cls, pod_dir: str | Path) -> PodPaths:
        pod_dir = Path(pod_dir)
        namespace, _, name = pod_dir.name.partition("_")
        return cls(pod_dir.parent.parent, namespace, name)

    @property
    def pod_json(self) -> Path:
        return self.dir / POD_FILE

    @property
    def delete_request(self) -> Path:
        return self.dir / DELETE_REQUEST

    @property
    def sandbox(self) -> Path:
        return self.dir / "sandbox"

    @property
    def shm(self) -> Path:
        return self.sandbox / "shm"

    @property
    def volumes(self) -> Path:
        return self.dir / "volumes"

    @property
    def supervisor_log(self) -> Path:
        return self.dir / "supervisor.log"

    def container_dir(self, name: str) -> Path:
        return self.dir / "containers" / name

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"


def pods_dir(state_root: str | Path) -> Path:
    return Path(state_root) / "pods"


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """tmp + fsync + rename: readers see the old or the new file, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(paths: PodPaths, record: PodRecord) -> None:
    write_atomic(paths.pod_json, json.dumps(record.to_json(), separators=(",", ":")).encode())


def load(paths: PodPaths) -> PodRecord | None:
    """The record, or None when the pod (or its record) does not exist or is unreadable."""
    try:
        with open(paths.pod_json, "rb") as fh:
            return PodRecord.from_json(json.loads(fh.read()))
    except (OSError, ValueError, TypeError):
        return None


def list_pod_dirs(state_root: str | Path) -> list[Path]:
    """Every pod directory (complete or not), sorted by name."""
    try:
        return sorted(p for p in pods_dir(state_root).iterdir() if p.is_dir() and "_" in p.name)
    except FileNotFoundError:
        return []


def workload_pods(state_root: str | Path, namespace: str, workload: dict[str, str]) -> list[tuple[PodPaths, PodRecord]]:
    """The pods made from ``workload`` (kind and name) in ``namespace``, oldest first."""
    out = []
    for d in list_pod_dirs(state_root):
        if not d.name.startswith(f"{namespace}_"):
            continue
        paths = PodPaths.from_dir(d)
        rec = load(paths)
        if rec is not None and rec.workload == workload:
            out.append((paths, rec))
    return sorted(out, key=lambda pr: pr[1].created)


@contextlib.contextmanager
def apply_lock(state_root: str | Path) -> Any:
    """Serialise ``apply``'s look-then-create, so parallel applies of one pod create it once."""
    import fcntl

    root = Path(state_root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "apply.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- owner liveness --------------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        if rest[0] == b"Z":
            return None
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def owner_alive(record: PodRecord) -> bool:
    """True when the process that owns the pod still runs (same pid and same start time)."""
    if record.owner_pid is None:
        return False
    start = process_start_time(record.owner_pid)
    return start is not None and (record.owner_start is None or start == record.owner_start)
