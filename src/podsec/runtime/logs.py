"""Container logs: copying the log files to a terminal as they grow (``run``, ``logs -f``).

The files are written by the containers themselves (their stdout+stderr is the file), so a container
keeps logging even when no podsec process watches. Readers wake on inotify instead of sleeping.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

_IN_MODIFY = 0x2
_IN_CREATE = 0x100
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_CHUNK = 1 << 16


class Inotify:
    """A non-blocking inotify fd watching directories for writes; ``fileno()`` goes into ``select``.

    Without inotify (``fd`` is -1) callers fall back to a short poll.
    """

    def __init__(self, dirs: Iterable[Path]) -> None:
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                return
            for d in dirs:
                libc.inotify_add_watch(fd, os.fsencode(d), _IN_MODIFY | _IN_CREATE)
            self.fd = fd
        except (OSError, AttributeError):
            self.fd = -1

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LogStreamer:
    """Copies new bytes of each container's log to ``out``.

    With one container the bytes go through untouched; with several, each line is prefixed with
    ``[name] `` (a partial line waits for its end, or for :meth:`finish`).
    """

    def __init__(self, files: dict[str, Path], out: BinaryIO, *, prefix: bool) -> None:
        self.files = files
        self.out = out
        self.prefix = prefix
        self.offsets: dict[str, int] = dict.fromkeys(files, 0)
        self.partial: dict[str, bytes] = dict.fromkeys(files, b"")
        self.enabled: set[str] = set(files)
        """Logs that may be copied; the pod runner holds one back until its container really started,
        because a runtime's own start error lands in the same file and is rolled back."""

    def skip_existing(self) -> None:
        """Start from the current ends (``logs -f`` after printing what is there)."""
        for name, path in self.files.items():
            with contextlib.suppress(OSError):
                self.offsets[name] = path.stat().st_size

    def pump(self) -> bool:
        """Copy whatever was appended since the last call; True when something was."""
        wrote = False
        for name, path in self.files.items():
            if name not in self.enabled:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                size = os.fstat(fd).st_size
                if size < self.offsets[name]:  # truncated (a failed start is rolled back)
                    self.offsets[name] = size
                while self.offsets[name] < size:
                    data = os.pread(fd, min(_CHUNK, size - self.offsets[name]), self.offsets[name])
                    if not data:
                        break
                    self.offsets[name] += len(data)
                    self._emit(name, data)
                    wrote = True
            finally:
                os.close(fd)
        if wrote:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self.out.flush()
        return wrote

    def _emit(self, name: str, data: bytes) -> None:
        if not self.prefix:
            self._write(data)
            return
        data = self.partial[name] + data
        *lines, rest = data.split(b"\n")
        self.partial[name] = rest
        if lines:
            tag = f"[{name}] ".encode()
            self._write(b"".join(tag + line + b"\n" for line in lines))

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.out.write(data)

    def finish(self) -> None:
        """Copy the rest and end every pending partial line."""
        self.pump()
        if self.prefix:
            for name, rest in self.partial.items():
                if rest:
                    self._write(f"[{name}] ".encode() + rest + b"\n")
                    self.partial[name] = b""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.out.flush()


def wait_readable(fds: list[int], timeout: float | None) -> list[int]:
    """select() on the valid fds; an interrupted wait simply returns (the caller re-checks its state)."""
    valid = [fd for fd in fds if fd >= 0]
    try:
        ready, _, _ = select.select(valid, [], [], timeout)
    except InterruptedError:
        return []
    return ready
