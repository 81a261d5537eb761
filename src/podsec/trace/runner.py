"""Run workloads as pods with a writable root filesystem and collect what each container wrote.

Each workload's pod template runs once, as ``podsec run`` would run it, with three changes so the trace
sees everything and ends: ``readOnlyRootFilesystem`` is off (the writes land in the overlay's upper
directory instead of failing), ``restartPolicy`` is ``Never`` (a restart would start from a fresh upper
directory, and a crashing app would loop), and the grace period after ``duration`` is at most
``STOP_GRACE`` seconds. The pod stops when every container has exited or after ``duration``.

The pod directory is a normal podsec pod (named ``<name>-trace-<random>``), owned by this process: a
crash leaves nothing ``podsec gc`` cannot clean, and Ctrl-C stops the pod, reports and cleans up.

What is read, per container (see :class:`TraceRunner`): the upper directory just before the stop
(files removed at exit, like a pid file, are still there) and after it; every writable volume's host
directory right before the container starts and after it ends, for writes inside mounted volumes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from podsec.errors import InputError
from podsec.runtime.lifecycle import PodRunner
from podsec.runtime.state import ContainerStatus
from podsec.trace.diff import ImageTree, RuntimePaths, Snapshot, UpperDiff, diff_snapshots, diff_upper, join, snapshot
from podsec.trace.group import group_writes
from podsec.trace.model import Change, ContainerTrace, PodTrace
from podsec.trace.sockets import listening

STOP_GRACE = 5
LOG_TAIL_LINES = 8
VOLUME_SCAN_LIMIT = 100_000
ROOT_BOUND_FILES = {"/etc/hostname", "/etc/resolv.conf"}
"""Files the runtime binds read-only when the root filesystem is (containerd); /etc/hosts stays writable."""
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


@dataclass(slots=True)
class Target:
    """One workload of the input, ready to run as a pod."""

    source: str
    display: str
    doc_index: int
    line: int
    kind: str
    name: str
    metadata: dict[str, Any]
    spec: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")


# -- loading ----------------------------------------------------------------------------------------


def read_inputs(files: Sequence[str]) -> list[tuple[str, str, str]]:
    """(path as given, display name, text) of every manifest file; directories are walked, ``-`` is stdin."""
    from podsec.manifest.loader import iter_manifest_files, read_text

    out = []
    for path in iter_manifest_files(files):
        display, text = read_text(path)
        out.append((path, display, text))
    if not out:
        raise InputError("no manifest files found", file=", ".join(files))
    return out


def load_targets(inputs: Sequence[tuple[str, str, str]], namespace: str | None = None,
                 field_validation: str = "strict") -> list[Target]:
    """Every workload (Pod, Deployment, …, CronJob) in ``inputs``, validated as the API server would;
    ConfigMaps and Secrets found anywhere go with every pod (env and volumes)."""
    import sys

    from podsec.admit import AdmitOptions, admit
    from podsec.manifest.loader import K8sObject, add_object, parse_documents

    found: list[tuple[str, K8sObject]] = []
    for path, display, text in inputs:
        objs: list[K8sObject] = []
        for src, obj in parse_documents(display, text):
            add_object(objs, obj, src)
        found += [(path, o) for o in objs]
    paths = {id(o): path for path, o in found}
    admission = admit([o for _, o in found], AdmitOptions(namespace=namespace, create=True, generate_names=True,
                                                          field_validation=field_validation))
    for line in admission.warnings():
        print(line, file=sys.stderr)
    admission.raise_invalid()
    objects = admission.config_objects
    targets: list[Target] = []
    for p in admission.pods:
        obj = p.workload.obj
        targets.append(Target(paths[id(obj)], obj.source.display, obj.source.index, obj.line_of(), obj.kind,
                              obj.name, p.metadata, p.spec))
    for t in targets:
        t.objects = objects
    if not targets:
        raise InputError("no workload (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob, …) in the files",
                         file=", ".join(sorted({d for _, d, _ in inputs})))
    return targets


def trace_spec(spec: dict[str, Any], grace: int = STOP_GRACE, keep_readonly: bool = False,
               ) -> tuple[dict[str, Any], set[str]]:
    """The pod spec the trace runs: writable roots (unless ``keep_readonly``: a proof run of a read-only
    manifest), no restarts, a grace period of at most ``grace`` seconds. Also returns the containers whose
    manifest asked for a read-only root."""
    spec = copy.deepcopy(spec)
    readonly: set[str] = set()
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            sc = c.get("securityContext") if isinstance(c, dict) else None
            if isinstance(sc, dict) and sc.get("readOnlyRootFilesystem") is True:
                if not keep_readonly:
                    sc["readOnlyRootFilesystem"] = False
                readonly.add(str(c.get("name")))
    spec["restartPolicy"] = "Never"
    own = spec.get("terminationGracePeriodSeconds")
    spec["terminationGracePeriodSeconds"] = min(own, grace) if type(own) is int and own >= 0 else grace
    return spec, readonly


# -- running ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Bind:
    """A writable bind mount of a container whose host side is watched."""

    dest: str
    source: str
    before: Snapshot
    skip: frozenset[str]
    root_bound: bool = False
    """/etc/hostname or /etc/resolv.conf: read-only once the root filesystem is."""


@dataclass(slots=True)
class _Started:
    runtime: RuntimePaths
    binds: list[_Bind]
    image: str
    user: tuple[int, int] | None = None


class TraceRunner(PodRunner):
    """A :class:`PodRunner` that watches what its containers write (see the module docstring)."""

    def __init__(self, paths: Any, record: Any, *, store: Any, duration: float, sink: Any = None) -> None:
        super().__init__(paths, record, store=store, sink=sink, timeout=duration, remove=True)
        self.started: dict[str, _Started] = {}
        self.timeline: dict[str, list[tuple[float, Snapshot]]] = {}
        self.pre_stop: dict[str, UpperDiff] = {}
        self.final: dict[str, UpperDiff] = {}
        self.stopped: set[str] = set()
        self.volume_writes: dict[str, list[Change]] = {}
        self.root_bound_writes: dict[str, list[Change]] = {}
        self.notes: dict[str, list[str]] = {}
        self.log_tails: dict[str, list[str]] = {}
        self.trees: dict[str, ImageTree] = {}
        self.listening: list[str] = []

    def _note(self, name: str, message: str) -> None:
        self.notes.setdefault(name, []).append(message)

    def _snap(self, source: str, name: str, dest: str) -> Snapshot:
        snap = snapshot(Path(source), VOLUME_SCAN_LIMIT)
        self.timeline.setdefault(source, []).append((time.time(), snap))
        if not snap.complete:
            self._note(name, f"{dest}: more than {VOLUME_SCAN_LIMIT} entries in the volume; only the first "
                             f"{VOLUME_SCAN_LIMIT} were watched and deletions in it are not reported")
        return snap

    def before_start(self, c: ContainerStatus, spec: dict) -> None:
        """Remember the runtime's own mount points and snapshot the writable volumes this container mounts."""
        try:
            mounts = [m for m in spec.get("mounts") or () if isinstance(m, dict)]
            dests = [str(m.get("destination") or "") for m in mounts]
            cwd = str((spec.get("process") or {}).get("cwd") or "/")
            own = (str(self.paths.sandbox), str(self.paths.container_dir(c.name)))
            binds: list[_Bind] = []
            for m in mounts:
                dest, source = "/" + str(m.get("destination") or "").strip("/"), str(m.get("source") or "")
                opts = m.get("options") or ()
                if m.get("type") != "bind" or "ro" in opts or not source:
                    continue
                root_bound = dest in ROOT_BOUND_FILES
                if not root_bound and (source == own[0] or source.startswith(tuple(o + "/" for o in own))):
                    continue  # /etc/hosts, /dev/shm, the termination log: the runtime's, not the app's
                nested = [d for d in dests if d.startswith(dest.rstrip("/") + "/")]
                skip = {d[len(dest.rstrip("/")) + 1:] for d in nested}
                skip |= {"/".join(s.split("/")[:i]) for s in skip for i in range(1, s.count("/") + 1)}
                binds.append(_Bind(dest, source, self._snap(source, c.name, dest), frozenset(skip), root_bound))
            image = self.ctx.resolved_container(c.name).image
            user = (spec.get("process") or {}).get("user") or {}
            ids = (user.get("uid"), user.get("gid"))
            self.started[c.name] = _Started(RuntimePaths.of(dests, cwd), binds, image,
                                            ids if all(type(i) is int for i in ids) else None)
        except Exception as e:  # a hook must never break the pod's lifecycle
            self._note(c.name, f"podsec trace could not prepare watching this container: {e}")

    def _tree(self, image: str) -> ImageTree:
        if image not in self.trees:
            self.trees[image] = ImageTree(Path(self.ctx.store.rootfs(image)))
        return self.trees[image]

    def _diff(self, name: str) -> UpperDiff:
        st = self.started[name]
        return diff_upper(self.paths.container_dir(name) / "upper", self._tree(st.image), st.runtime)

    def before_stop(self) -> None:
        """What the still-running containers wrote so far (a clean exit may remove it again), and the ports the
        pod listens on."""
        pid = self.pod_net_pid() if self.procs else None
        if pid is not None:
            try:
                self.listening = listening(pid)
            except Exception as e:
                self._note(next(iter(self.procs)), f"podsec trace could not read the pod's sockets: {e}")
        for name in list(self.procs):
            try:
                if name in self.started:
                    self.stopped.add(name)
                    self.pre_stop[name] = self._diff(name)
            except Exception as e:
                self._note(name, f"podsec trace could not read the container's writes before stopping it: {e}")

    def after_stop(self) -> None:
        """Everything has stopped: read the upper directories, the volumes, and the logs of failures."""
        finals: dict[str, Snapshot] = {}
        for name, st in self.started.items():
            try:
                c = self.rec.container(name)
                self.final[name] = self._diff(name)
                for b in st.binds:
                    after = self._after_snapshot(b.source, c, finals, name, b.dest)
                    dest = b.dest

                    def to_path(rel: str, dest: str = dest) -> str:
                        return dest if not rel else join(dest, rel)

                    changes = diff_snapshots(b.before, after, to_path, b.skip)
                    target = self.root_bound_writes if b.root_bound else self.volume_writes
                    target.setdefault(name, []).extend(changes)
                if c.state == "terminated" and c.exit_code not in (0, None) and name not in self.stopped:
                    self.log_tails[name] = _tail(self.paths.log(name), LOG_TAIL_LINES)
            except Exception as e:
                self._note(name, f"podsec trace could not read what the container wrote: {e}")

    def _after_snapshot(self, source: str, c: ContainerStatus, finals: dict[str, Snapshot], name: str,
                        dest: str) -> Snapshot:
        """The first snapshot of ``source`` taken after ``c`` ended (another container's start), else now."""
        if c.finished_at is not None and name not in self.stopped:
            for t, snap in self.timeline.get(source, ()):
                if t >= c.finished_at:
                    return snap
        if source not in finals:
            finals[source] = snapshot(Path(source), VOLUME_SCAN_LIMIT)
        return finals[source]

    # -- results -----------------------------------------------------------------------------------
    def container_trace(self, c: ContainerStatus, readonly: bool) -> ContainerTrace:
        """The analysed result for one container of the finished pod."""
        ct = ContainerTrace(name=c.name, init=c.kind == "init", readonly_in_manifest=readonly)
        ct.problems += self.notes.get(c.name, [])
        ct.ran = c.state == "terminated"
        ct.stopped = ct.ran and c.name in self.stopped
        ct.exit_code = c.exit_code if ct.ran and not ct.stopped else None
        ct.stop_code = c.exit_code if ct.stopped else None
        if c.started_at is not None and c.finished_at is not None:
            ct.seconds = max(c.finished_at - c.started_at, 0.0)
        ct.status = _status(c, c.name in self.stopped, self.rec)
        ct.log_tail = self.log_tails.get(c.name, [])
        if not ct.ran or c.name not in self.started:
            return ct
        ct.user = self.started[c.name].user
        merged: dict[str, Change] = {ch.path: ch for ch in self.pre_stop.get(c.name, UpperDiff()).changes}
        final = self.final.get(c.name, UpperDiff())
        merged.update({ch.path: ch for ch in final.changes})
        ct.changes = sorted(merged.values(), key=lambda ch: ch.path)
        ct.problems += [f"could not read {e}" for e in final.errors]
        grouping = group_writes(ct.changes, self._tree(self.started[c.name].image))
        ct.mounts = grouping.mounts
        ct.mount_dirs = [m.path for m in grouping.mounts]
        ct.problems += grouping.problems
        for ch in self.root_bound_writes.get(c.name, []):
            ct.problems.append(f"changes {ch.path}: under readOnlyRootFilesystem the runtime mounts it read-only "
                               f"(use the pod's dnsConfig/hostname fields instead of writing it)")
        ct.volume_writes = sorted(self.volume_writes.get(c.name, []), key=lambda ch: ch.path)
        return ct


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - 4096, 0))
            data = fh.read()
    except OSError:
        return []
    return [ln.decode(errors="replace") for ln in data.splitlines()[-lines:]]


