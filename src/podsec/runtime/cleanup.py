"""Removing what a pod left on the machine: runtime containers, mounts, cgroups, directories.

Used three ways: by the pod's owner when it stops the pod (its own processes are already reaped),
by ``podsec delete`` when the owner is gone, and by ``podsec gc`` for pods whose owner died (a killed
``podsec run``) and for ``podsec-`` containers whose pod directory no longer exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from podsec.runtime import state
from podsec.runtime.ociruntime import RUNTIMES, OCIRuntime
from podsec.runtime.state import ID_PREFIX, PodPaths, PodRecord
from podsec.volumes.mounts import mounts_under, unmount_all_under

CGROUP_ROOT = Path("/sys/fs/cgroup")
STARTING_GRACE = 30.0


@dataclass(slots=True)
class CleanupReport:
    """What was removed (for ``podsec gc``'s output) and what could not be."""

    containers: list[str] = field(default_factory=list)
    mounts: int = 0
    cgroups: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def merge(self, other: CleanupReport) -> None:
        self.containers += other.containers
        self.mounts += other.mounts
        self.cgroups += other.cgroups
        self.dirs += other.dirs
        self.problems += other.problems


def _runtimes(preferred: str | None = None) -> list[OCIRuntime]:
    """Every installed runtime (a pod may have been started with either)."""
    out: list[OCIRuntime] = []
    names = [preferred] if preferred else []
    names += [n for n in RUNTIMES if n != preferred]
    for name in names:
        with contextlib.suppress(Exception):
            out.append(OCIRuntime(name))
    return out


def _bundle_of(entry: dict) -> str:
    return str(entry.get("bundle") or "")


def remove_containers(ids_prefix: str, runtimes: list[OCIRuntime], report: CleanupReport,
                      *, only_orphans_under: Path | None = None) -> None:
    """``kill -9`` + ``delete --force`` every runtime container whose id starts with ``ids_prefix``.

    With ``only_orphans_under`` (gc), only containers whose bundle is below that directory and no
    longer exists are touched: another state directory's live pods are left alone.
    """
    for rt in runtimes:
        for entry in rt.list():
            cid = str(entry.get("id") or "")
            if not cid.startswith(ids_prefix):
                continue
            if only_orphans_under is not None:
                bundle = _bundle_of(entry)
                if os.path.exists(bundle) or not bundle.startswith(str(only_orphans_under) + "/"):
                    continue
            pid = entry.get("pid")
            if isinstance(pid, int) and pid > 0 and entry.get("status") in ("running", "paused", "created"):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if rt.delete(cid, force=True) or rt.state(cid) is None:
                report.containers.append(f"{rt.name}:{cid}")
            else:
                report.problems.append(f"{rt.name} delete {cid} failed")


def _own_cgroup_paths() -> dict[str, str]:
    """Controller → this process's cgroup path (runc/crun put containers beside us by default)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for ctrl in controllers.split(",") if controllers else ["unified"]:
                out[ctrl.removeprefix("name=")] = path
    return out


def remove_cgroups(id_prefix: str, report: CleanupReport, *, keep: Collection[str] = (),
                   min_age: float = 0.0) -> None:
    """rmdir leftover cgroups named ``<id_prefix>…`` (a runtime killed between create and delete).

    Looks at the root of every mounted hierarchy and beside our own cgroup; processes still in one
    are killed first (they belong to a dead pod). ``keep`` names live containers; cgroups younger
    than ``min_age`` seconds are left alone (a container being created right now).
    """
    if not CGROUP_ROOT.is_dir():
        return
    own = _own_cgroup_paths()
    candidates: set[Path] = set()
    with contextlib.suppress(OSError):
        for hierarchy in CGROUP_ROOT.iterdir():
            if not hierarchy.is_dir():
                continue
            bases = {hierarchy}
            rel = own.get(hierarchy.name) or (own.get("unified") if hierarchy.name == "unified" else None)
            if rel and rel != "/":
                bases.add(hierarchy / rel.lstrip("/"))
            for base in bases:
                with contextlib.suppress(OSError):
                    for child in base.iterdir():
                        if not (child.is_dir() and child.name.startswith(id_prefix)) or child.name in keep:
                            continue
                        if min_age and time.time() - _mtime(child) < min_age:
                            continue
                        candidates.add(child)
    for cg in sorted(candidates, key=lambda p: len(p.parts), reverse=True):
        for sub in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir_cgroup(sub, report)
        _rmdir_cgroup(cg, report)


def _rmdir_cgroup(cg: Path, report: CleanupReport) -> None:
    for attempt in range(50):
        try:
            cg.rmdir()
            report.cgroups.append(str(cg))
            return
        except FileNotFoundError:
            return
        except OSError:
            with contextlib.suppress(OSError):
                for pid in (cg / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.01 * (attempt + 1) if attempt < 10 else 0.1)
    report.problems.append(f"cgroup {cg} is still busy")


def release_mounts(pod_dir: Path, report: CleanupReport) -> None:
    """Unmount everything below the pod directory, deepest first (overlays, shm, volumes, binds)."""
    from podsec.runtime.volumes import teardown_dir

    before = len(_mounts_under(pod_dir))
    teardown_dir(pod_dir, report.problems)
    try:
        unmount_all_under(pod_dir)
    except OSError as e:
        report.problems.append(f"{e.filename}: {e.strerror}")
    report.mounts += before - len(_mounts_under(pod_dir))


def _mounts_under(path: Path) -> list[str]:
    return [m.mount_point for m in mounts_under(path)]


def remove_dir(pod_dir: Path, report: CleanupReport) -> None:
    """Delete the pod directory, never crossing into something still mounted."""
    if not pod_dir.exists():
        return
    leftover = _mounts_under(pod_dir)
    if leftover:
        report.problems.append(f"not removing {pod_dir}: still mounted: {', '.join(leftover)}")
        return
    shutil.rmtree(pod_dir, ignore_errors=True)
    if pod_dir.exists():
        report.problems.append(f"could not remove {pod_dir}")
    else:
        report.dirs.append(str(pod_dir))


def cleanup_pod(paths: PodPaths, record: PodRecord | None, *, remove: bool = True) -> CleanupReport:
    """Everything for one pod whose owner is gone: containers, sandbox, mounts, cgroups, directory."""
    report = CleanupReport()
    if record is not None:
        prefix = state.runtime_id(record.uid)
        runtimes = _runtimes(record.runtime)
        remove_containers(prefix, runtimes, report)
        remove_cgroups(prefix, report)
    release_mounts(paths.dir, report)
    if remove:
        remove_dir(paths.dir, report)
    return report


def collect(state_root: Path) -> CleanupReport:
    """``podsec gc``: clean pods whose owner died, and runtime containers whose pod directory is gone.

    A pod whose owner finished it properly (``released``) is kept for ``get``/``logs`` until deleted.
    """
    report = CleanupReport()
    for pod_dir in state.list_pod_dirs(state_root):
        paths = PodPaths.from_dir(pod_dir)
        record = state.load(paths)
        if record is not None and (record.released or state.owner_alive(record)):
            continue
        if (record is None or record.owner_pid is None) and time.time() - _mtime(pod_dir) < STARTING_GRACE:
            continue  # being created right now: the supervisor has not registered yet
        report.merge(cleanup_pod(paths, record))
    state_root = Path(os.path.realpath(state_root))
    runtimes = _runtimes()
    remove_containers(ID_PREFIX, runtimes, report, only_orphans_under=state_root)
    live = {str(e.get("id")) for rt in runtimes for e in rt.list()}
    remove_cgroups(ID_PREFIX, report, keep=live, min_age=10.0)
    return report


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
