"""The pod sandbox on the host: the pause container of a pod that shares its PID namespace, the files every
container binds, and the pod's /dev/shm (the plan decides all of it: :func:`podsec.plan.plan_sandbox`).

* The pause rootfs is a tiny read-only directory shared by every pod (``<state>/pause/rootfs``): podsec's
  ``/pause`` (x86-64; PID 1 that reaps orphans, so ``ps`` shows ``/pause`` as on a node), and a copy of the
  static ``/bin/busybox`` with ``/bin/sleep`` (the sandbox process on other machines).
* A pod that does not share its PID namespace has no pause container: :mod:`podsec.runtime.pinns` pins
  its namespaces instead.
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


PAUSE_CODE = bytes.fromhex(
    "bfffffffff"      # loop: mov edi, -1            wait4(-1, NULL, 0, NULL): reap any child
    "31f6" "31d2"     #       xor esi, esi; xor edx, edx
    "4531d2"          #       xor r10d, r10d
    "b83d000000"      #       mov eax, 61 (wait4)
    "0f05"            #       syscall
    "4885c0"          #       test rax, rax
    "79e8"            #       jns loop                 a child was reaped: wait for the next
    "488d3d11000000"  #       lea rdi, [rip+ts]        no child (ECHILD): sleep a second
    "31f6"            #       xor esi, esi
    "b823000000"      #       mov eax, 35 (nanosleep)
    "0f05"            #       syscall
    "ebd6"            #       jmp loop
    "000000000000"    #       (pad)
    "0100000000000000" "0000000000000000"  # ts: {1 s, 0 ns}
)
"""x86-64 machine code of ``/pause``: PID 1 of a shared PID namespace that reaps orphans, like the
Kubernetes pause container (which also exits on SIGINT/SIGTERM; podsec stops it with SIGKILL)."""


def pause_binary() -> bytes | None:
    """A static ELF executable of :data:`PAUSE_CODE` (no libc, 184 bytes); None on other machines."""
    import struct

    if os.uname().machine != "x86_64":
        return None
    base, header = 0x400000, 64 + 56
    size = header + len(PAUSE_CODE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, base + header, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + PAUSE_CODE


def pause_rootfs(state_root: Path) -> Path:
    """``<state>/pause/rootfs``, built once (atomically) and then only read by every sandbox: ``/pause``
    (x86-64), and a static busybox with ``/bin/sleep`` (what runs as the sandbox elsewhere)."""
    final = state_root / "pause"
    rootfs = final / "rootfs"
    pause = pause_binary()
    if (rootfs / "bin" / "sleep").is_symlink() and (pause is None or (rootfs / "pause").is_file()):
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
        if pause is not None:
            (root / "pause").write_bytes(pause)
            os.chmod(root / "pause", 0o755)
        (root / "etc" / "resolv.conf").touch(0o644)  # mount point: the pause root is read-only
        os.chmod(tmp, 0o755)
        if final.exists():  # an older build without /pause: replaced (no sandbox runs from it now?)
            old = state_root / f".pause-old-{os.getpid()}"
            with contextlib.suppress(OSError):
                os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
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