def _seconds(c: ContainerStatus) -> str:
    if c.started_at is None or c.finished_at is None:
        return ""
    return f" after {max(c.finished_at - c.started_at, 0.0):.1f}s"


def _status(c: ContainerStatus, stopped: bool, rec: Any) -> str:
    if c.state == "terminated":
        if stopped:
            return f"still running when the trace stopped it{_seconds(c)}"
        return f"exited {c.exit_code}{_seconds(c)}"
    if c.reason in ("PodInitializing", "ContainerCreating", ""):
        if rec.sandbox_error:
            return f"never ran: the pod sandbox failed: {rec.sandbox_error}"
        if rec.message and not any(x.state == "terminated" for x in rec.containers):
            return f"never ran: {rec.message}"
        return "never ran (an init container failed, or the trace ended first)"
    return f"never ran: {c.reason}: {c.message}" if c.message else f"never ran: {c.reason}"


# -- the whole trace --------------------------------------------------------------------------------


@dataclass(slots=True)
class TraceOptions:
    duration: float
    root: str
    state: str
    runtime: str = "runc"
    volume_dirs: Mapping[str, str] | None = None
    namespace: str | None = None
    logs: IO[bytes] | None = None
    """Copy the containers' output here while they run (``--logs``)."""
    jobs: int = 4
    """Pods traced at the same time (each in its own process)."""
    grace: int = STOP_GRACE
    """Seconds between SIGTERM and SIGKILL when the trace stops a container (the pod's own, if shorter)."""
    verify: bool = True
    """Run each pod again under the proposed mounts and keep them only when it runs as well."""
    keep_readonly: bool = False
    """Run read-only roots as the manifest says (a proof run): nothing is written, only how it ran counts."""
    rounds: int = 3
    """Runs under proposed mounts at most, per pod."""
    validate: str = "strict"
    """kubectl's ``--validate`` for unknown fields (:mod:`podsec.api.strict`)."""


