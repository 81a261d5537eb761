"""Decide by evidence: run a pod again under the proposed mounts and keep them only when it runs as well.

The first trace of a pod proposes emptyDir mounts from what its containers wrote. This module patches the
manifest text with them (the same text ``-o yaml`` prints, so what is checked is what is printed), runs it
again for the same duration with the roots still writable so any write outside the mounts shows, and
compares each container with the first run (:mod:`podsec.trace.judge`). Up to ``rounds`` times:

- new writes outside the mounts: their mounts are added and it runs again;
- it runs worse where a mount hides empty image entries: those mounts are filled from the image by an init
  container instead, and it runs again;
- it runs worse after the user changed and it had written into its volumes: ``fsGroup`` (the new user's
  group) makes them group-writable, and it runs again;
- otherwise that container is left as it was, with the reason (a blocker).

``podsec fix --trace`` uses the same loop from its fixed manifest (new user included) against the original's
trace, and ends with a proof run with the read-only roots really read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.trace.group import HIDES_EMPTY, SEEDED, has_copy_command
from podsec.trace.judge import lost_ports, slow_init, worse
from podsec.trace.model import ContainerTrace, MountDir, PodTrace


@dataclass(slots=True)
class Proposal:
    """What to change in one pod so its containers run with read-only roots."""

    mounts: dict[str, list[MountDir]] = field(default_factory=dict)
    """Container name → its emptyDir mounts (``seed``: filled from the image by an init container)."""
    fs_group: int | None = None

    def add(self, name: str, new: list[MountDir]) -> bool:
        """Merge ``new`` mounts into the container's (a mount inside another one is dropped); True if any."""
        have = self.mounts.setdefault(name, [])
        changed = False
        for m in new:
            if any(m.path == h.path or m.path.startswith(h.path.rstrip("/") + "/") for h in have):
                continue
            have[:] = [h for h in have if not h.path.startswith(m.path.rstrip("/") + "/")] + [m]
            changed = True
        have.sort(key=lambda m: m.path)
        return changed

    def patch(self, text: str, display: str, doc_index: int) -> str:
        from podsec.manifest.rewrite import patch_writable_mounts

        mounts = {(doc_index, n): [m.path for m in ms] for n, ms in self.mounts.items()}
        seeds = {(doc_index, n): [m.path for m in ms if m.seed] for n, ms in self.mounts.items()}
        groups = {doc_index: self.fs_group} if self.fs_group is not None else None
        return patch_writable_mounts(text, display, mounts, seeds, groups)


@dataclass(slots=True)
class Verdict:
    """How the proposal for one pod held up."""

    proposal: Proposal
    verified: dict[str, ContainerTrace] = field(default_factory=dict)
    """Containers that ran as well under the final proposal: their trace from the last run."""
    blockers: dict[str, str] = field(default_factory=dict)
    """Containers left as they were, with why."""
    rounds: int = 0
    text: str = ""
    """The manifest text patched with the final proposal."""
    proof: PodTrace | None = None
    """The run with read-only roots really read-only (``prove``)."""
    notes: list[str] = field(default_factory=list)
    """What the loop changed on the way (filled from the image, fsGroup), for the report."""
    inconclusive: str = ""
    """Why the runs could not check the proposal (it is kept, unchecked)."""
    interrupted: bool = False
    """Ctrl-C stopped a run: nothing after it ran."""


def _target(path: str, display: str, text: str, base: PodTrace, namespace: str | None) -> Any:
    from podsec.trace.runner import load_targets

    for t in load_targets([(path, display, text)], namespace):
        if t.doc_index == base.doc_index and t.kind == base.kind and t.name == base.name:
            return t
    raise LookupError(f"{base.kind}/{base.name} is not in the patched manifest")


def _images(target: Any) -> dict[str, str]:
    return {str(c.get("name")): str(c.get("image")) for k in ("initContainers", "containers")
            for c in target.spec.get(k) or () if isinstance(c, dict)}


def _failed_seeds(pod: PodTrace, base: PodTrace) -> str:
    """Why the app containers never ran: an init container the proposal added failed, or an init container
    was still running when the run ended."""
    for c in pod.containers:
        if c.init and base.container(c.name) is None and c.exit_code:
            tail = f": {c.log_tail[-1]}" if c.log_tail else ""
            return f" (init container {c.name} exited {c.exit_code}{tail})"
    return slow_init(base, pod)


