"""From a manifest's text to its fixed text: plan every workload, rewrite in place, check the result.

Pure (text in, text out): reading and writing files, diffs and tracing live in the CLI and
:mod:`podsec.fix.files`. The check after rewriting is what makes the promise testable: every
workload of the output is evaluated again against restricted, and anything still denied that is not
on the needs-a-human list, or any new API validation error, is reported instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podsec.errors import InputError

if TYPE_CHECKING:
    from podsec.admit import AdmittedPod
    from podsec.api.strict import UnknownField
from podsec.fix.plan import (
    DEFAULT_UID,
    LEVEL,
    NEEDS_HUMAN,
    VERSION,
    AccountLookup,
    WorkloadPlan,
    is_puid_container,
    plan_workload,
)
from podsec.manifest.kinds import Workload
from podsec.manifest.loader import K8sObject, add_object, parse_documents
from podsec.manifest.rewrite import Patch, apply_patches, merge, patch_writable_mounts
from podsec.policy.pss.result import CheckOutcome
from podsec.resolve import ImageLookup

if TYPE_CHECKING:
    from podsec.admit import AdmittedPod
    from podsec.api.strict import UnknownField


@dataclass(slots=True)
class Leftover:
    """Something the fixed output still gets wrong that podsec meant to fix (a bug or an odd manifest)."""

    label: str
    line: int
    message: str
    doc: int = -1  # document index in the file


@dataclass(slots=True)
class FileFix:
    display: str
    original: str
    fixed: str
    plans: list[WorkloadPlan] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    trace_notes: list[str] = field(default_factory=list)
    trace_humans: list[str] = field(default_factory=list)
    """Traced containers that failed under the fixed securityContext: a human must look."""

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    @property
    def needs_human(self) -> bool:
        return any(p.humans for p in self.plans) or bool(self.trace_humans)


def _normalized(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def admitted(display: str, text: str) -> list[AdmittedPod]:
    """Every workload of a file's text, admitted as every command admits its input (:func:`podsec.admit.admit`);
    InputError (exit 2) on input the API server cannot decode."""
    from podsec.admit import admit

    objects: list[K8sObject] = []
    for src, obj in parse_documents(display, _normalized(text)):
        add_object(objects, obj, src)
    return admit(objects).pods


def workloads(display: str, text: str) -> list[Workload]:
    """Every workload of a file's text, in order (see :func:`admitted`); the API errors are what
    :func:`verify` compares before and after the fix."""
    return [p.workload for p in admitted(display, text)]


def fix_text(display: str, text: str, images: ImageLookup | None = None, *, uid: int = DEFAULT_UID,
             accounts: AccountLookup | None = None) -> FileFix:
    """Plan and apply the restricted fixes to one file's text."""
    pods = admitted(display, text)
    before = [p.workload for p in pods]
    plans = [plan_workload(wl, images, uid=uid, accounts=accounts) for wl in before]
    patches: dict[int, Patch] = {}
    refused: set[int] = set()
    for p, pod in zip(plans, pods):
        if pod.unknown:
            _leave_unknown_fields(p, pod.unknown)
            refused.add(p.workload.obj.source.index)
            continue
        if p.patch:
            idx = p.workload.obj.source.index
            patches[idx] = merge(patches[idx], p.patch) if idx in patches else p.patch
    errors: list[tuple[int, InputError]] = []
    fixed = apply_patches(text, patches, display, errors)
    result = FileFix(display, text, fixed, plans)
    failed = {idx for idx, _ in errors}
    result.leftovers = [lo for lo in verify(display, before, fixed, images) if lo.doc not in failed | refused]
    for p in plans:
        if p.workload.obj.source.index in failed:
            p.changes = []  # that document was left as it was
    result.leftovers += [Leftover(f"document {idx + 1}", exc.line or 0, f"left unchanged: {exc.message}", idx)
                         for idx, exc in errors]
    return result


def _leave_unknown_fields(p: WorkloadPlan, unknown: list[UnknownField]) -> None:
    """A document with unknown fields is left as it is, each field a "needs a human": podsec would otherwise
    add ``runAsUser`` beside a ``runAsUsr`` typo, and the API server refuses the object anyway."""
    from podsec.api.strict import strict_error
    from podsec.fix.plan import Human

    obj = p.workload.obj
    p.changes = []
    p.humans[:0] = [Human(obj.line_of(u.path), u.field, f"{strict_error([u])} ({u.hint()}): the document is left "
                          "unchanged until the field is corrected") for u in unknown]