def trace_pod(target: Target, opts: TraceOptions, store: Any) -> tuple[PodTrace, TraceRunner]:
    """Run one workload's pod for ``opts.duration`` and analyse what its containers wrote."""
    from podsec.runtime import lifecycle, state
    from podsec.runtime.cleanup import cleanup_pod

    spec, readonly = trace_spec(target.spec, opts.grace, opts.keep_readonly)
    record = lifecycle.new_record(
        target.metadata, spec, target.objects, image_root=os.path.abspath(opts.root), runtime=opts.runtime,
        volume_dirs=dict(opts.volume_dirs or {}), mode="foreground", node_name=os.uname().nodename,
    )
    record.name = f"{target.metadata['name'][:200].rstrip('-.')}-trace-{os.urandom(3).hex()[:5]}"
    paths = state.PodPaths(opts.state, record.namespace, record.name)
    sink = None
    if opts.logs is not None:
        from podsec.runtime.logs import LogStreamer

        names = [c.name for c in record.containers]
        sink = LogStreamer({n: paths.log(n) for n in names}, opts.logs, prefix=True)
    saved = {s: signal.getsignal(s) for s in _SIGNALS}
    created = False
    start = time.time()
    try:
        try:
            lifecycle.create_pod_dir(paths, record)
        except lifecycle.PodExists:
            raise  # not ours
        except BaseException:
            created = True  # interrupted half-way (Ctrl-C while pod.json is written): ours to clean up
            raise
        created = True
        runner = TraceRunner(paths, record, store=store, duration=opts.duration, sink=sink)
        runner.run()
    finally:
        for s, h in saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)
        if created and paths.dir.exists():  # run() removes it; this is for a failure on the way
            cleanup_pod(paths, record, remove=True)
    pod = PodTrace(source=target.source, doc_index=target.doc_index, kind=target.kind, name=target.name,
                   namespace=record.namespace, display=target.display, line=target.line,
                   duration=time.time() - start, interrupted=runner.stop_reason == "interrupt")
    pod.containers = [runner.container_trace(c, c.name in readonly) for c in record.containers]
    pod.listening = list(runner.listening)
    if record.sandbox_error:
        pod.error = f"RunPodSandbox: {record.sandbox_error}"
    elif record.message and not any(c.ran for c in pod.containers):
        pod.error = record.message
    return pod, runner


