"""Trace several workloads at once: each pod runs in a forked child (a pod runner owns its process's signal
handlers, so two cannot share one process), which sends its :class:`PodTrace` back through a pipe.

Ctrl-C on a terminal reaches every child (same process group); a SIGINT or SIGTERM sent to this process
alone is forwarded. Each child stops, reports and cleans up its own pod; no new pod starts afterwards.
If this process is killed, the children still finish and clean up; a killed child's pod is left for
``podsec gc`` like any other.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podsec.errors import PodsecError, RuntimeFailure
from podsec.trace.model import PodTrace

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(slots=True)
class _Child:
    index: int
    pid: int
    fd: int
    data: bytearray = field(default_factory=bytearray)


def _child_main(job: Callable[[], PodTrace], fd: int) -> None:
    """Run ``job`` and send ("ok", trace) or ("error", message, exit code, class name); never returns."""
    code = 0
    try:
        for s in _FORWARDED:
            signal.signal(s, signal.SIG_DFL if s != signal.SIGINT else signal.default_int_handler)
        try:
            result: tuple[Any, ...] = ("ok", job())
        except PodsecError as e:
            result = ("error", e.render(), e.exit_code)
        except KeyboardInterrupt:
            result = ("error", "interrupted", 130)
        except Exception as e:
            result = ("error", f"internal error: {type(e).__name__}: {e}", 3)
        data = pickle.dumps(result)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        code = 3
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def run_parallel(jobs: Sequence[Callable[[], PodTrace]], limit: int) -> list[PodTrace]:
    """Run ``jobs`` in up to ``limit`` children at a time; results in job order. After an interruption no
    new job starts and the results so far are returned. A failed job raises its error once all have ended."""
    results: dict[int, PodTrace] = {}
    errors: list[tuple[int, str, int]] = []
    running: dict[int, _Child] = {}
    sel = selectors.DefaultSelector()
    stop: list[int] = []
    hit: set[int] = set()

    def on_signal(signum: int, _frame: object) -> None:
        stop.append(signum)
        for child in running.values():
            hit.add(child.index)
            with contextlib.suppress(OSError):
                os.kill(child.pid, signum)

    saved = {s: signal.getsignal(s) for s in _FORWARDED}
    for s in _FORWARDED:
        signal.signal(s, on_signal)
    pending = list(enumerate(jobs))
    try:
        while pending or running:
            while pending and len(running) < max(limit, 1) and not stop:
                index, job = pending.pop(0)
                child = _start(index, job)
                running[child.fd] = child
                sel.register(child.fd, selectors.EVENT_READ)
            if not running:
                break
            for key, _ in sel.select():
                child = running[key.fd]
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    child.data += chunk
                    continue
                sel.unregister(key.fd)
                os.close(key.fd)
                del running[key.fd]
                _, status = os.waitpid(child.pid, 0)
                _collect(child, status, results, errors)
                if any(r.interrupted for r in results.values()):
                    pending.clear()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        sel.close()
    if errors:
        index, message, code = min(errors)
        err = RuntimeFailure(message) if code == 1 else PodsecError(message)
        err.exit_code = code
        raise err
    if stop:
        for i in hit & results.keys():
            results[i].interrupted = True
        if not results:
            raise KeyboardInterrupt
        if not any(r.interrupted for r in results.values()):
            results[max(results)].interrupted = True  # stopped between two pods: the rest never ran
    return [results[i] for i in sorted(results)]


def _start(index: int, job: Callable[[], PodTrace]) -> _Child:
    r, w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child_main(job, w)
    os.close(w)
    return _Child(index, pid, r)


def _collect(child: _Child, status: int, results: dict[int, PodTrace], errors: list[tuple[int, str, int]]) -> None:
    try:
        result = pickle.loads(bytes(child.data)) if child.data else None
    except Exception:
        result = None
    if isinstance(result, tuple) and result and result[0] == "ok":
        results[child.index] = result[1]
    elif isinstance(result, tuple) and result and result[0] == "error" and int(result[2]) == 130:
        pass  # interrupted before it had a trace to send: the other pods' reports still count
    elif isinstance(result, tuple) and result and result[0] == "error":
        errors.append((child.index, str(result[1]), int(result[2])))
    else:
        why = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {status >> 8}"
        errors.append((child.index, f"the trace of a pod ended without a result ({why}); podsec gc cleans up", 1))
