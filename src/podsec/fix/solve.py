"""``podsec fix --trace``: make each fixed workload read-only *and* non-root, by evidence, or name the blocker.

1. The manifests as written run first (``podsec trace``): what each app writes when it works, as the user it
   was written for (often root, who may write anywhere).
2. From the fixed manifests (:mod:`podsec.fix.plan`: the new non-root user, no capabilities, …) the loop of
   :func:`podsec.trace.verify.converge` runs each pod with emptyDir mounts for those writes, as the new user:
   a write the new user cannot make in the image is made in an emptyDir instead (world-writable; ``fsGroup``
   when the pod's own volumes need it), new writes add mounts, and hidden empty entries are filled from the
   image when hiding them broke the app; a bounded number of runs, each as long as the first.
3. The final manifest runs once more exactly as written, read-only roots really read-only: a container is
   made read-only only when that run goes as well as the original (exit code, clean stop, listening ports).

What is left is a blocker with its reason: the app fails as the new user (it needs root, or a file only root
may read), it writes where no emptyDir can go, or it failed already as written.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.errors import InputError
from podsec.trace.judge import outcome
from podsec.trace.model import PodTrace


@dataclass(slots=True)
class Solved:
    """What ``fix --trace`` found for the workloads of one file."""

    text: str
    notes: list[str] = field(default_factory=list)
    humans: list[str] = field(default_factory=list)
    readonly: set[tuple[int, str]] = field(default_factory=set)
    """(document index, container) made read-only."""
    interrupted: bool = False
    seconds: float = 0.0


def _where(pt: PodTrace, display: str) -> tuple[str, str]:
    return (f"{pt.display or display}:{pt.line}" if pt.line else (pt.display or display)), f"{pt.kind}/{pt.name}"


def _user(c: Any) -> str:
    return f"uid {c.user[0]}" if c is not None and c.user else "the new user"


def solve_file(path: str, display: str, original: str, fixed: str, opts: Any, store: Any,
               bases: Sequence[PodTrace]) -> Solved:
    """Steps 2 and 3 for every traced workload of one file (``bases``: step 1's traces of its originals)."""
    from podsec.trace.verify import converge

    start = time.monotonic()
    out = Solved(fixed)
    for base in bases:
        where, label = _where(base, display)
        if base.interrupted or out.interrupted:
            out.interrupted = True
            continue
        if base.error:
            out.humans.append(f"{where}: {label}: needs a human: the pod could not run as written, so podsec "
                              f"cannot tell what it needs: {base.error}")
            continue
        for c in base.containers:
            if c.failed:
                how = f"exited {c.exit_code}" if c.ran else c.status
                last = f" ({c.log_tail[-1]})" if c.log_tail else ""
                out.humans.append(f'{where}: {label}: needs a human: container "{c.name}" {how} when run as written'
                                  f"{last}, so podsec cannot tell what it needs to run read-only")
            elif c.problems:
                out.notes.append(f'{where}: {label}: container "{c.name}": readOnlyRootFilesystem not set, it would '
                                 f"break the app: {'; '.join(c.problems)}")
        try:
            verdict = converge((path, display), base, out.text, opts, store, prove=True, new_context=True)
        except InputError as e:  # YAML podsec cannot edit in place (aliases…)
            out.humans.append(f"{where}: {label}: needs a human: the fixed manifest cannot be patched to run it "
                              f"read-only: {e.message}")
            continue
        out.interrupted = out.interrupted or verdict.interrupted
        out.text = verdict.text
        out.notes += [f"{where}: {label}: {n}" for n in verdict.notes]
        if verdict.inconclusive:
            out.notes.append(f"{where}: {label}: the mounts are not checked: {verdict.inconclusive}")
        proof = verdict.proof
        for name, c in verdict.verified.items():
            mounts = verdict.proposal.mounts.get(name, [])
            dirs = ", ".join(m.path + (" (filled from the image)" if m.seed else "") for m in mounts) or \
                "nothing written"
            final = proof.container(name) if proof is not None else None
            runs = f"{verdict.rounds} run{'s' if verdict.rounds != 1 else ''} as {_user(c)}"
            status = final.status if final is not None else c.status
            listen = f", listening on {', '.join(proof.listening)}" if proof and proof.listening and c.stopped else ""
            out.readonly.add((base.doc_index, name))
            out.notes.append(f'{where}: {label}: container "{name}": readOnlyRootFilesystem: true, emptyDir: {dirs} '
                             f"(traced: {runs}, then read-only: {status}{listen})")
        for name, why in verdict.blockers.items():
            before = base.container(name)
            was = f" (as written: {outcome(before)})" if before is not None else ""
            out.humans.append(f'{where}: {label}: needs a human: container "{name}" under the fixed '
                              f"securityContext: {why}{was}; if it needs root or files only root may read, change "
                              "the image or adjust the fix by hand")
    out.seconds = time.monotonic() - start
    return out


def solve(files: Sequence[tuple[str, str, str, str]], opts: Any) -> list[Solved]:
    """``files``: (path, display, original text, fixed text). Step 1 for all of them at once (in parallel),
    then steps 2 and 3 per file."""
    from podsec.image.store import ImageStore
    from podsec.trace.runner import trace_texts

    store = ImageStore(Path(opts.root))
    bases = trace_texts([(p, d, o) for p, d, o, _ in files], dataclasses.replace(opts, verify=False))
    out = []
    for path, display, original, fixed in files:
        out.append(solve_file(path, display, original, fixed, opts, store, [b for b in bases if b.source == path]))
    return out
