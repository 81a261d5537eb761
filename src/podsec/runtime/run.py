"""A pod's way from the files to its plan, as ``run`` takes it; ``explain -o oci`` stops at the plan.

Everything a pod goes through before its first container starts, in this order:

1. load the Pod (with its ConfigMaps/Secrets) — :mod:`podsec.runtime.admission`;
2. admit it (:mod:`podsec.admit`, the one admission step: decode, disabled gated fields dropped and said
   once on stderr, the API server's validation, defaults), then the node's image check (``run`` checks while
   the sandbox starts);
3. plan it — :func:`podsec.plan.plan_pod` (``explain -o oci`` stops here and prints the plan);
4. execute the plan — :class:`podsec.runtime.lifecycle.PodRunner`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import InputError, NotFound, RuntimeFailure
from podsec.runtime import admission

Warn = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def warn_dropped(req: admission.PodRequest, warn: Warn = _stderr) -> None:
    """Say once which fields the admission dropped (:mod:`podsec.admit`: a stock cluster would ignore, or
    refuse, what the manifest asks for)."""
    from podsec import features

    dropped = req.dropped
    for gate in dict.fromkeys(f.gate for f in dropped):
        message = features.ignored_message(gate, [f for f in dropped if f.gate == gate])
        warn(f"podsec: warning: pod/{req.name}: {message}")


# -- explain -o oci --------------------------------------------------------------------------------


def plan_files(files: tuple[str, ...] | list[str], *, root: str, state: str, gates: Any,
               namespace: str | None = None, warn: Warn = _stderr, field_validation: str = "strict",
               ) -> list[tuple[str, Any]]:
    """(pod name, :class:`podsec.plan.PodPlan`) of every Pod in ``files``, admitted as ``run`` admits it
    and planned against the image store — nothing runs. The pod's uid is :data:`podsec.plan.POD_UID`."""
    from podsec.image.store import ImageStore
    from podsec.plan import POD_UID, plan_pod
    from podsec.plan.node import node_facts
    from podsec.resolve import resolve_pod

    reqs = admission.load_pods(files, namespace, feature_gates=gates, field_validation=field_validation)
    if not reqs:
        raise InputError("no Pod in the files", file=", ".join(files))
    store = ImageStore(Path(root))
    node = node_facts(Path(state))
    out: list[tuple[str, Any]] = []
    for req in reqs:
        warn_dropped(req, warn)
        admission.check_images(req, store)
        meta = dict(req.metadata)
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", POD_UID)
        by_ref: dict[str, Any] = {}
        images: dict[str, Any] = {}
        for key in ("initContainers", "containers"):
            for c in req.spec.get(key) or ():
                ref = c.get("image") if isinstance(c, dict) else None
                if isinstance(ref, str) and ref:
                    by_ref.setdefault(ref, store.info(ref))
                    images[str(c.get("name"))] = by_ref[ref]
        pod = resolve_pod(meta, req.spec, by_ref.get)
        plan = plan_pod(pod, meta, req.spec, images, req.objects, node, gates=gates.enabled)
        if plan.sandbox.error:
            warn(f"podsec: warning: pod/{req.name}: Failed to create pod sandbox: {plan.sandbox.error}")
        if plan.volume_error is not None:
            warn(f"podsec: warning: pod/{req.name}: Unable to attach or mount volumes: {plan.volume_error.message}")
        for c in plan.containers.values():
            if c.error is not None:
                warn(f'podsec: warning: pod/{req.name}: container "{c.name}" will not start: '
                     f"{c.error[0]}: {c.error[1]}")
        out.append((req.name, plan))
    return out


# -- run and apply ---------------------------------------------------------------------------------

Say = Warn


def new_record(req: Any, root: str, runtime: str, dirs: dict[str, str], mode: str, gates: Any = None) -> Any:
    from podsec.runtime.records import new_record as make

    return make(req.metadata, req.spec, req.objects, image_root=os.path.abspath(root), runtime=runtime,
                volume_dirs=dirs, mode=mode, node_name=os.uname().nodename,
                feature_gates=gates.as_dict() if gates is not None else None)


def pod_paths(state_dir: str, namespace: str, name: str) -> Any:
    """Where the pod lives; a name that is not a valid object name is never a path (NotFound)."""
    from podsec.admit import safe_pod_name
    from podsec.runtime.state import PodPaths

    if not safe_pod_name(namespace, name):  # never a path outside the state dir
        raise NotFound(f'pods "{name}" not found')
    return PodPaths(state_dir, namespace, name)


