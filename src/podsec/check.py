"""The static pipeline: loaded objects → validation, resolution, Pod Security Standards, findings.

``podsec check`` and ``podsec explain`` are thin renderers over :func:`check_paths` and :func:`explain_objects`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podsec.findings import Finding
from podsec.manifest.kinds import Workload
from podsec.manifest.loader import K8sObject, LoadResult
from podsec.model import ResolvedPod, render_path
from podsec.resolve import ImageLookup, resolve_pod

if TYPE_CHECKING:
    from podsec.admit import AdmitOptions, AdmittedPod
    from podsec.errors import PodsecError
    from podsec.policy.checks import PodFacts
    from podsec.report.check_report import Problem

PSS_SEVERITY = "high"
DEFAULT_LEVEL = "restricted"


@dataclass(slots=True)
class Policy:
    level: str
    version: str
    source: str  # "--level", "namespace <name>", "default"


@dataclass(slots=True)
class WorkloadReport:
    workload: Workload
    resolved: ResolvedPod
    policy: Policy
    pss: object | None  # podsec.policy.pss.PSSResult
    findings: list[Finding] = field(default_factory=list)

    @property
    def pss_allowed(self) -> bool:
        return self.pss is None or bool(getattr(self.pss, "allowed", True))


@dataclass(slots=True)
class Analysis:
    reports: list[WorkloadReport]
    objects: list[K8sObject]
    namespace_errors: list[str] = field(default_factory=list)


def namespace_policies(objects: list[K8sObject]) -> tuple[dict[str, Policy], list[str]]:
    """Enforce policies from ``Namespace`` objects in the input, as admission reads their labels."""
    from podsec.policy.pss import namespace_policy

    out: dict[str, Policy] = {}
    errors: list[str] = []
    for o in objects:
        if o.kind != "Namespace" or not o.name:
            continue
        labels = o.metadata.get("labels")
        if not isinstance(labels, dict) or not any(
            isinstance(k, str) and k.startswith("pod-security.kubernetes.io/enforce") for k in labels
        ):
            continue
        level, version, errs = namespace_policy(labels)
        out[o.name] = Policy(level, version, f"namespace {o.name}")
        errors += [f"{o.source.display}:{o.line_of(('metadata', 'labels'))}: Namespace/{o.name}: {e}" for e in errs]
    return out, errors


@dataclass(slots=True)
class Analyzer:
    """Judges one object at a time, so any number of objects can stream through (see :func:`iter_results`)."""

    level: str | None = None
    version: str | None = None
    images: ImageLookup | None = None
    allow_privileged: bool = True
    feature_gates: frozenset[str] = frozenset()
    validate: str = "strict"
    ns_policies: dict[str, Policy] = field(default_factory=dict)
    image_facts: Callable[[str], Any] | None = None
    """s6-overlay facts of an image's rootfs (PUID/PGID verdicts), when images are read."""

    _options: AdmitOptions | None = None

    def admit_options(self) -> AdmitOptions:
        if self._options is None:
            from podsec.admit import AdmitOptions
            from podsec.features import FeatureGates

            self._options = AdmitOptions(feature_gates=FeatureGates.from_names(self.feature_gates),
                                         allow_privileged=self.allow_privileged, field_validation=self.validate,
                                         kube_version=self.version)
        return self._options

    def policy(self, wl: Workload) -> Policy:
        level, version, ns = self.level, self.version, self.ns_policies
        if level is not None:
            return Policy(level, version or "latest", "--level")
        if wl.namespace and wl.namespace in ns:
            policy = ns[wl.namespace]
            return Policy(policy.level, version, policy.source + " (--version)") if version is not None else policy
        if not wl.namespace and "default" in ns:
            return ns["default"]
        return Policy(DEFAULT_LEVEL, version or "latest", "default")

    def judge(self, admitted: AdmittedPod, config_objects: list[dict] | None = None) -> WorkloadReport:
        """The report of one admitted workload: API errors, Pod Security Standards, podsec's own checks.
        ``config_objects``: the ConfigMaps/Secrets admitted with it (PUID/PGID from ``envFrom``/``valueFrom``)."""
        return judge(admitted, self.policy(admitted.workload), images=self.images, feature_gates=self.feature_gates,
                     image_facts=self.image_facts, config_objects=config_objects)

    def batch_reports(self, objects: list[K8sObject], warn: Callable[[str], None]) -> list[list[WorkloadReport]]:
        """:meth:`object_reports` of many objects, admitted together (cheaper); the first object that cannot be
        decoded raises for all of them."""
        from podsec.admit import admit

        admission = admit(objects, self.admit_options())
        if admission.dropped_unknown:
            for line in admission.warnings(located=True):
                warn(line)
        by_object: dict[int, list[WorkloadReport]] = {}
        for p in admission.pods:
            by_object.setdefault(id(p.workload.obj), []).append(self.judge(p, admission.config_objects))
        return [by_object.get(id(o), []) for o in objects]

    def object_reports(self, obj: K8sObject, warn: Callable[[str], None]) -> list[WorkloadReport]:
        """Admit and judge one loaded object (none for kinds without a pod template); raises PodsecError when
        it cannot be decoded. kubectl's ``Warning:`` lines for dropped unknown fields go to ``warn``."""
        from podsec.admit import admit

        admission = admit((obj,), self.admit_options())
        if admission.dropped_unknown:
            for line in admission.warnings(located=True):
                warn(line)
        return [self.judge(p, admission.config_objects) for p in admission.pods]


