"""The kubelet's pod loop on one machine: sandbox, init containers in order, app containers together,
restarts with back-off, graceful stop. One process owns a pod (foreground ``run`` or the ``apply``
supervisor) and is the only writer of its ``pod.json``.

What a container goes through (``PodRunner._start``):

1. runAsNonRoot verification (``ResolvedContainer.run_as_non_root``): a failure leaves it waiting with
   ``CreateContainerConfigError`` and the kubelet's message; it is never started.
2. env from ConfigMaps/Secrets/fields (a missing non-optional source: ``CreateContainerConfigError``);
   identity/spec errors: ``CreateContainerError``.
3. overlay rootfs, volume mounts, ``config.json`` from :func:`podsec.oci.build_container_spec`, then
   ``<runtime> run`` with stdout and stderr on the log file; a runtime failure to start is
   ``RunContainerError`` with the runtime's message.

Restart policies follow the kubelet: Never, OnFailure (non-zero exits), Always; a restart waits for the
kubelet back-off (10s doubling up to 300s after the second exit; ``PODSEC_BACKOFF_SECONDS`` sets the
initial value, the cap stays 30×) and the container shows ``CrashLoopBackOff`` meanwhile.
Not modelled: probes (a running container is ready), lifecycle hooks, sidecar init containers
(``restartPolicy: Always`` on an init container), image pulls (images must be in the store).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podsec.errors import PodsecError, RuntimeFailure
from podsec.plan import POD_DIR, ROOTFS, SANDBOX_NS, ContainerRun, realize
from podsec.resolve import format_pod, resolve_pod
from podsec.runtime import sandbox, state
from podsec.runtime.backoff import Backoff
from podsec.runtime.cleanup import CleanupReport, release_mounts, remove_dir
from podsec.runtime.context import PodContext, node_of, open_pod
from podsec.runtime.logs import LogStreamer, wait_readable
from podsec.runtime.ociruntime import OCIRuntime, signal_pid
from podsec.runtime.records import PodExists, create_pod_dir, grace_period, new_record
from podsec.runtime.state import ContainerStatus, PodPaths, PodRecord
from podsec.runtime.status import go_duration, pod_phase
from podsec.runtime.volumes import NoVolumes, PodVolumesLike
from podsec.runtime.volumes import prepare as prepare_volumes

if TYPE_CHECKING:
    pass

TERMINATION_MESSAGE_LIMIT = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
LOG_POLL = 0.01
LOG_POLL_IDLE = 0.05

CONFIG_ERROR = "CreateContainerConfigError"
CREATE_ERROR = "CreateContainerError"
RUN_ERROR = "RunContainerError"


_TRACE = os.environ.get("PODSEC_TRACE", "")


def trace(message: str) -> None:
    """``PODSEC_TRACE=1``: timestamps of the loop's steps on stderr (where a slow run spends its time);
    ``PODSEC_TRACE=<epoch seconds>`` (a caller's ``time.time()`` at spawn) counts from then instead."""
    if _TRACE:
        t0 = float(_TRACE) if _TRACE.replace(".", "", 1).isdigit() and float(_TRACE) > 1e9 else _T0
        print(f"podsec-trace {1000 * (time.time() - t0):8.1f}ms {message}", file=sys.stderr, flush=True)


_T0 = time.time()


class _StartError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PodRunner:
    """Runs one pod to completion (or until stopped), keeping ``pod.json`` current."""

    def __init__(self, paths: PodPaths, record: PodRecord, *, store: Any = None, sink: LogStreamer | None = None,
                 timeout: float | None = None, remove: bool = False) -> None:
        self.paths = paths
        self.rec = record
        self.store = store
        self.runtime = OCIRuntime(record.runtime)
        self._ctx: PodContext | None = None
        self.remove = remove
        self.abandoned = False
        self.sink = sink
        self.deadline = time.monotonic() + timeout if timeout else None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_offsets: dict[str, int] = {}
        self.stuck: set[str] = set()
        self.sandbox: sandbox.Sandbox | None = None
        self.ns_dir: str | None = None
        """Where the pod's namespace files are, once the sandbox is up (pinned or the pause process's)."""
        self.volumes: PodVolumesLike = NoVolumes()
        self.backoff = Backoff.from_env()
        self.stop_reason: str | None = None
        self.policy = str(self.rec.spec.get("restartPolicy") or "Always")
        self.pod_label = format_pod(self.rec.metadata)
        self.prepared: dict[str, Any] = {}
        self.dirty = False
        self._quiet = 0
        self.report = CleanupReport()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def ctx(self) -> PodContext:
        """The pod as resolved against its images; opened while the sandbox is being created."""
        if self._ctx is None:
            self._ctx = open_pod(self.paths, self.rec, self.store)
            self._announce_puid(self._ctx)
            self._warn_host_changes(self._ctx)
        return self._ctx

    def _warn_host_changes(self, ctx: PodContext) -> None:
        """A capability whose effect the kernel does not namespace (SYS_TIME sets this machine's clock):
        one line on stderr per such container before any starts (``run``), and a Warning event."""
        from podsec.oci.hostcaps import warning_line

        for c in ctx.resolved.containers:
            line = warning_line(ctx.resolved, c)
            if line is None:
                continue
            self.rec.event("Warning", "HostCapabilities", line)
            for ev in self.rec.events:
                if ev.reason == "HostCapabilities" and ev.message == line:
                    ev.source = "podsec"  # podsec's reading of the spec, not something the kubelet says
            if self.sink is not None:
                print(f"podsec: warning: {line}", file=sys.stderr, flush=True)
            self.save()

    def _announce_puid(self, ctx: PodContext) -> None:
        """PUID/PGID (linuxserver, s6-overlay) images: an event per container for ``describe``, and in the
        foreground (``run``) one note per container on stderr, before any container starts.

        Every pod pays for this, so a spec-only pre-check comes first: the verdict module and the image
        rootfs reads are for pods with a container that may be a PUID/PGID one."""
        from podsec.puid_spec import pod_has_candidate

        sources = self._env_sources(ctx)
        if not pod_has_candidate(self.rec.spec, ctx.images, sources):
            return
        from podsec.image.s6 import store_facts
        from podsec.puid import event, note, pod_verdicts

        verdicts = pod_verdicts(self.rec.spec, ctx.resolved, ctx.images, store_facts(ctx.store), sources=sources)
        for v in verdicts.values():
            type_, reason, message = event(v)
            self.rec.event(type_, reason, message)
            for ev in self.rec.events:
                if ev.reason == reason and ev.message == message:
                    ev.source = "podsec"  # podsec's reading of the image, not something the kubelet says
            if self.sink is not None:
                print(note(v), file=sys.stderr, flush=True)
        if verdicts:
            self.save()

    def _env_sources(self, ctx: PodContext) -> Callable[[str, str], Mapping[str, str] | None]:
        """The ConfigMaps/Secrets given with the pod are all the kubelet would find here: one missing is
        known to be absent (``{}``), as :func:`podsec.plan.process.kubelet_env` treats it."""
        return ctx.objects.env_sources(self.rec.namespace, missing_is_absent=True)

    # -- hooks for subclasses (podsec trace); they must not raise -------------------------------
    def before_start(self, c: ContainerStatus, spec: dict) -> None:
        """A container's rootfs, mounts and ``config.json`` (``spec``) are ready; its runtime starts next."""

    def before_stop(self) -> None:
        """The pod is stopping: what still runs is about to get SIGTERM."""

    def after_stop(self) -> None:
        """Every container has stopped; overlays, upper dirs and volumes still exist (released next)."""

    # -- bookkeeping ---------------------------------------------------------------------------
    def save(self) -> None:
        """Mark the record changed; it is written before the loop blocks (one fsync per batch of changes)."""
        self.dirty = True

    def flush(self) -> None:
        if self.dirty:
            self.rec.phase = pod_phase(self.rec)
            state.save(self.paths, self.rec)
            self.dirty = False

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGCHLD:
            return
        if self.stop_reason is None:
            self.stop_reason = "interrupt" if signum == signal.SIGINT else "delete"

    def _install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _wait(self, timeout: float | None) -> None:
        """Block until a signal (SIGCHLD: a runtime exited) or ``timeout``; log copying polls every
        ``LOG_POLL`` seconds, ``LOG_POLL_IDLE`` once the containers have been quiet for a second
        (inotify would do, but closing an inotify fd costs ~10ms on the way out)."""
        self.flush()
        if self.sink is not None:
            poll = LOG_POLL if self._quiet < 100 else LOG_POLL_IDLE  # slower after ~1s without output
            timeout = poll if timeout is None else min(timeout, poll)
        if self.deadline is not None:
            left = max(self.deadline - time.monotonic(), 0.0)
            timeout = left if timeout is None else min(timeout, left)
        wait_readable([self._wake_r], timeout)
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 512):
                pass
        if self.sink is not None:
            for name in self.procs:
                if name not in self.sink.enabled and (self.paths.container_dir(name) / "bundle" / "pid").exists():
                    self.sink.enabled.add(name)
            self._quiet = 0 if self.sink.pump() else self._quiet + 1

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        """Run the pod until it is finished, stopped or deleted; always leaves nothing running."""
        self._install_signals()
        if self.rec.owner_pid != os.getpid() or self.rec.owner_start is None:
            self.rec.owner_pid = os.getpid()
            self.rec.owner_start = state.process_start_time(os.getpid())
            self.save()
        self.rec.started = self.rec.started or time.time()
        self.flush()
        try:
            if self._start_sandbox():
                self._loop()
        except PodsecError as e:
            self.rec.message = e.message
            raise
        finally:
            self._finish()

    def _loop(self) -> None:
        while True:
            self._reap()
            if self.stop_reason is not None:
                return
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.stop_reason = "timeout"
                return
            active, wake = self._progress()
            if not active and not self.procs:
                return
            timeout = None if wake is None else max(wake - time.time(), 0.0)
            self._wait(timeout)

    def _reap(self) -> None:
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                del self.procs[name]
                self._on_exit(self.rec.container(name), code)
        if self.sandbox is not None and self.sandbox.proc.poll() is not None and self.stop_reason is None:
            self.rec.message = "the pod sandbox exited unexpectedly"
            self.rec.event("Warning", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            self.stop_reason = "sandbox"

    def _progress(self) -> tuple[bool, float | None]:
        """Start what is due; returns (something is running or scheduled, earliest wake-up time)."""
        now = time.time()
        for c in self.rec.init_containers:
            if c.terminated_ok:
                continue
            if c.state == "running":
                return True, None
            if c.name in self.stuck:
                return False, None
            if c.state == "terminated" and self.policy == "Never":
                return False, None
            wake = self._start_or_wait(c, now)
            return c.name not in self.stuck, wake
        active = False
        wake: float | None = None
        for c in self.rec.app_containers:
            if c.state == "running":
                active = True
                continue
            if c.name in self.stuck:
                continue
            if c.state == "terminated" and not self._should_restart(c):
                continue
            when = self._start_or_wait(c, now)
            active = active or c.name not in self.stuck
            if when is not None:
                wake = when if wake is None else min(wake, when)
        return active, wake

    def _should_restart(self, c: ContainerStatus) -> bool:
        if self.policy == "Always":
            return True
        return self.policy == "OnFailure" and c.exit_code != 0

    def _previous_finish(self, c: ContainerStatus) -> float | None:
        if c.state == "terminated":
            return c.finished_at
        if c.last_state is not None:
            return c.last_state.get("finished_at")
        return None

    def _start_or_wait(self, c: ContainerStatus, now: float) -> float | None:
        """The kubelet's ``doBackOff`` then start: returns the time to wake up, or None once started."""
        finished = self._previous_finish(c)
        if finished is not None:
            until = self.backoff.wait_until(c.name, finished, now)
            if until is not None:
                if c.reason != "CrashLoopBackOff" or c.state != "waiting":
                    self._to_waiting(c, "CrashLoopBackOff", (
                        f"back-off {go_duration(self.backoff.current(c.name))} restarting failed "
                        f"container={c.name} pod={self.pod_label}"
                    ))
                    self.rec.event(
                        "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod {self.pod_label}"
                    )
                    self.save()
                return until
            self.backoff.next(c.name, finished, now)
            if c.state == "terminated":
                self._to_waiting(c, "", "")
            c.restart_count += 1
        self._start(c)
        if c.state == "waiting" and c.name not in self.stuck:
            return self._start_or_wait(c, time.time())  # the start failed: back off (the entry exists now)
        return None

    def _to_waiting(self, c: ContainerStatus, reason: str, message: str) -> None:
        if c.state == "terminated":
            c.last_state = {
                "exit_code": c.exit_code,
                "signal": c.signal,
                "reason": c.reason,
                "message": c.message,
                "started_at": c.started_at,
                "finished_at": c.finished_at,
            }
        c.state, c.reason, c.message = "waiting", reason, message
        c.exit_code = c.signal = c.started_at = c.finished_at = None
        c.ready = False

    # -- one container -------------------------------------------------------------------------
    def _start(self, c: ContainerStatus) -> None:
        try:
            self._create(c)
        except _StartError as e:
            self._to_waiting(c, e.reason, e.message)
            self.rec.event("Warning", "Failed", f"Error: {e.message}")
            if e.reason != RUN_ERROR or self.policy == "Never":
                self.stuck.add(c.name)
            else:  # a failed start counts as a failed run for the back-off
                c.last_state = {"exit_code": 128, "signal": None, "reason": "StartError", "message": e.message,
                                "started_at": None, "finished_at": time.time()}
            self.save()
            return
        c.state, c.reason, c.message = "running", "", ""
        c.started_at = time.time()
        c.ready = c.kind != "init"  # an init container is ready once it has completed (no probes here)
        self.rec.event("Normal", "Pulled", f'Container image "{c.image}" already present on machine')
        self.rec.event("Normal", "Created", f"Created container {c.name}")
        self.rec.event("Normal", "Started", f"Started container {c.name}")
        self.save()

    def _prepare(self, c: ContainerStatus) -> tuple[ContainerRun, Path]:
        """Everything before the runtime call that does not need the sandbox: the plan's verdict, subPath
        binds, the overlay rootfs, a fresh termination-log file."""
        from podsec.runtime.rootfs import mount_overlay

        ctx = self.ctx
        run = ctx.plan.containers[c.name]
        if run.error is not None:
            raise _StartError(*run.error)
        for sp in run.subpaths:
            try:
                self.volumes.bind_sub_path(sp.volume, sp.sub_path, c.name, sp.index)
            except PodsecError as e:
                raise _StartError(CONFIG_ERROR, e.message) from None
        cdir = self.paths.container_dir(c.name)
        try:
            rootfs = mount_overlay(Path(ctx.store.rootfs(run.image)), cdir)
        except PodsecError as e:
            raise _StartError(CREATE_ERROR, e.message) from None
        if run.termination_log:
            path = cdir / "termination-log"
            path.write_bytes(b"")
            os.chmod(path, 0o666)
        return run, rootfs

    def _prepare_ahead(self) -> None:
        """While the sandbox is being created: prepare the containers that will start first."""
        first = [c for c in self.rec.init_containers[:1]] or self.rec.app_containers
        for c in first:
            try:
                self.prepared[c.name] = self._prepare(c)
            except _StartError as e:
                self.prepared[c.name] = e

    def _create(self, c: ContainerStatus) -> None:
        ahead = self.prepared.pop(c.name, None)
        if isinstance(ahead, _StartError):
            raise ahead
        run, rootfs = ahead if ahead is not None else self._prepare(c)
        assert run.config is not None and self.ns_dir is not None
        spec = realize(run.config, {ROOTFS: str(rootfs), POD_DIR: str(self.paths.dir), SANDBOX_NS: self.ns_dir})
        bundle = self.paths.container_dir(c.name) / "bundle"
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(spec))
        for name in ("pid", "runtime.log"):
            with contextlib.suppress(FileNotFoundError):
                (bundle / name).unlink()
        log = self.paths.log(c.name)
        if self.sink is not None:
            self.sink.enabled.discard(c.name)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            self.log_offsets[c.name] = os.fstat(fd).st_size
            self.before_start(c, spec)
            self.procs[c.name] = self.runtime.run(c.runtime_id, bundle, bundle / "pid", fd,
                                                      bundle / "runtime.log")
            trace(f"{c.name}: runtime started")
        except OSError as e:
            raise _StartError(RUN_ERROR, f"cannot run {self.runtime.name}: {e.strerror}") from None
        finally:
            os.close(fd)
        c.pid = None

    def pod_net_pid(self) -> int | None:
        """A process in the pod's network namespace: the pause process, else a running container's (the
        namespace itself is pinned by a mount, which ``/proc/PID/net`` cannot be read through)."""
        if self.sandbox is not None:
            return self.sandbox.pid
        for name in self.procs:
            pid = self._pid(self.rec.container(name))
            if pid is not None:
                return pid
        return None

    def _pid(self, c: ContainerStatus) -> int | None:
        if c.pid is None:
            with contextlib.suppress(OSError, ValueError):
                c.pid = int((self.paths.container_dir(c.name) / "bundle" / "pid").read_text())
        return c.pid

    def _on_exit(self, c: ContainerStatus, code: int) -> None:
        trace(f"{c.name}: exited {code}")
        bundle = self.paths.container_dir(c.name) / "bundle"
        error = self.runtime.start_error(bundle / "runtime.log")
        if error and not (bundle / "pid").exists():
            # The runtime printed its error into the container's log: roll that back.
            with contextlib.suppress(OSError):
                os.truncate(self.paths.log(c.name), self.log_offsets.get(c.name, 0))
            self._to_waiting(c, RUN_ERROR, error)
            self.rec.event("Warning", "Failed", f"Error: {error}")
            if self.policy == "Never":
                self.stuck.add(c.name)
            else:
                c.last_state = {"exit_code": 128, "signal": None, "reason": "StartError", "message": error,
                                "started_at": None, "finished_at": time.time()}
            self.save()
            return
        if self.sink is not None:
            self.sink.enabled.add(c.name)
        c.state = "terminated"
        c.exit_code = code
        c.reason = "Completed" if code == 0 else "Error"
        c.finished_at = time.time()
        c.ready = c.kind == "init" and code == 0
        c.pid = None
        c.message = self._termination_message(c, code)
        self.save()

    def _termination_message(self, c: ContainerStatus, code: int) -> str:
        """The termination-log file, or the log's tail for ``FallbackToLogsOnError`` after a failure."""
        with contextlib.suppress(OSError):
            data = (self.paths.container_dir(c.name) / "termination-log").read_bytes()[:TERMINATION_MESSAGE_LIMIT]
            if data:
                return data.decode(errors="replace")
        cspec = self.ctx.container_spec(c.name)
        if code != 0 and cspec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                tail = self.paths.log(c.name).read_bytes()[-FALLBACK_LOG_BYTES:]
                return b"\n".join(tail.splitlines()[-FALLBACK_LOG_LINES:]).decode(errors="replace")
        return ""

    # -- sandbox -------------------------------------------------------------------------------
    def _sandbox_failed(self, message: str) -> None:
        self.rec.sandbox_error = message
        self.rec.event(
            "Warning", "FailedCreatePodSandBox",
            f"Failed to create pod sandbox: rpc error: code = Unknown desc = {message}",
        )
        self.save()

    def _start_sandbox(self) -> bool:
        """RunPodSandbox. The sandbox only needs the pod-level settings, so it is launched before the
        images are even looked at; opening them and planning the containers overlaps its creation."""
        from podsec.plan import plan_sandbox

        trace("sandbox: starting")
        pod = resolve_pod(self.rec.metadata, self.rec.spec, None)
        node = node_of(self.paths, self.rec)
        if not self.rec.host_ip:
            self.rec.host_ip = node.ip
        planned = plan_sandbox(pod, self.rec.metadata, self.rec.spec, node)
        if planned.error:
            self._sandbox_failed(planned.error)
            return False
        proc = None
        try:
            sandbox.write_pod_files(self.paths, planned.files)
            if planned.shm:
                sandbox.mount_shm(self.paths)
            if planned.pause:
                rootfs = sandbox.pause_rootfs(self.paths.state_root)
                spec = realize(planned.config, {ROOTFS: str(rootfs), POD_DIR: str(self.paths.dir)})
                proc = sandbox.launch(self.runtime, self.paths, self.rec.sandbox_id, spec)
                trace("sandbox: runtime started")
            else:
                from podsec.runtime.pinns import pin_namespaces

                p = planned.pinned
                pin_namespaces(self.paths.dir / "ns", net=p["net"], ipc=p["ipc"], uts=p["uts"],
                               host_pid="pid" in p, hostname=planned.hostname, sysctls=planned.sysctls)
                trace("sandbox: namespaces pinned")
        except PodsecError as e:
            self._sandbox_failed(e.message)
            return False
        try:
            try:
                if self._ctx is None:
                    self._ctx = open_pod(self.paths, self.rec, self.store, node, planned)
                    self._announce_puid(self._ctx)
                    self._warn_host_changes(self._ctx)
                ctx = self._ctx
            except PodsecError:
                self.abandoned = True  # e.g. an image that is not in the store: the pod never existed
                raise
            if ctx.plan.volume_error is not None:
                raise ctx.plan.volume_error
            self.volumes = prepare_volumes(ctx.resolved, self.rec.spec, self.rec.metadata, self.paths.dir,
                                           ctx.plan.volumes)
            self._prepare_ahead()
            trace("containers prepared")
        except PodsecError as e:
            if proc is not None:
                with contextlib.suppress(PodsecError):
                    self.sandbox = sandbox.wait_started(self.runtime, self.paths, self.rec.sandbox_id, proc)
            if self.abandoned:
                raise
            self.rec.message = e.message
            self.rec.event("Warning", "FailedMount", f"Unable to attach or mount volumes: {e.message}")
            self.save()
            return False
        if proc is None:
            self.ns_dir = str(self.paths.dir / "ns")
            return True
        try:
            self.sandbox = sandbox.wait_started(self.runtime, self.paths, self.rec.sandbox_id, proc)
            trace(f"sandbox pid {self.sandbox.pid}")
            if not pod.host_network:
                sandbox.loopback_up(self.sandbox.pid)
        except PodsecError as e:
            self._sandbox_failed(e.message)
            return False
        self.rec.sandbox_pid = self.sandbox.pid
        self.ns_dir = f"/proc/{self.sandbox.pid}/ns"
        return True

    # -- stopping ------------------------------------------------------------------------------
    def _stop_containers(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after the grace period (the kubelet's killContainer)."""
        self._reap()
        if not self.procs:
            return
        for name in self.procs:
            c = self.rec.container(name)
            self.rec.event("Normal", "Killing", f"Stopping container {name}")
            if not signal_pid(self._pid(c), signal.SIGTERM):
                self.runtime.kill(c.runtime_id, signal.SIGTERM)
        self.save()
        end = time.monotonic() + grace
        while self.procs and time.monotonic() < end:
            self._wait(max(end - time.monotonic(), 0.0))
            self._reap_quiet()
        for name in list(self.procs):
            c = self.rec.container(name)
            if not signal_pid(self._pid(c), signal.SIGKILL):
                self.runtime.kill(c.runtime_id, signal.SIGKILL)
        for proc in list(self.procs.values()):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap_quiet()

    def _reap_quiet(self) -> None:
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                del self.procs[name]
                self._on_exit(self.rec.container(name), code)

    def _kill_sandbox(self) -> sandbox.Sandbox | None:
        """SIGKILL the pause process; its runtime reaps it and deletes the container (see _reap_sandbox)."""
        sbx, self.sandbox = self.sandbox, None
        if sbx is not None and sbx.proc.poll() is None:
            signal_pid(sbx.pid, signal.SIGKILL)
        return sbx

    def _reap_sandbox(self, sbx: sandbox.Sandbox | None) -> None:
        if sbx is None:
            return
        try:
            sbx.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sbx.proc.kill()
            sbx.proc.wait()
            self.runtime.delete(sbx.cid)

    def _finish(self) -> None:
        """Stop whatever runs and release every mount; remove the pod directory when the pod is deleted
        (or ``remove`` was asked), otherwise keep the record and logs for ``get``/``describe``/``logs``."""
        trace(f"finish ({self.stop_reason or 'done'})")
        deleting = self.stop_reason in ("delete", "interrupt") or self.paths.delete_request.exists()
        remove = deleting or self.remove or self.abandoned
        report = CleanupReport()
        sbx = None
        try:
            if deleting:
                self.rec.deleting = True
                self.rec.deletion_time = time.time()
                self.save()
            self.before_stop()
            self._stop_containers(grace_period(self.rec, self.paths) if self.procs else 0)
            sbx = self._kill_sandbox()
            self.after_stop()
        finally:
            signal.set_wakeup_fd(-1)
            if self.sink is not None:
                self.sink.finish()
            try:
                self.volumes.teardown()
            except Exception as e:
                report.problems.append(f"volume teardown: {e}")
            release_mounts(self.paths.dir, report)
            trace("mounts released")
            self._reap_sandbox(sbx)
            trace("sandbox reaped")
            if remove:
                remove_dir(self.paths.dir, report)
            else:
                for c in self.rec.containers:
                    for sub in ("upper", "work", "rootfs"):
                        path = self.paths.container_dir(c.name) / sub
                        if path.exists() and not os.path.ismount(path):
                            shutil.rmtree(path, ignore_errors=True)
                self.rec.released = True
                if report.problems:
                    self.rec.message = "; ".join(report.problems)
                self.save()
                with contextlib.suppress(OSError):
                    self.flush()
            self.report = report
            os.close(self._wake_r)
            os.close(self._wake_w)


__all__ = ["Backoff", "PodContext", "PodExists", "PodRunner", "RuntimeFailure", "create_pod_dir", "grace_period",
           "new_record", "open_pod", "trace"]
