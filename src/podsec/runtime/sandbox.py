"""The pod sandbox: a "pause" container that owns the pod's namespaces, like containerd's RunPodSandbox.

* Its rootfs is a tiny read-only directory shared by every pod (``<state>/pause/rootfs``: a copy of the
  static ``/bin/busybox`` and ``/bin/sleep -> busybox``); it runs ``sleep infinity``. So ``ps`` in a pod
  with ``shareProcessNamespace`` shows PID 1 as ``sleep infinity`` where a cluster shows ``/pause``.
* Its spec comes from :func:`podsec.oci.build_sandbox_spec`: a new network namespace (only ``lo``), IPC,
  UTS (hostname = pod name) and PID namespaces, the host's for hostNetwork/hostIPC/hostPID; the pod's
  sysctls are written by the runtime inside it.
* Per pod: ``/dev/shm`` is a 64Mi tmpfs shared by the containers, and the kubelet/containerd files
  ``/etc/hosts`` (kubelet format, pod IP 127.0.0.1 as there is no CNI), ``/etc/hostname`` and
  ``/etc/resolv.conf`` (from the host's, as dnsPolicy Default/ClusterFirst without cluster DNS).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from podsec.errors import RuntimeFailure
from podsec.runtime.ociruntime import OCIRuntime
from podsec.runtime.state import PodPaths
from podsec.volumes.mounts import MS_NODEV, MS_NOEXEC, MS_NOSUID, mount

BUSYBOX = Path("/bin/busybox")
SHM_SIZE = "65536k"
_PID_WAIT = 30.0


# -- the shared pause rootfs ---------------------------------------------------------------------


def pause_rootfs(state_root: Path) -> Path:
    """``<state>/pause/rootfs``, built once (atomically) and then only read by every sandbox."""
    final = state_root / "pause"
    rootfs = final / "rootfs"
    if (rootfs / "bin" / "sleep").is_symlink():
        return rootfs
    if not BUSYBOX.is_file():
        raise RuntimeFailure(f"{BUSYBOX} (a static busybox) is needed for the pod sandbox")
    import tempfile

    state_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=state_root, prefix=".pause-"))
    try:
        root = tmp / "rootfs"
        for d in ("bin", "dev", "proc", "sys", "etc"):
            (root / d).mkdir(parents=True, mode=0o755)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        os.chmod(root / "bin" / "busybox", 0o755)
        (root / "bin" / "sleep").symlink_to("busybox")
        (root / "etc" / "resolv.conf").touch(0o644)  # mount point: the pause root is read-only
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (rootfs / "bin" / "sleep").is_symlink():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return rootfs


# -- per-pod files -------------------------------------------------------------------------------


def write_pod_files(paths: PodPaths, files: dict[str, str]) -> None:
    """The planned files every container binds: hosts (rw), hostname and resolv.conf (ro iff readonly rootfs)."""
    paths.sandbox.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (paths.sandbox / name).write_text(content)
        os.chmod(paths.sandbox / name, 0o644)


def mount_shm(paths: PodPaths) -> str:
    """The pod's /dev/shm: a 64Mi tmpfs (containerd's sandbox shm), shared by every container."""
    paths.shm.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(paths.shm):
        try:
            mount("shm", paths.shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={SHM_SIZE}")
        except OSError as e:
            raise RuntimeFailure(f"cannot mount the pod's /dev/shm: {e.strerror}") from e
    return str(paths.shm)


# -- network -------------------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"


def _loopback_up_in(pid: int) -> None:
    """In a thread that joined the pod's network namespace: set ``lo`` UP if it is not."""
    import ctypes
    import fcntl
    import socket
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def loopback_up(pid: int) -> None:
    """Bring the pod's ``lo`` up (what a CNI loopback plugin does). runc already does it for a new netns,
    crun may not; a thread that joins the netns avoids an ``nsenter ip`` fork on the hot path."""
    import threading

    errors: list[BaseException] = []

    def work() -> None:
        try:
            _loopback_up_in(pid)
        except BaseException as e:  # reported below, via the nsenter fallback
            errors.append(e)

    t = threading.Thread(target=work, name="podsec-netns")
    t.start()
    t.join()
    if errors:
        proc = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeFailure(f"cannot bring up lo in the pod network: {proc.stderr.strip() or errors[0]}")


# -- starting ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sandbox:
    """A started pause container: the runtime process (its parent) and the pause pid."""

    proc: subprocess.Popen[bytes]
    pid: int
    cid: str


def launch(runtime: OCIRuntime, paths: PodPaths, cid: str, spec: dict) -> subprocess.Popen[bytes]:
    """Write the bundle and start the runtime; :func:`wait_started` collects the pid (so the caller can
    prepare containers meanwhile)."""
    bundle = paths.sandbox / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(spec))
    for name in ("pid", "runtime.log"):
        with contextlib.suppress(FileNotFoundError):
            (bundle / name).unlink()
    out = os.open(bundle / "runtime.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        return runtime.run(cid, bundle, bundle / "pid", out, bundle / "runtime.log")
    finally:
        os.close(out)


def wait_started(runtime: OCIRuntime, paths: PodPaths, cid: str, proc: subprocess.Popen[bytes]) -> Sandbox:
    """Wait for the pause pid (the runtime writes the pid file once namespaces and sysctls are in place).

    Raises :class:`RuntimeFailure` with the runtime's own message when the sandbox does not start.
    """
    bundle = paths.sandbox / "bundle"
    pid_file = bundle / "pid"
    deadline = time.monotonic() + _PID_WAIT
    delay = 0.0005
    while True:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(pid_file.read_text())
            return Sandbox(proc, pid, cid)
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.004)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    message = runtime.start_error(bundle / "runtime.log")
    if not message:
        with contextlib.suppress(OSError):
            message = (bundle / "runtime.out").read_text().strip().splitlines()[-1]
    raise RuntimeFailure(message or f"{runtime.name} exited with status {proc.returncode}")