def judge(
    admitted: AdmittedPod,
    policy: Policy,
    *,
    images: ImageLookup | None = None,
    feature_gates: frozenset[str] = frozenset(),
    image_facts: Callable[[str], Any] | None = None,
    config_objects: list[dict] | None = None,
    api_errors: bool = True,
) -> WorkloadReport:
    """One admitted workload through resolve, Pod Security Standards and podsec's own checks: the judgement
    ``check``, ``audit`` and ``webhook`` share. Unknown fields (strict decoding) are always reported;
    ``api_errors=False`` for an object the API server already stored (it accepted it: its API validation
    errors would be podsec's, not the user's)."""
    from podsec.policy.checks import run_checks
    from podsec.policy.pss import evaluate

    wl = admitted.workload
    api = strict_findings(admitted) + (api_findings(admitted) if api_errors else [])
    findings: list[Finding] = []
    resolved = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
    pss = evaluate(wl.metadata, wl.spec, policy.level, policy.version)
    why = f'Pod Security Admission "{policy.level}:{policy.version}" rejects the pod.'
    for fail in pss.failures:
        paths = list(fail.fields) or [("spec",)]
        detail = f"{fail.reason} ({fail.detail})" if fail.detail else fail.reason
        findings.append(
            Finding(
                f"PSS:{fail.id}", PSS_SEVERITY, detail, tuple(paths[0]),
                why=why,
                fix=_pss_fix(fail.id),
                extra={"paths": [tuple(p) for p in paths]},
            )
        )
    facts = pod_facts(wl.spec, resolved, feature_gates, images, image_facts,
                      env_sources(config_objects or [], admitted.namespace))
    findings += run_checks(wl.metadata, wl.spec, resolved, feature_gates, facts)
    for f in findings:
        f.field = wl.field(f.path)
        f.line = wl.line_of(f.path)
    return WorkloadReport(wl, resolved, policy, pss, api + findings)


def analyze(
    loaded: LoadResult,
    *,
    level: str | None = None,
    version: str | None = None,
    images: ImageLookup | None = None,
    allow_privileged: bool = True,
    feature_gates: frozenset[str] = frozenset(),
    validate: str = "strict",
    image_facts: Callable[[str], Any] | None = None,
) -> Analysis:
    """Check every workload in ``loaded`` (admitted together, so the ConfigMaps/Secrets given with a pod count
    for its PUID/PGID, as in ``explain``); raises InputError (exit 2) on undecodable input."""
    ns_policies, ns_errors = namespace_policies(loaded.objects)
    analyzer = Analyzer(level, version, images, allow_privileged, feature_gates, validate, ns_policies, image_facts)
    warnings: list[str] = []
    reports = [r for rs in analyzer.batch_reports(loaded.objects, warnings.append) for r in rs]
    return Analysis(reports, loaded.objects, ns_errors + warnings)


