"""``podsec exec``: a command in a running container, with kubectl's exit codes and messages.

The runtime (``runc exec``/``crun exec``) runs as a child so its own failure can be told in one
line: a command that is not there exits 127, one that cannot be executed 126, as ``kubectl exec``
reports them (the shell's convention, which containerd's exec follows), instead of the runtime's
raw log line and 255. Everything the command itself writes passes through unchanged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from podsec.runtime.ociruntime import OCIRuntime

NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file"
"""kubectl's warning for ``exec -it`` when stdin is not a terminal (it then runs without one)."""
_RUNTIME_LINE = (b"exec failed:", b"crun:", b"time=", b"ERRO[")
_NOT_FOUND = ("executable file not found", "no such file or directory", "not found in $PATH")


def exit_code_for(message: str) -> int:
    """127 when the command is not there, 126 when it is there but cannot be executed."""
    low = message.lower()
    return 127 if any(s in low for s in _NOT_FOUND) else 126


def want_tty(tty: bool, interactive: bool, stdin_is_tty: bool) -> tuple[bool, str | None]:
    """kubectl ``StreamOptions.SetupTTY``: ``-t`` needs ``-i``; with ``-i`` but no terminal on stdin, a
    warning and no TTY."""
    if not tty or not interactive:
        return False, None
    if not stdin_is_tty:
        return False, NO_TTY
    return True, None


def run_exec(runtime: OCIRuntime, cid: str, bundle: Path, command: list[str], *, tty: bool,
             interactive: bool) -> tuple[int, str | None]:
    """Run ``command`` in container ``cid``; returns (exit code, podsec's one-line error or None)."""
    argv, fd = runtime.exec_argv(cid, bundle, command, tty=tty)
    log = tempfile.NamedTemporaryFile(prefix="podsec-exec-", suffix=".json", delete=False)  # noqa: SIM115
    log.close()
    log_path = Path(log.name)
    full = [argv[0], *argv[1:]]
    i = full.index("exec")
    full[i:i] = runtime.log_args(log_path)
    stdin = None if interactive else subprocess.DEVNULL
    sys.stdout.flush()
    proc = subprocess.Popen(full, stdin=stdin, stderr=subprocess.PIPE, pass_fds=(fd,))
    os.close(fd)
    forward = {signal.SIGTERM: None, signal.SIGHUP: None}
    for sig in forward:
        forward[sig] = signal.signal(sig, lambda s, _f: proc.send_signal(s))
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the command
    try:
        held = _pump(proc)
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        for sig, handler in forward.items():
            signal.signal(sig, handler)
    try:
        error = OCIRuntime.start_error(log_path)
    finally:
        with contextlib.suppress(OSError):
            log_path.unlink()
    if error and code != 0:
        return exit_code_for(error), f"OCI runtime exec failed: {error}"
    if held:
        os.write(2, held)
    return code, None


def _pump(proc: subprocess.Popen[bytes]) -> bytes:
    """Copy the runtime's stderr through; a first line that looks like the runtime's own error is held
    back (and returned) until it is known whether the command ever ran."""
    assert proc.stderr is not None
    src = proc.stderr.fileno()
    held = b""
    started = False
    while True:
        data = os.read(src, 65536)
        if not data:
            return held
        if not started:
            held += data
            if any(held.startswith(p) or p.startswith(held) for p in _RUNTIME_LINE):
                continue  # maybe the runtime's error: wait for the end
            data, held, started = held, b"", True
        os.write(2, data)


__all__ = ["NO_TTY", "exit_code_for", "run_exec", "want_tty"]