def enabled_gates(gates: Any) -> list[str]:
    """The gates in force, sorted, from ``--feature-gates`` or a pod record's ``{name: bool}``: they change
    how the pod runs (fsUser, volume file owners), so ``apply`` counts them as part of the pod."""
    from podsec import features

    return sorted(features.gates_from(gates).enabled_names)


def run(files: tuple[str, ...] | list[str], *, root: str, state_dir: str, runtime: str, gates: Any,
        dirs: dict[str, str], remove: bool = False, timeout: float | None = None, namespace: str | None = None,
        field_validation: str = "strict", err: Say = _stderr) -> int:
    """``podsec run``: the pod (or the first pod of a workload; a Job as its controller retries it) in the
    foreground, its output on stdout; returns the exit code (the app containers', 124, 130, 1)."""
    from podsec.runtime import lifecycle

    lifecycle.trace("run: imported")
    req = admission.single_pod(files, namespace, feature_gates=gates, field_validation=field_validation)
    ctl = req.controller
    for note in ctl.notes if ctl is not None else ():
        err(f"podsec: {note}")
    warn_dropped(req, err)  # the images are checked while the sandbox starts
    lifecycle.trace("run: admitted")
    job = ctl.job if ctl is not None else None
    if job is None:
        code = run_pod(req, root, state_dir, runtime, dirs, gates, remove, timeout, err=err)[0]
    else:
        code = run_job(req, root, state_dir, runtime, dirs, gates, remove, timeout, err=err)
    return code


def run_pod(req: Any, root: str, state_dir: str, runtime: str, dirs: dict[str, str], gates: Any, remove: bool,
            timeout: float | None, backoff_limit: int | None = None, *, err: Say = _stderr,
            ) -> tuple[int, str | None, Any]:
    """Run one pod in the foreground and say how it ended: (exit code, why the runner stopped, record)."""
    from podsec.runtime import lifecycle, state
    from podsec.runtime.cleanup import cleanup_pod
    from podsec.runtime.logs import LogStreamer
    from podsec.runtime.status import exit_code_of

    record = new_record(req, root, runtime, dirs, "foreground", gates)
    if req.controller is not None:
        record.workload = req.controller.workload
    record.owner_pid = os.getpid()
    record.owner_start = state.process_start_time(record.owner_pid)
    paths = pod_paths(state_dir, record.namespace, record.name)
    lifecycle.create_pod_dir(paths, record)
    names = [c.name for c in record.containers]
    sink = LogStreamer({n: paths.log(n) for n in names}, sys.stdout.buffer, prefix=len(names) > 1)
    if backoff_limit is None:
        runner = lifecycle.PodRunner(paths, record, sink=sink, timeout=timeout, remove=remove)
    else:
        from podsec.runtime.jobs import JobPodRunner

        runner = JobPodRunner(paths, record, sink=sink, timeout=timeout, remove=remove, backoff_limit=backoff_limit)
    try:
        runner.run()
    finally:
        if runner.report.problems:
            cleanup_pod(paths, record, remove=remove or runner.abandoned)
    code, why = exit_code_of(record)
    if record.sandbox_error:
        err(f"# error: RunPodSandbox: UNKNOWN: {record.sandbox_error}")
    elif why:
        err(f"podsec: {why}")
    if runner.stop_reason == "timeout":
        code = 124
    elif runner.stop_reason == "interrupt":
        code = 130
    elif runner.stop_reason == "delete":
        err(f'podsec: pod "{record.name}" was deleted')
    elif runner.stop_reason == "sandbox":
        err(f"podsec: {record.message}")
        code = code or 1
    if runner.stop_reason == "timeout" and backoff_limit is None:
        err(f"podsec: pod {record.name} stopped after --timeout {timeout:g}s")
    return code, runner.stop_reason, record