def strict_findings(admitted: AdmittedPod) -> list[Finding]:
    """Each unknown field (``--validate=strict``) as a critical ``API`` finding at its line, in the decoder's
    words, with podsec's guess of the field meant."""
    from podsec.api.strict import strict_error

    out = []
    obj = admitted.workload.obj
    for u in admitted.unknown:
        meant = u.suggestion()
        f = Finding("API", "critical", strict_error([u]), u.path, why=(
            f"{u.hint()} The API server refuses the whole object under kubectl's default --validate=strict "
            "(with --validate=warn it drops the field with a warning, with false silently: the setting is lost)."),
            fix=f'rename the field to "{meant}"' if meant else "remove the field")
        f.field = u.field
        f.line = obj.line_of(u.path)
        out.append(f)
    return out


def env_sources(config_objects: list[dict], namespace: str) -> Callable[[str, str], Any]:
    """ConfigMaps/Secrets in the same input, for PUID/PGID from ``envFrom``/``valueFrom``; one not given here may
    still exist in the cluster, so it is unknown (``None``), not absent."""
    if not config_objects:
        return _unknown_source
    from podsec.downward import ObjectStore

    return ObjectStore(config_objects).env_sources(namespace, missing_is_absent=False)


def _unknown_source(kind: str, name: str) -> None:
    """:func:`env_sources` of an input without ConfigMaps/Secrets: every one is unknown."""
    return None


def pod_facts(spec: dict, pod: ResolvedPod, feature_gates: frozenset[str], images: ImageLookup | None,
              image_facts: Callable[[str], Any] | None, sources: Callable[[str, str], Any] | None) -> PodFacts:
    """What the checks are handed instead of deciding it themselves: the PUID/PGID verdicts (as explain shows
    them) and the volume files a container cannot read."""
    from podsec.features import ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER
    from podsec.policy.checks import PodFacts
    from podsec.puid import verdicts
    from podsec.volumes.readable import unreadable

    unread = tuple(unreadable(pod, spec, fs_user_gate=POD_SECURITY_CONTEXT_FS_USER in feature_gates,
                              user_fields_gate=ATOMIC_WRITE_VOLUME_USER_FIELDS in feature_gates)) \
        if spec.get("volumes") else ()
    return PodFacts(verdicts(spec, pod, images, image_facts, sources), unread)


def api_findings(admitted: AdmittedPod) -> list[Finding]:
    """The admission's API errors as findings (the same ``<field>: <message>`` lines ``explain`` refuses with)."""
    out = []
    obj = admitted.workload.obj
    for i, message in enumerate(admitted.messages()):
        path = admitted.error_path(i)
        f = Finding("API", "critical", message, path, why="The API server rejects the object with this error.",
                    fix="correct the field as the message says")
        f.field = render_path(path)
        f.line = obj.line_of(path)
        out.append(f)
    return out


@dataclass(slots=True)
class Explanation:
    """``podsec explain``'s answer for every workload: the resolved pod and where it is, its PUID/PGID verdicts
    by container name, and who owns its volume files (when an owner field or gate is involved)."""

    pods: list[tuple[ResolvedPod, str, int]] = field(default_factory=list)
    puid: list[dict[str, Any]] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """kubectl's ``Warning: unknown field`` lines (``--validate=warn``)."""

    def docs(self) -> list[dict]:
        """The ``-o json``/``-o yaml`` form."""
        from podsec.report.explain_report import pod_dict

        docs = [pod_dict(p, f, ln, v) for (p, f, ln), v in zip(self.pods, self.puid)]
        for doc, n in zip(docs, self.notes):
            if n:
                doc["volumeOwnership"] = n
        return docs

    def text(self) -> str:
        """The text form: each pod's block, then its volume notes."""
        from podsec.report.explain_report import render_text

        if not any(self.notes):
            return render_text(self.pods, self.puid)
        blocks = []
        for p, v, n in zip(self.pods, self.puid, self.notes):
            block = render_text([p], [v])
            if n:
                block += "  volume files:\n" + "".join(f"    - {line}\n" for line in n)
            blocks.append(block)
        return "\n".join(blocks)


