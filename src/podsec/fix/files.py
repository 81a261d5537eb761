"""The side-effecting part of ``podsec fix``: read inputs as they are, show diffs, write files atomically,
and find the image's own account for a program."""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podsec.errors import InputError


@dataclass(slots=True)
class Input:
    path: str  # as given ("-" for stdin)
    display: str
    text: str  # exactly as read (BOM and CRLF kept, so --write changes only what it fixes)


def read_inputs(paths: Sequence[str]) -> list[Input]:
    """Every manifest file of ``paths`` (directories walked, ``-`` is stdin), decoded but otherwise untouched."""
    from podsec.manifest.loader import iter_manifest_files

    out: list[Input] = []
    for path in iter_manifest_files(paths):
        try:
            if path == "-":
                data, display = sys.stdin.buffer.read(), "<stdin>"
            else:
                with open(path, "rb") as fh:
                    data, display = fh.read(), path
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), file=path) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start})", file=display) from None
        out.append(Input(path, display, text))
    if not out:
        raise InputError("no manifest files (*.yaml, *.yml, *.json) found", file=", ".join(paths))
    return out


def unified_diff(display: str, before: str, after: str) -> str:
    """A unified diff with the file's name on both sides, as ``ruff format --diff`` prints it."""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=display, tofile=display)
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def write_atomic(path: str, text: str) -> None:
    """Replace ``path``'s content: a temporary file beside it, same mode and owner, fsync, rename.

    A symlink is followed to the file it names (as an editor saves it), so the link stays a link.
    """
    target = os.path.realpath(path)
    st = os.stat(target)
    directory = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".podsec-fix", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fchmod(fh.fileno(), st.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def account_lookup(root: str) -> Any:
    """(image ref, command) → the image's own account for the program (:func:`podsec.fix.account.choose_account`),
    from podsec's store at ``root``; None when there is no store."""
    if not os.path.exists(os.path.join(root, "oci", "index.json")):
        return None
    from pathlib import Path

    from podsec.errors import PodsecError
    from podsec.fix.account import choose_account
    from podsec.image.store import ImageStore

    store = ImageStore(Path(root))
    cache: dict[tuple[str, tuple[str, ...]], Any] = {}

    def lookup(ref: str, command: Sequence[str]) -> Any:
        key = (ref, tuple(command))
        if key not in cache:
            try:
                found = store.resolve(ref) is not None
                cache[key] = choose_account(store.info(ref), Path(store.rootfs(ref)), command) if found else None
            except PodsecError:
                cache[key] = None
        return cache[key]

    return lookup


@dataclass(frozen=True, slots=True)
class TraceSettings:
    """``fix --trace``: how long to run each pod, where, with which runtime and claim directories."""

    duration: float
    root: str
    state: str
    runtime: str = "runc"
    volume_dirs: Sequence[str] = ()
    """``--volume-dir CLAIM=DIR`` values as given."""


@dataclass(slots=True)
class FixRun:
    inputs: list[Input]
    results: list[Any]
    """One :class:`podsec.fix.apply.FileFix` per input."""
    interrupted: bool = False


def fix_files(paths: Sequence[str], images: Any = None, accounts: Any = None, *, uid: int,
              trace: TraceSettings | None = None) -> FixRun:
    """``podsec fix``: read every input, fix each file's text and, with ``trace``, run the pods until each
    container runs read-only as its new user (:func:`harden_by_trace`). Nothing is written here."""
    from podsec.fix.apply import fix_text
    from podsec.gcpause import no_cyclic_gc

    inputs = read_inputs(paths)
    with no_cyclic_gc():
        results = [fix_text(i.display, i.text, images, uid=uid, accounts=accounts) for i in inputs]
    run = FixRun(inputs, results)
    if trace is not None:
        run.interrupted = harden_by_trace(results, images, trace)
    return run


def harden_by_trace(results: Sequence[Any], images: Any, trace: TraceSettings) -> bool:
    """Run the manifests as written, then the fixed ones until each container runs read-only as the new user
    as well as it did, or a blocker is named (:mod:`podsec.fix.solve`); keep what was proven. True when the
    trace was interrupted (Ctrl-C)."""
    from podsec.fix.apply import set_traced
    from podsec.fix.solve import solve
    from podsec.trace.runner import TraceOptions
    from podsec.volumes.claims import volume_dir_strings

    opts = TraceOptions(duration=trace.duration, root=trace.root, state=trace.state, runtime=trace.runtime,
                        volume_dirs=volume_dir_strings(trace.volume_dirs))
    files = [(str(n), r.display, r.original, r.fixed) for n, r in enumerate(results)]
    interrupted = False
    for r, solved in zip(results, solve(files, opts)):
        interrupted = interrupted or solved.interrupted
        r.trace_notes += solved.notes
        r.trace_humans += solved.humans
        set_traced(r, solved.text, solved.readonly, images)
    return interrupted
