"""``podsec trace``: run workloads with a writable root filesystem and find every path they write, grouped
into the fewest emptyDir mounts that let them run with ``readOnlyRootFilesystem: true``.

``model`` (the data), ``diff`` (overlay upper dir and volume snapshots → changes), ``group`` (changes →
emptyDir directories and problems, pure), ``runner`` (the side-effecting part), ``report`` (text/JSON).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podsec.trace.model import Change, ContainerTrace, MountDir, PodTrace

if TYPE_CHECKING:
    from podsec.trace.runner import trace_files


def __getattr__(name: str) -> Any:
    if name in ("trace_files", "trace_texts", "TraceOptions"):  # the runtime is heavy: import on use
        from podsec.trace import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["Change", "ContainerTrace", "MountDir", "PodTrace", "trace_files"]