def explain_objects(objects: list[K8sObject], *, images: ImageLookup | None = None,
                    image_facts: Callable[[str], Any] | None = None, feature_gates: Any = None,
                    validate: str = "strict") -> Explanation:
    """Who each container runs as and what it can do, for every workload in ``objects``; a manifest the API
    server would refuse raises (exit 2) with the errors ``check`` reports as API findings."""
    from podsec.admit import AdmitOptions, admit
    from podsec.features import ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER, gates_from
    from podsec.puid import verdicts
    from podsec.volumes.plan import ownership_notes

    gates = gates_from(feature_gates)
    admission = admit(objects, AdmitOptions(feature_gates=gates, field_validation=validate))
    admission.raise_invalid()  # the API server would refuse it: nothing to explain (check lists every error)
    out = Explanation(warnings=admission.warnings())
    for admitted in admission.pods:
        wl, obj = admitted.workload, admitted.workload.obj
        pod = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
        out.pods.append((pod, obj.source.display, obj.line_of()))
        out.notes.append(ownership_notes(pod, wl.spec, wl.pod_metadata(),
                                         atomic_write_user_fields=gates.enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS),
                                         pod_fs_user=gates.enabled(POD_SECURITY_CONTEXT_FS_USER)))
        out.puid.append(verdicts(wl.spec, pod, images, image_facts,
                                 env_sources(admission.config_objects, admitted.namespace)))
    return out


_PSS_FIXES = {
    "allowPrivilegeEscalation": "set securityContext.allowPrivilegeEscalation: false in each container",
    "capabilities_restricted": 'set securityContext.capabilities.drop: ["ALL"]; add back only NET_BIND_SERVICE',
    "capabilities_baseline": "remove capabilities outside the default set from capabilities.add",
    "runAsNonRoot": "set securityContext.runAsNonRoot: true (pod or every container)",
    "runAsUser": "do not set runAsUser: 0; use a non-zero uid",
    "seccompProfile_restricted": "set spec.securityContext.seccompProfile.type: RuntimeDefault",
    "seccompProfile_baseline": "do not set seccompProfile type Unconfined",
    "privileged": "remove securityContext.privileged: true",
    "hostNamespaces": "remove hostNetwork/hostPID/hostIPC",
    "hostPathVolumes": "replace hostPath volumes with emptyDir, configMap or a persistentVolumeClaim",
    "restrictedVolumes": "use only configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
    "persistentVolumeClaim, projected or secret volumes",
    "hostPorts": "remove hostPort from container ports",
    "procMount": "remove procMount (or set it to Default)",
    "procMount_restricted": "remove procMount (or set it to Default)",
    "seLinuxOptions": "use only container_t-family SELinux types and do not set user or role",
    "sysctls": "use only the safe sysctls",
    "appArmorProfile": "use AppArmor RuntimeDefault or Localhost",
    "windowsHostProcess": "remove windowsOptions.hostProcess",
    "hostProbesAndHostLifecycle": "remove host from probes and lifecycle handlers",
}


def _pss_fix(check_id: str) -> str:
    return _PSS_FIXES.get(check_id, "see the Pod Security Standards")


def report_dict(r: WorkloadReport) -> dict:
    """The JSON contract's entry for one workload (renderers all work from this form)."""
    from podsec.findings import SEVERITY_RANK

    wl = r.workload
    pss = r.pss
    findings = sorted(r.findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.line, f.id))
    return {
        "file": wl.obj.source.display,
        "line": wl.obj.line_of(),
        "kind": wl.kind,
        "namespace": wl.namespace or "default",
        "name": wl.name,
        "pss": {
            "level": r.policy.level,
            "version": r.policy.version,
            "source": r.policy.source,
            "allowed": r.pss_allowed,
            "message": getattr(pss, "message", "") or "",
        },
        "findings": [
            {"id": f.id, "severity": f.severity, "message": f.message, "field": f.field, "line": f.line,
             "container": f.container, "why": f.why, "fix": f.fix}
            for f in findings
        ],
    }


# -- streaming: any number of files and documents, in bounded memory ------------------------------------------