def unpack_images(targets: Sequence[Target], store: Any) -> None:
    """Unpack every image the targets run before any clock starts: ``--duration`` is the app's time, and a
    first unpack of a large image (hundreds of MB) would otherwise eat it."""
    refs = {str(c.get("image")) for t in targets for k in ("initContainers", "containers")
            for c in t.spec.get(k) or () if isinstance(c, dict) and c.get("image")}
    for ref in sorted(refs):
        store.rootfs(ref)


def _ended_first(pod: PodTrace) -> bool:
    """A container never ran, yet nothing failed: the run ended before the pod got to it."""
    if pod.interrupted or pod.error or any(c.exit_code for c in pod.containers):
        return False
    return any(not c.ran and c.status.startswith("never ran (") for c in pod.containers)


def trace_verified(target: Target, text: str, opts: TraceOptions, store: Any) -> PodTrace:
    """Trace one workload, then (``opts.verify``) run it again under the proposed mounts and keep only the
    ones it runs as well with (``text``: its file's text, which the mounts are patched into)."""
    pod, _ = trace_pod(target, opts, store)
    if _ended_first(pod):  # the machine was slow to start the pod: that says nothing about the app
        late = ", ".join(c.name for c in pod.containers if not c.ran)
        pod, _ = trace_pod(target, opts, store)
        pod.notes.append(f"the first run ended before {late} started (a slow pod start); it ran once more")
    if opts.verify and not pod.interrupted and not pod.error and any(c.fixable and c.mounts for c in pod.containers):
        from podsec.trace.verify import apply_verdict, converge

        try:
            apply_verdict(pod, converge((target.source, target.display), pod, text, opts, store))
        except InputError as e:  # YAML podsec cannot edit in place (aliases…): the proposal stays unchecked
            pod.notes.append(f"the mounts are not checked: the manifest cannot be patched to run them: {e.message}")
        except KeyboardInterrupt:  # Ctrl-C between or during the checking runs: report the trace that ended
            pod.interrupted = True
            pod.notes.append("the mounts are not checked: interrupted before the run under them ended")
    return pod