def converge(source: tuple[str, str], base: PodTrace, start_text: str, opts: Any, store: Any, *,
             prove: bool = False, new_context: bool = False) -> Verdict:
    """Run ``start_text`` patched with mounts for ``base``'s fixable containers until each runs as well as in
    ``base`` with no write outside its mounts, or is given up with a reason; ``opts.rounds`` runs at most.

    ``new_context``: ``start_text`` is not what ``base`` ran (``fix``: a new user, no capabilities), so every
    container that ran well in ``base`` must still, read-only or not, and the pod runs even without mounts."""
    from podsec.trace.diff import ImageTree

    path, display = source
    proposal = Proposal()
    verdict = Verdict(proposal, text=start_text)
    active = [c.name for c in base.containers if c.fixable]
    for c in base.containers:
        if c.fixable:
            proposal.add(c.name, list(c.mounts))
    others = [c.name for c in base.containers if new_context and not c.fixable and c.ran and not c.failed]
    if not active and not others:
        return verdict
    observe = dataclasses.replace(opts, keep_readonly=False, logs=None)
    tried_seed: set[str] = set()
    last: PodTrace | None = None
    images: dict[str, str] = {}
    pending: set[str] = set(active)
    """Containers whose proposal changed after their last run (checked by none yet)."""
    while verdict.rounds < opts.rounds:
        text = proposal.patch(start_text, display, base.doc_index)
        target = _target(path, display, text, base, opts.namespace)
        images = _images(target)
        pod = _run(target, observe, store, base, verdict)
        verdict.rounds += 1
        last = pod
        if pod.interrupted:
            verdict.interrupted = True
            for n in active:
                verdict.blockers[n] = "was interrupted before its run under the proposed mounts ended"
            return verdict
        if pod.error:
            for n in active:
                verdict.blockers[n] = f"under the proposed mounts the pod could not run: {pod.error}"
            return verdict
        ports = lost_ports(base, pod)
        changed = False
        pending = set()
        untouched = "" if new_context else _untouched_failure(base, pod, proposal)
        if untouched:
            verdict.inconclusive = untouched
            verdict.text = proposal.patch(start_text, display, base.doc_index)
            return verdict
        for name in list(others):  # left writable, but running as the new user
            before, after = base.container(name), pod.container(name)
            why = worse(before, after) if before is not None and after is not None else None
            if why is not None:
                verdict.blockers[name] = why + (_failed_seeds(pod, base) if after and not after.ran else "")
                others.remove(name)
        for name in list(active):
            before, after = base.container(name), pod.container(name)
            assert before is not None
            if after is None:
                verdict.blockers[name] = "is not in the patched pod"
                active.remove(name)
                continue
            why = worse(before, after)
            if why is None and ports and before.stopped and not before.init:
                why = f"no longer listens on {', '.join(ports)}"
            if why is not None:
                fix = _remedy(name, before, after, proposal, tried_seed, images, store, ImageTree)
                if fix:
                    verdict.notes.append(fix)
                    changed = True
                    pending.add(name)
                    continue
                verdict.blockers[name] = why + (_failed_seeds(pod, base) if not after.ran else "")
                active.remove(name)
                continue
            if after.problems:
                verdict.blockers[name] = "; ".join(after.problems)
                active.remove(name)
                continue
            if after.mounts and proposal.add(name, list(after.mounts)):
                changed = True
                pending.add(name)
        if not changed or not active:
            break
    else:
        for name in [n for n in active if n in pending]:
            c = last.container(name) if last else None
            more = ", ".join(m.path for m in c.mounts) if c else ""
            verdict.blockers[name] = (f"still wrote outside its mounts after {verdict.rounds} runs ({more})" if more
                                      else f"did not run as well as before in {verdict.rounds} runs")
            active.remove(name)
    for name in list(proposal.mounts):
        if name not in active:
            del proposal.mounts[name]
    verdict.text = proposal.patch(start_text, display, base.doc_index) if proposal.mounts else start_text
    for name in active:
        c = last.container(name) if last else None
        if c is not None:
            verdict.verified[name] = c
    if prove and verdict.verified:
        _prove(verdict, path, display, base, opts, store, start_text)
    return verdict


def started_late(base: PodTrace, pod: PodTrace) -> bool:
    """The run ended before a container that ran in ``base`` got to start, and nothing failed: the machine was
    slow to start the pod, which says nothing about the proposal."""
    if pod.interrupted or pod.error or any(c.exit_code for c in pod.containers):
        return False
    return any(not c.ran and (b := base.container(c.name)) is not None and b.ran for c in pod.containers)


