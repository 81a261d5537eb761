"""The OCI runtime binary (runc or crun): the few commands podsec needs, with one place for quirks.

Containers are started with ``<runtime> run`` in the foreground (no ``--detach``): the runtime process
stays the container's parent, relays its exit status, reaps it and deletes the container when it exits,
so podsec needs no shim and no ``delete`` on the normal path. Each runtime child gets its own session
so a Ctrl-C on the terminal reaches podsec, which then stops the pod the kubelet's way.

crun 1.8 refuses this host's cgroup v1 "hybrid" layout while the cgroup2 tree at
``/sys/fs/cgroup/unified`` has a controller (here: hugetlb): "cgroups in hybrid mode not supported,
drop all controllers from cgroupv2". podsec runs crun in a private mount namespace where that tree is
hidden under an empty tmpfs, so crun sees (and uses) plain cgroup v1; the host is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from podsec.errors import RuntimeFailure

RUNTIMES = ("runc", "crun")
_UNIFIED = Path("/sys/fs/cgroup/unified")
_HIDE_UNIFIED = f'mount -t tmpfs -o size=4k podsec-hide {_UNIFIED} && exec "$@"'


def _hybrid_with_v2_controllers() -> bool:
    try:
        return bool((_UNIFIED / "cgroup.controllers").read_text().strip())
    except OSError:
        return False


class OCIRuntime:
    """``runc``/``crun`` with their default state roots (so ``runc list`` shows podsec's containers)."""

    def __init__(self, name: str = "runc") -> None:
        if name not in RUNTIMES:
            raise RuntimeFailure(f"unknown runtime {name!r} (choose runc or crun)")
        binary = shutil.which(name)
        if binary is None:
            raise RuntimeFailure(f"{name} is not installed")
        self.name = name
        self.binary = binary
        self._prefix: list[str] = []
        if name == "crun" and _hybrid_with_v2_controllers():
            self._prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", _HIDE_UNIFIED, "sh"]

    def argv(self, *args: str) -> list[str]:
        return [*self._prefix, self.binary, *args]

    # -- starting ------------------------------------------------------------------------------
    def run(self, cid: str, bundle: Path, pid_file: Path, out_fd: int, log_file: Path) -> subprocess.Popen[bytes]:
        """Start ``cid`` in the foreground: the runtime's stdout and stderr are both ``out_fd``; its own errors
        also go to ``log_file`` as JSON.

        The order between the container's stdout and stderr is not kept with runc: in the foreground
        without a terminal, runc gives the container two pipes and copies each to its own fd separately
        (runc ``docs/terminals.md``, "Foreground"), so lines written alternately to the two streams can
        land out of order in the log (each stream keeps its own order). crun passes its fds through and
        keeps the order. A container that needs one ordered stream writes both to stdout (``exec 2>&1``)."""
        return subprocess.Popen(
            self.argv(*self.log_args(log_file), "run", "--bundle", str(bundle), "--pid-file", str(pid_file), cid),
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=out_fd,
            start_new_session=True,
            close_fds=True,
        )

    @staticmethod
    def start_error(log_file: Path) -> str | None:
        """The runtime's own error from ``log_file`` (a failed start), None when it logged none."""
        try:
            text = log_file.read_text(errors="replace")
        except OSError:
            return None
        message = None
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") == "error" and entry.get("msg"):
                message = str(entry["msg"])
        return message

    # -- managing ------------------------------------------------------------------------------
    def _call(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeFailure(f"{self.name} {' '.join(args)}: timed out") from e

    def kill(self, cid: str, sig: int = signal.SIGTERM, *, all_processes: bool = False) -> bool:
        args = ["kill", *(["--all"] if all_processes else []), cid, str(int(sig))]
        return self._call(*args).returncode == 0

    def delete(self, cid: str, *, force: bool = True) -> bool:
        return self._call("delete", *(["--force"] if force else []), cid).returncode == 0

    def state(self, cid: str) -> dict[str, Any] | None:
        proc = self._call("state", cid)
        if proc.returncode != 0:
            return None
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def list(self) -> list[dict[str, Any]]:
        proc = self._call("list", "--format", "json")
        if proc.returncode != 0:
            return []
        try:
            doc = json.loads(proc.stdout or "null")
        except ValueError:
            return []
        return [d for d in doc or () if isinstance(d, dict)]

    def exec_argv(self, cid: str, bundle: Path, command: list[str], *, tty: bool = False) -> tuple[list[str], int]:
        """``exec`` with the container's own process settings (user, groups, capabilities, env, cwd), as
        ``kubectl exec`` gets them from containerd; only args and the terminal change.

        The process is passed explicitly with ``--process``: crun 1.8 would otherwise run the command as
        uid 0 without the container's groups. Returns the argv and the (inheritable) fd holding the
        process JSON, which must stay open until the runtime has started.
        """
        process = json.loads((bundle / "config.json").read_text())["process"]
        process["args"] = list(command)
        process["terminal"] = tty
        fd = os.memfd_create("podsec-exec", 0)  # no MFD_CLOEXEC: the runtime opens it after exec()
        os.write(fd, json.dumps(process).encode())
        os.lseek(fd, 0, os.SEEK_SET)
        return self.argv("exec", "--process", f"/proc/self/fd/{fd}", cid), fd

    def log_args(self, log_file: Path) -> list[str]:
        """Global options that make the runtime write its own errors to ``log_file`` as JSON lines."""
        if self.name == "runc":
            return ["--log", str(log_file), "--log-format", "json"]
        return [f"--log=file:{log_file}", "--log-format=json"]


def signal_pid(pid: int | None, sig: int) -> bool:
    """Signal a process we started; False when it is already gone."""
    if not pid:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