def trace_texts(inputs: Sequence[tuple[str, str, str]], opts: TraceOptions) -> list[PodTrace]:
    """Trace every workload in ``inputs`` ((path, display, text) as :func:`read_inputs` gives), up to
    ``opts.jobs`` pods at a time; after Ctrl-C no new pod starts (the interrupted ones are still reported)."""
    from podsec.image.store import ImageStore
    from podsec.runtime.admission import PodRequest, check_images

    targets = load_targets(inputs, opts.namespace, opts.validate)
    texts = {path: text for path, _, text in inputs}
    store = ImageStore(Path(opts.root))
    for t in targets:
        check_images(PodRequest(t.metadata, t.spec), store)
    unpack_images(targets, store)
    if len(targets) > 1 and opts.jobs > 1:
        from podsec.trace.pool import run_parallel

        return run_parallel([lambda t=t: trace_verified(t, texts[t.source], opts, store) for t in targets],
                            opts.jobs)
    out: list[PodTrace] = []
    for t in targets:
        pod = trace_verified(t, texts[t.source], opts, store)
        out.append(pod)
        if pod.interrupted:
            break
    return out


def trace_files(files: Sequence[str], *, duration: float, root: str, state: str, runtime: str = "runc",
                volume_dirs: Mapping[str, str] | None = None, jobs: int = 4) -> list[PodTrace]:
    """Run every workload in ``files`` for up to ``duration`` seconds each (``jobs`` pods at a time) and
    report what each container wrote."""
    return trace_texts(read_inputs(files), TraceOptions(duration=duration, root=root, state=state, runtime=runtime,
                                                        volume_dirs=volume_dirs, jobs=jobs))


__all__ = ["Target", "TraceOptions", "TraceRunner", "load_targets", "read_inputs", "trace_files", "trace_pod",
           "trace_texts", "trace_verified"]