def run_job(req: Any, root: str, state_dir: str, runtime: str, dirs: dict[str, str], gates: Any, remove: bool,
            timeout: float | None, *, err: Say = _stderr) -> int:
    """A Job as its controller runs it: a new pod after each failure until ``backoffLimit``, all within
    ``activeDeadlineSeconds``; ``--timeout`` bounds the whole run."""
    from podsec.runtime import jobs
    from podsec.runtime.lifecycle import Backoff

    ctl = req.controller
    job = ctl.job
    label = f"job.batch/{job.name}"
    start = time.monotonic()
    failures = 0
    on_failure = req.spec.get("restartPolicy") == "OnFailure"
    while True:
        left = [x - (time.monotonic() - start) for x in (timeout, job.active_deadline) if x is not None]
        budget = max(min(left), 0.001) if left else None
        by_deadline = job.active_deadline is not None and (
            timeout is None or job.active_deadline <= timeout)
        code, stop, record = run_pod(req, root, state_dir, runtime, dirs, gates, remove, budget,
                                      backoff_limit=job.backoff_limit if on_failure else None, err=err)
        if stop == "timeout":
            if by_deadline:
                reason, message = jobs.DEADLINE_EXCEEDED
                err(f"podsec: {label}: {reason}: {message} ({job.active_deadline:g}s)")
                return code if code not in (0, 124) else 1
            err(f"podsec: {label} stopped after --timeout {timeout:g}s")
            return 124
        if stop is not None or code == 0:
            return code
        failures += 1  # with OnFailure the pod fails only once its restarts reached the limit
        if on_failure or failures > job.backoff_limit:
            reason, message = jobs.BACKOFF_LIMIT_EXCEEDED
            err(f"podsec: {label}: {reason}: {message} (backoffLimit: {job.backoff_limit})")
            return code
        delay = jobs.retry_delay(failures, Backoff.from_env().initial)
        req.metadata = ctl.retry_metadata()
        err(f"podsec: {label}: pod {record.name} failed (exit code {code}); starting pod "
            f"{req.metadata['name']} in {delay:g}s (failure {failures}, backoffLimit: {job.backoff_limit})")
        if job.active_deadline is not None and time.monotonic() - start + delay >= job.active_deadline:
            time.sleep(max(job.active_deadline - (time.monotonic() - start), 0))
            reason, message = jobs.DEADLINE_EXCEEDED
            err(f"podsec: {label}: {reason}: {message} ({job.active_deadline:g}s)")
            return code
        time.sleep(delay)


def apply(files: tuple[str, ...] | list[str], *, root: str, state_dir: str, runtime: str, gates: Any,
          dirs: dict[str, str], namespace: str | None = None, field_validation: str = "strict",
          out: Say = print, err: Say = _stderr) -> None:
    """``podsec apply``: every pod (one per workload) started detached, a supervisor each; ``out`` says
    kubectl's ``<resource> created`` / ``unchanged`` line as it goes."""
    import subprocess

    from podsec.image.store import ImageStore
    from podsec.runtime import lifecycle, state

    reqs = admission.load_pods(files, namespace, feature_gates=gates, field_validation=field_validation)
    if not reqs:
        raise InputError("no Pod in the files", file=", ".join(files))
    store = ImageStore(Path(root))
    for req in reqs:
        warn_dropped(req, err)
        admission.check_images(req, store)
    for req in reqs:
        ctl = req.controller
        what = ctl.resource if ctl is not None else f"pod/{req.name}"
        for note in ctl.notes if ctl is not None else ():
            err(f"podsec: {note}")
        with state.apply_lock(state_dir):  # parallel applies of one pod: one creates, the rest see it
            if ctl is not None:
                found = state.workload_pods(state_dir, req.namespace, ctl.workload)
                existing = found[-1][1] if found else None
            else:
                existing = state.load(pod_paths(state_dir, req.namespace, req.name))
            if existing is not None:
                gates_then = enabled_gates(existing.feature_gates)
                gates_now = enabled_gates(gates)
                same = existing.manifest.get("spec") == req.spec and gates_then == gates_now
                if same and not existing.deleting:
                    out(f"{what} unchanged")
                    continue
                why = "" if gates_then == gates_now else (
                    f"with other feature gates (it has: {', '.join(gates_then) or 'none'}; "
                    f"asked for: {', '.join(gates_now) or 'none'})")
                if ctl is not None:
                    why = f"(made from {ctl.resource}, whose template differs) {why}".rstrip()
                raise lifecycle.PodExists(existing.namespace, existing.name, why)
            paths = pod_paths(state_dir, req.namespace, req.name)
            record = new_record(req, root, runtime, dirs, "detached", gates)
            if ctl is not None:
                record.workload = ctl.workload
            lifecycle.create_pod_dir(paths, record)
        with open(paths.supervisor_log, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "podsec.runtime.supervisor", str(paths.dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            )
        wait_registered(paths, proc)
        out(f"{what} created")


def wait_registered(paths: Any, proc: Any, timeout: float = 30.0) -> None:
    """Return once the supervisor owns the pod (so a ``delete`` right after knows whom to stop)."""
    from podsec.runtime import state

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rec = state.load(paths)
        if rec is not None and (rec.owner_pid == proc.pid or rec.released):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    rec = state.load(paths)
    if rec is None or not (rec.owner_pid == proc.pid or rec.released):
        raise RuntimeFailure(f"the pod supervisor did not start; see {paths.supervisor_log}")
