"""One exception family for everything podsec reports to a user.

The CLI turns a :class:`PodsecError` into one line
``podsec: <file>:<line>: <doc kind/name>: <field path>: <message>`` and exit code 2,
so every layer raises these instead of letting a Python exception escape.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """``text`` with control characters (NUL, ESC, CR, …) shown as ``\\x1b`` escapes, so input cannot drive the
    terminal or break a line; newlines and tabs stay."""
    if text.isprintable() or not _CONTROL.search(text):  # the common case, in C
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """:func:`printable`, with newlines shown as ``\\n`` too: a message that must stay on its line."""
    return text if text.isprintable() else printable(text.replace("\n", "\\n"))


class PodsecError(Exception):
    """A problem a user can act on, with where it happened when that is known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        doc: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.doc = doc
        self.field = field

    def render(self) -> str:
        """The one-line form the CLI prints (without the ``podsec: `` prefix)."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.doc:
            parts.append(self.doc)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return printable(": ".join(parts))

    def __str__(self) -> str:
        return self.render()


class InputError(PodsecError):
    """Bad input: unreadable file, broken YAML, a wrong type in a field."""


class ImageError(PodsecError):
    """An image could not be loaded, found or unpacked."""


class RuntimeFailure(PodsecError):
    """The OCI runtime or the host refused to do what a pod needs."""

    exit_code = 1


class NeedsRoot(PodsecError):
    """A command that runs containers or changes files it does not own, started by another user: said in
    one line before anything is touched."""

    exit_code = 1


def require_root(command: str, why: str) -> None:
    """Refuse ``command`` (``run``, ``image load`` …) unless podsec runs as root; ``why`` says what needs it."""
    import os

    if os.geteuid() != 0:
        raise NeedsRoot(f"{command} needs root ({why}); run it as root (sudo podsec {command} …)")


class NotFound(PodsecError):
    """kubectl's NotFound (a pod or container that is not there)."""

    exit_code = 1