PARALLEL_MIN_BYTES = 1_000_000
BATCH_DOCS = 500
"""Documents parsed at a time from one file (a 100,000-document stream is never held as objects at once)."""
SPLIT_MIN_BYTES = 2_000_000
"""A file at least this big is shared among the workers by ranges of documents."""


def iter_results(paths: list[str], *, jobs: int | None = None, warn: Callable[[str], None] | None = None,
                 **options: Any) -> Iterator[dict | Problem]:
    """Each workload's report dict (the JSON contract's entry) or a :class:`Problem` (a file or document that
    could not be used), in input order, one at a time.

    A file that cannot be read or parsed is a problem and the next file is checked; a document that cannot be
    decoded is a problem and the next document is checked. YAML documents that are not Kubernetes objects
    (no apiVersion and no kind: configuration files, Helm values) are skipped in files found in directories,
    counted in a note to ``warn``; in a file named on the command line they are problems. Namespace objects
    anywhere in the input set the policy of their pods, so files that mention one are read first. On several
    cores (``jobs``) large inputs are shared among forked workers, which write their results to temporary
    files that are read back in order.
    """
    import os

    from podsec.manifest.loader import walk

    say = warn or (lambda _line: None)
    entries = list(walk(paths))
    stdin = _read_stdin() if any(e.path == "-" for e in entries) else None
    ns_policies, ns_errors = _namespace_prepass(entries, stdin)
    for e in ns_errors:
        say(f"podsec: warning: {e}")
    analyzer = Analyzer(ns_policies=ns_policies, **options)
    stats = _Skipped()
    usable = []
    for e in entries:
        if e.error is not None:
            yield _problem(e.error)
        elif e.skip:
            say(f"podsec: warning: {e.path}: skipped: {e.skip}")
        else:
            usable.append(e)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    units = _units(usable, jobs) if jobs > 1 and stdin is None and analyzer.images is None else None
    if units:
        yield from _parallel(units, jobs, analyzer, stats, say)
    else:
        for e in usable:
            yield from _entry_results(e.path, e.named, analyzer, stats, say, stdin if e.path == "-" else None)
    if stats.docs:
        what = "documents that are not Kubernetes objects" if stats.docs != 1 else \
            "document that is not a Kubernetes object"
        say(f"podsec: note: skipped {stats.docs} YAML {what} (no apiVersion/kind) in {len(stats.files)} "
            f"file{'s' if len(stats.files) != 1 else ''}")


@dataclass(slots=True)
class _Skipped:
    docs: int = 0
    files: set[str] = field(default_factory=set)


def _problem(exc: PodsecError) -> Problem:
    from podsec.report.check_report import Problem

    return Problem(exc.file or "", exc.line, exc.render())


def _read_stdin() -> str:
    from podsec.manifest.loader import read_text

    return read_text("-")[1]


def _namespace_prepass(entries: list, stdin: str | None) -> tuple[dict[str, Policy], list[str]]:
    """Namespace objects (their enforce labels) from the files that mention one; unusable files are skipped here
    (the main pass reports them)."""
    from podsec.errors import PodsecError
    from podsec.manifest.loader import load_text, read_text

    objects: list[K8sObject] = []
    for e in entries:
        if e.error is not None or e.skip:
            continue
        try:
            if e.path == "-":
                name, text = "<stdin>", stdin or ""
            else:
                if not _mentions(e.path, b"Namespace"):
                    continue
                name, text = read_text(e.path)
            if "Namespace" not in text:
                continue
            found: list[K8sObject] = []
            load_text(found, name, text, e.named)
        except PodsecError:
            continue
        objects += [o for o in found if o.kind == "Namespace"]
    return namespace_policies(objects)


def _mentions(path: str, word: bytes) -> bool:
    import os
    import stat

    from podsec.manifest import loader

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > loader.MAX_FILE_BYTES:
            return False
        with open(path, "rb") as fh:
            return word in fh.read()
    except OSError:
        return False