def add_writable_mounts(result: FileFix, mounts: Mapping[tuple[int, str], Sequence[str]],
                        images: ImageLookup | None = None) -> None:
    """Make the traced containers' roots read-only with their emptyDir mounts, then check again."""
    if not mounts:
        return
    result.fixed = patch_writable_mounts(result.fixed, result.display, mounts)
    done = {name for (_, name) in mounts}
    for p in result.plans:
        p.containers_writable_root = [n for n in p.containers_writable_root if n not in done]
    result.leftovers = verify(result.display, workloads(result.display, result.original), result.fixed, images)


def set_traced(result: FileFix, text: str, readonly: set[tuple[int, str]], images: ImageLookup | None = None) -> None:
    """Take ``fix --trace``'s text (read-only roots and their mounts for the ``readonly`` containers), then
    check again."""
    if text == result.fixed:
        return
    result.fixed = text
    done = {name for (_, name) in readonly}
    for p in result.plans:
        p.containers_writable_root = [n for n in p.containers_writable_root if n not in done]
    result.leftovers = verify(result.display, workloads(result.display, result.original), result.fixed, images)


def _pss_failures(wl: Workload) -> list[CheckOutcome]:
    from podsec.policy.pss import evaluate

    return evaluate(wl.metadata, wl.spec, LEVEL, VERSION).failures


def _api_errors(wl: Workload) -> set[str]:
    from podsec.admit import admit_workload

    return set(admit_workload(wl).messages())


def _container(wl: Workload, path: tuple) -> dict | None:
    if len(path) >= 3 and path[0] == "spec" and isinstance(path[2], int):
        items = wl.spec.get(path[1])
        if isinstance(items, list) and path[2] < len(items) and isinstance(items[path[2]], dict):
            return items[path[2]]
    return None


def _privileged(wl: Workload, path: tuple) -> bool:
    c = _container(wl, path)
    sc = c.get("securityContext") if c else None
    return isinstance(sc, dict) and sc.get("privileged") is True


def _puid(c: dict | None, images: ImageLookup | None) -> bool:
    return c is not None and is_puid_container(c, images)


def _puid_only(wl: Workload, fields: list[tuple], images: ImageLookup | None) -> bool:
    containers = [_container(wl, f) for f in fields]
    return bool(containers) and all(_puid(c, images) for c in containers)


def verify(display: str, original: list[Workload], fixed: str, images: ImageLookup | None) -> list[Leftover]:
    """What the fixed text still gets wrong beyond what needs a human: restricted denials, new API errors
    (compared with the ``original`` workloads), containers the kubelet would refuse to start (runAsNonRoot)."""
    from podsec.resolve import resolve_pod

    before = {(w.obj.source.index, w.obj.root): w for w in original}
    out: list[Leftover] = []
    for wl in workloads(display, fixed):
        label = wl.obj.label()
        doc = wl.obj.source.index
        old = before.get((doc, wl.obj.root))
        for fail in _pss_failures(wl):
            if fail.id in NEEDS_HUMAN:
                continue
            fields = [tuple(f) for f in fail.fields]
            if fail.id == "allowPrivilegeEscalation":
                fields = [f for f in fields if not _privileged(wl, f)]
                if not fields:
                    continue  # only privileged containers: reported with the privileged finding
            if _puid_only(wl, fields, images):
                continue  # reported as needing a human
            path = fields[0] if fields else ("spec",)
            out.append(Leftover(label, wl.line_of(path), f"still denied by restricted: {fail.reason} "
                                f"({fail.detail})", doc))
        new_errors = _api_errors(wl) - (_api_errors(old) if old is not None else set())
        for e in sorted(new_errors):
            out.append(Leftover(label, wl.obj.line_of(), f"the fix made the object invalid: {e}", doc))
        if isinstance(wl.spec.get("os"), dict) and wl.spec["os"].get("name") == "windows":
            continue  # the kubelet checks Windows users by name (runAsUserName), not uids
        resolved = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
        for rc in resolved.containers:
            if rc.run_as_non_root.ok is False and not _puid(_container(wl, rc.path), images):
                out.append(Leftover(label, wl.line_of(rc.path),
                                    f'container "{rc.name}" would not start: {rc.run_as_non_root.message}', doc))
    return out