def _run(target: Any, opts: Any, store: Any, base: PodTrace, verdict: Verdict) -> PodTrace:
    """One run of ``target``; run once more (as long) when it ended before a container could start."""
    from podsec.trace.runner import trace_pod

    pod, _ = trace_pod(target, opts, store)
    if started_late(base, pod):
        late = ", ".join(c.name for c in pod.containers if not c.ran)
        verdict.notes.append(f"the run ended before {late} started (a slow pod start); ran it once more")
        pod, _ = trace_pod(target, opts, store)
    return pod


def _untouched_failure(base: PodTrace, pod: PodTrace, proposal: Proposal) -> str:
    """A container the proposal changes nothing for that ran worse than the first time: the second run is not
    a fair test (an init container that deletes a file from a hostPath finds it gone)."""
    for before in base.containers:
        after = pod.container(before.name)
        if after is None or proposal.mounts.get(before.name) or not before.ran or before.failed:
            continue
        why = worse(before, after)
        if why is not None:
            return (f"container {before.name!r}, which the mounts do not change, {why} when run again (its volumes "
                    "or the world outside kept the first run's changes)")
    return ""


def _remedy(name: str, before: ContainerTrace, after: ContainerTrace, proposal: Proposal, tried_seed: set[str],
            images: dict[str, str], store: Any, tree: Any) -> str:
    """Change the proposal once in a way that may make ``after`` run as well; a note of what, or ""."""
    hiding = [m for m in proposal.mounts.get(name, []) if m.reason == HIDES_EMPTY and not m.seed]
    if hiding and name not in tried_seed:
        tried_seed.add(name)
        image = images.get(name)
        if image and has_copy_command(tree(Path(store.rootfs(image)))):
            proposal.mounts[name] = [dataclasses.replace(m, seed=True, reason=SEEDED) if m in hiding else m
                                     for m in proposal.mounts[name]]
            return (f'container "{name}": filled {", ".join(m.path for m in hiding)} from the image (hiding its '
                    f"empty entries broke it)")
    if before.volume_writes and proposal.fs_group is None and after.user is not None and after.user != before.user:
        gid = after.user[1] or after.user[0]  # the new user's group; its uid when that group is root's
        proposal.fs_group = gid
        return (f'container "{name}": fsGroup: {gid} (it wrote into its volumes as uid '
                f"{before.user[0] if before.user else '?'}; as uid {after.user[0]} it needs them group-writable)")
    return ""


def _prove(verdict: Verdict, path: str, display: str, base: PodTrace, opts: Any, store: Any,
           unpatched: str) -> None:
    """Run the final manifest as written (read-only roots really read-only) and drop whatever runs worse."""

    before_proof = dict(verdict.verified)
    target = _target(path, display, verdict.text, base, opts.namespace)
    pod = _run(target, dataclasses.replace(opts, keep_readonly=True, logs=None), store, base, verdict)
    verdict.proof = pod
    verdict.interrupted = verdict.interrupted or pod.interrupted
    ports = lost_ports(base, pod)
    for name in list(verdict.verified):
        before, after = base.container(name), pod.container(name)
        assert before is not None
        why = worse(before, after) if after is not None else "is not in the pod"
        if pod.interrupted:
            why = "was interrupted before the read-only run ended"
        if why is None and ports and before.stopped and not before.init:
            why = f"no longer listens on {', '.join(ports)}"
        if why is not None and after is not None and not after.ran:
            why += _failed_seeds(pod, base)
        if why is not None:
            verdict.blockers[name] = f"with readOnlyRootFilesystem: true, it {why}"
            del verdict.verified[name]
            verdict.proposal.mounts.pop(name, None)
    if len(verdict.verified) < len(before_proof):  # leave the ones that failed as they were
        mounts = verdict.proposal.mounts
        verdict.text = verdict.proposal.patch(unpatched, display, base.doc_index) if mounts else unpatched


def apply_verdict(pod: PodTrace, verdict: Verdict) -> None:
    """Write what the runs under the proposal showed into the first trace's report: the mounts each
    container ended up with, how it ran with them, and why the ones given up cannot use them."""
    for c in pod.containers:
        c.rounds = verdict.rounds if c.fixable else 0
        if c.name in verdict.verified:
            c.mounts = list(verdict.proposal.mounts.get(c.name, c.mounts))
            c.mount_dirs = [m.path for m in c.mounts]
            c.verified = verdict.verified[c.name].status
        elif c.name in verdict.blockers:
            c.problems.append(f"run again under the proposed mounts, it {verdict.blockers[c.name]}")
    pod.interrupted = pod.interrupted or verdict.interrupted
    if verdict.inconclusive:
        pod.notes.append(f"the mounts are not checked: {verdict.inconclusive}")
    pod.fs_group = verdict.proposal.fs_group if verdict.verified else None
    pod.notes += verdict.notes