def _entry_results(path: str, named: bool, analyzer: Analyzer, stats: _Skipped, say: Callable[[str], None],
                   text: str | None = None, lo: int = 0, hi: int | None = None,
                   cut: tuple[int, int, int] | None = None) -> Iterator[dict | Problem]:
    """The results of one file (documents ``lo`` to ``hi``), parsed :data:`BATCH_DOCS` documents at a time.

    ``cut`` (first character, end character, first line) is where documents ``lo`` to ``hi`` are in the text, so a
    worker splits only its share of a big file."""
    from podsec.errors import PodsecError
    from podsec.manifest.loader import add_object, parse_chunks, read_text, split_documents

    try:
        name, text = ("<stdin>", text) if text is not None else read_text(path)
        chunks = _share(text, lo, hi, cut) if cut is not None else None
        if chunks is None:
            chunks = split_documents(text)
            end = len(chunks) if hi is None else min(hi, len(chunks))
            chunks, whole = chunks[lo:end], (text if lo == 0 and end == len(chunks) else None)
        else:
            whole = None
            del text  # only this share is kept
    except PodsecError as exc:
        yield _problem(exc)
        return
    for first in range(0, len(chunks), BATCH_DOCS):
        batch = chunks[first:first + BATCH_DOCS]
        broken: list[tuple[int, Problem]] = []  # (document number, its problem)
        try:
            docs = parse_chunks(name, whole if len(batch) == len(chunks) else None, batch, lo + first)
        except PodsecError:
            docs = []  # one document is broken: each on its own, so only that one is lost
            for k, chunk in enumerate(batch):
                try:
                    docs += parse_chunks(name, None, [chunk], lo + first + k)
                except PodsecError as exc:
                    broken.append((lo + first + k, _problem(exc)))
        objects: list[K8sObject] = []
        problems: dict[int, list[Problem]] = {}  # by the number of objects before them: kept in input order
        for src, doc in docs:
            while broken and broken[0][0] < src.index:
                problems.setdefault(len(objects), []).append(broken.pop(0)[1])
            if not named and not (isinstance(doc, dict) and ("kind" in doc or "apiVersion" in doc)):
                stats.docs += 1
                stats.files.add(name)
                continue
            try:
                add_object(objects, doc, src)
            except PodsecError as exc:
                problems.setdefault(len(objects), []).append(_problem(exc))
        if broken:
            problems.setdefault(len(objects), []).extend(p for _, p in broken)
        try:
            reports: list[list[WorkloadReport]] | None = analyzer.batch_reports(objects, say)
        except PodsecError:
            reports = None  # one of them cannot be decoded: one at a time, so only it is lost
        for i, obj in enumerate(objects):
            yield from problems.pop(i, ())
            if reports is not None:
                found = reports[i]
            else:
                try:
                    found = analyzer.object_reports(obj, say)
                except PodsecError as exc:
                    yield _problem(exc)
                    continue
            for r in found:
                yield report_dict(r)
        for rest in problems.values():
            yield from rest


def _share(text: str, lo: int, hi: int | None, cut: tuple[int, int, int]) -> list[tuple[int, str]] | None:
    """Documents ``lo`` to ``hi`` split from their own stretch of the text; None when that does not give exactly
    those documents (the caller then splits the whole text)."""
    from podsec.manifest.loader import split_documents

    c0, c1, line0 = cut
    sub = [(line + line0, body) for line, body in split_documents(text[c0:c1])]
    want = (hi or 0) - lo
    if len(sub) == want + 1 and not sub[-1][1].strip():
        sub.pop()  # the "---" that starts the next share
    return sub if len(sub) == want else None


def _line_offsets(text: str, lines: list[int]) -> list[int]:
    """Character offsets of the starts of 0-based ``lines`` (ascending)."""
    out, pos, line = [], 0, 0
    for target in lines:
        while line < target:
            pos = text.index("\n", pos) + 1
            line += 1
        out.append(pos)
    return out


Unit = tuple[str, bool, int, "int | None", int, "tuple[int, int, int] | None"]
"""(path, named, first document, end document, bytes, where those documents are in the text)."""


