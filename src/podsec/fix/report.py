"""What ``podsec fix`` tells a person on stderr: one line per change, per thing left for a human, per leftover,
the notes, and the closing count. Pure: results in, lines out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def summary_lines(r: Any, quiet: bool) -> list[str]:
    """One line per changed pod/container, per thing left for a human, per leftover (of one :class:`FileFix`)."""
    lines: list[str] = []
    for p in r.plans:
        where = p.workload.obj.source.display  # Helm's "# Source:" file for `helm template … | podsec fix -`
        if not quiet:
            lines += [f"{where}:{c.line}: {p.label}: {c.where}: {', '.join(c.what)}" for c in p.changes]
        lines += [f"{where}:{h.line}: {p.label}: needs a human: {h.field}: {h.message}"
                  for h in sorted(p.humans, key=lambda h: h.line)]
    lines += r.trace_notes + r.trace_humans
    lines += [f"{r.display}:{lo.line}: {lo.label}: not fixed: {lo.message}" for lo in r.leftovers]
    return lines


def note_lines(results: Sequence[Any], traced: bool) -> list[str]:
    """The notes: per-workload ones, images podsec could not read, read-only roots left for ``--trace``."""
    out: list[str] = []
    unknown: list[str] = []
    writable = 0
    for r in results:
        for p in r.plans:
            unknown += [i for i in p.unknown_images if i not in unknown]
            writable += len(p.containers_writable_root)
            out += [f"podsec fix: note: {r.display}: {p.label}: {n}" for n in p.notes]
    if unknown:
        out.append(f"podsec fix: note: images not in podsec's store ({', '.join(unknown)}): their USER is unknown, "
                   f"so runAsUser is the --uid default; `podsec image pull IMAGE` and fix again to keep each "
                   "image's own non-root user")
    if writable and not traced:
        out.append(f"podsec fix: note: readOnlyRootFilesystem was not set ({writable} container"
                   f"{'s' if writable != 1 else ''}): it breaks apps that write outside their volumes; "
                   "`podsec fix --trace` runs the pods and sets it with an emptyDir for each directory they write")
    return out


def final_line(run: Any, *, show_diff: bool, write: bool, changed: int) -> tuple[str, bool]:
    """The closing count, and whether something still needs a human (or still fails)."""
    results = run.results
    humans = sum(len(p.humans) for r in results for p in r.plans) + sum(len(r.trace_humans) for r in results)
    leftovers = sum(len(r.leftovers) for r in results)
    workloads = sum(len(r.plans) for r in results)
    fixed = sum(1 for r in results for p in r.plans if p.changes)
    verb = "would fix" if show_diff else "fixed"
    where = f"{changed} file{'s' if changed != 1 else ''} changed" if write else \
        f"{len(run.inputs)} file{'s' if len(run.inputs) != 1 else ''}"
    tail = []
    if humans:
        tail.append(f"{humans} left for a human")
    if leftovers:
        tail.append(f"{leftovers} still failing")
    line = (f"podsec fix: {verb} {fixed} of {workloads} workload{'s' if workloads != 1 else ''} "
            f"({where}){'; ' + ', '.join(tail) if tail else ''}")
    return line, bool(humans or leftovers)
