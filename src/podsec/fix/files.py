"""The side-effecting part of ``podsec fix``: read inputs as they are, show diffs, write files atomically,
and run the trace on the fixed manifests."""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def trace_fixed(inputs: Sequence[tuple[str, str, str]], *, duration: float, root: str, state: str, runtime: str,
                volume_dirs: Mapping[str, str] | None) -> dict[str, list]:
    """Run the trace on the fixed texts ((path, display, text) each); the pod traces per path.

    The fixed manifests are traced, not the originals: the app then runs as the user it will run as.
    ``trace_texts`` is the text form of the interface's ``trace_files``, so messages name the real files.
    """
    from podsec.trace import TraceOptions, trace_texts

    opts = TraceOptions(duration=duration, root=root, state=state, runtime=runtime, volume_dirs=volume_dirs)
    out: dict[str, list] = {path: [] for path, _, _ in inputs}
    for t in trace_texts(list(inputs), opts):
        out[t.source].append(t)
    return out