def _units(entries: list, jobs: int) -> list[Unit] | None:
    """Work units for the workers, or None when the input is too small to gain from them: whole files, and
    ranges of documents of a big file."""
    import os

    from podsec.errors import PodsecError
    from podsec.manifest.loader import forget_splits, read_text, split_documents

    sizes = []
    for e in entries:
        try:
            sizes.append(os.stat(e.path).st_size)
        except OSError:
            sizes.append(0)
    total = sum(sizes)
    if total < PARALLEL_MIN_BYTES:
        return None
    units: list[Unit] = []
    for e, size in zip(entries, sizes):
        if size >= SPLIT_MIN_BYTES:
            try:
                text = read_text(e.path)[1]
                chunks = split_documents(text)
            except PodsecError:
                units.append((e.path, e.named, 0, None, size, None))  # its worker reports it
                continue
            n = len(chunks)
            step = max(1, -(-n // (jobs * 2)))
            starts = list(range(0, n, step))
            offsets = [*_line_offsets(text, [chunks[i][0] for i in starts]), len(text)]
            units += [(e.path, e.named, lo, min(lo + step, n), size * min(step, n - lo) // max(n, 1),
                       (offsets[k], offsets[k + 1], chunks[lo][0])) for k, lo in enumerate(starts)]
            del text, chunks
            forget_splits()  # the workers read their shares themselves: nothing big stays in the parent
        else:
            units.append((e.path, e.named, 0, None, size, None))
    return units if len(units) >= 2 else None


def _parallel(units: list[Unit], jobs: int, analyzer: Analyzer,
              stats: _Skipped, say: Callable[[str], None]) -> Iterator[dict | Problem]:
    """Share ``units`` among ``jobs`` forked workers, contiguously by size so results keep input order; each
    writes its items to a temporary file, read back in order as the workers finish."""
    import multiprocessing as mp
    import tempfile

    import orjson

    # Warm the imports before forking so workers start ready.
    import podsec.api.strict
    import podsec.api.types
    import podsec.api.validation
    import podsec.policy.checks
    import podsec.policy.pss  # noqa: F401
    from podsec.report.check_report import Problem

    total = sum(u[4] for u in units) or 1
    shares: list[list] = [[] for _ in range(jobs)]
    acc, k = 0, 0
    for u in units:
        if acc >= total * (k + 1) / jobs and k < jobs - 1:
            k += 1
        shares[k].append(u)
        acc += u[4]
    shares = [s for s in shares if s]
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="podsec-check-") as tmp:
        procs = []
        for i, share in enumerate(shares):
            out = f"{tmp}/{i}.jsonl"
            proc = ctx.Process(target=_work, args=(share, analyzer, out), daemon=True)
            proc.start()
            procs.append((proc, out))
        try:
            for proc, out in procs:
                proc.join()
                if proc.exitcode != 0:
                    raise RuntimeError(f"a check worker failed (exit {proc.exitcode})")
                with open(out, "rb") as fh:
                    for line in fh:
                        kind, value = orjson.loads(line)
                        if kind == "r":
                            yield value
                        elif kind == "p":
                            yield Problem(*value)
                        elif kind == "w":
                            say(value)
                        else:
                            stats.docs += value[0]
                            stats.files.update(value[1])
        finally:
            for proc, _ in procs:
                if proc.is_alive():
                    proc.kill()
                    proc.join()


def _work(share: list, analyzer: Analyzer, out: str) -> None:
    """A worker: the items of its units, one JSON line each (``["r", result]``, ``["p", problem]``, ``["w", line]``,
    then ``["s", [documents skipped, files]]``)."""
    import gc

    import orjson

    from podsec.report.check_report import Problem

    gc.disable()  # see podsec.gcpause: refcounting frees everything here
    stats = _Skipped()
    with open(out, "wb") as fh:
        def say(line: str) -> None:
            fh.write(orjson.dumps(["w", line]) + b"\n")

        for path, named, lo, hi, _, cut in share:
            for item in _entry_results(path, named, analyzer, stats, say, None, lo, hi, cut):
                if isinstance(item, Problem):
                    fh.write(orjson.dumps(["p", [item.file, item.line, item.message]]) + b"\n")
                else:
                    fh.write(orjson.dumps(["r", item]) + b"\n")
        fh.write(orjson.dumps(["s", [stats.docs, sorted(stats.files)]]) + b"\n")
