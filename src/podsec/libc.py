"""libc through ctypes, loaded once per process, and the probe for raw syscalls that only newer kernels have."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

Syscall = Callable[..., int]


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def syscall_if(works: Callable[[Syscall, int], bool]) -> Syscall | None:
    """libc's ``syscall`` (returning a long) when ``works(syscall, fd)`` — ``fd`` an open ``/``, errno cleared —
    says the kernel has the call; else None (no libc, or an old kernel)."""
    try:
        fn = libc().syscall
        fn.restype = ctypes.c_long
        fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            ctypes.set_errno(0)
            return fn if works(fn, fd) else None
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        return None
