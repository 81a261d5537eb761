"""The static pipeline: loaded objects → validation, resolution, Pod Security Standards, findings.

``podsec check`` and ``podsec explain`` are thin renderers over :func:`analyze`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podsec.findings import Finding
from podsec.gcpause import no_cyclic_gc
from podsec.manifest.kinds import Workload
from podsec.manifest.loader import K8sObject, LoadResult
from podsec.model import ResolvedPod, render_path
from podsec.resolve import ImageLookup, resolve_pod

if TYPE_CHECKING:
    from podsec.admit import AdmittedPod

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


def analyze(
    loaded: LoadResult,
    *,
    level: str | None = None,
    version: str | None = None,
    images: ImageLookup | None = None,
    allow_privileged: bool = True,
    feature_gates: frozenset[str] = frozenset(),
    validate: str = "strict",
) -> Analysis:
    """Check every workload in ``loaded``; raises InputError (exit 2) on undecodable input."""
    from podsec.admit import AdmitOptions, admit
    from podsec.features import FeatureGates
    from podsec.policy.checks import run_checks
    from podsec.policy.pss import evaluate

    ns_policies, ns_errors = namespace_policies(loaded.objects)
    options = AdmitOptions(feature_gates=FeatureGates.from_names(feature_gates), allow_privileged=allow_privileged,
                           field_validation=validate, kube_version=version)
    reports: list[WorkloadReport] = []
    admission = admit(loaded.objects, options)
    for admitted in admission.pods:
        wl = admitted.workload
        api = strict_findings(admitted) + api_findings(admitted)
        findings: list[Finding] = []
        if level is not None:
            policy = Policy(level, version or "latest", "--level")
        elif wl.namespace and wl.namespace in ns_policies:
            policy = ns_policies[wl.namespace]
            if version is not None:
                policy = Policy(policy.level, version, policy.source + " (--version)")
        elif not wl.namespace and "default" in ns_policies:
            policy = ns_policies["default"]
        else:
            policy = Policy(DEFAULT_LEVEL, version or "latest", "default")
        resolved = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
        pss = evaluate(wl.metadata, wl.spec, policy.level, policy.version)
        for fail in pss.failures:
            paths = list(fail.fields) or [("spec",)]
            detail = f"{fail.reason} ({fail.detail})" if fail.detail else fail.reason
            findings.append(
                Finding(
                    f"PSS:{fail.id}", PSS_SEVERITY, detail, tuple(paths[0]),
                    why=f'Pod Security Admission "{policy.level}:{policy.version}" rejects the pod.',
                    fix=_pss_fix(fail.id),
                    extra={"paths": [tuple(p) for p in paths]},
                )
            )
        findings += run_checks(wl.metadata, wl.spec, resolved, feature_gates, images)
        for f in findings:
            f.field = wl.field(f.path)
            f.line = wl.line_of(f.path)
        reports.append(WorkloadReport(wl, resolved, policy, pss, api + findings))
    return Analysis(reports, loaded.objects, ns_errors + admission.warnings(located=True))


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


def check_files(files: list[str], **options: object) -> tuple[list[dict], list[str]]:
    """Load and analyze files; the report dicts and the namespace-label warnings."""
    from podsec.manifest.loader import load

    with no_cyclic_gc():
        analysis = analyze(load(files), **options)  # type: ignore[arg-type]
        return [report_dict(r) for r in analysis.reports], analysis.namespace_errors


PARALLEL_MIN_BYTES = 1_000_000


def _worker(args: tuple[list[str], dict]) -> tuple[str, object]:
    from podsec.errors import PodsecError

    files, options = args
    try:
        return "ok", check_files(files, **options)
    except PodsecError as exc:
        return "error", exc


def check_paths(paths: list[str], jobs: int | None = None, **options: object) -> tuple[list[dict], list[str]]:
    """Analyze paths, on several cores when the input is large and has no Namespace objects.

    Workers are forked after the imports are done, each takes a contiguous share of the files
    (so results keep file order), and the first input error in file order wins, as it would serially.
    """
    import os

    from podsec.manifest.loader import iter_manifest_files

    files = list(iter_manifest_files(paths))
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs > 1 and len(files) >= 2 * jobs and "-" not in files:
        sizes = [os.path.getsize(f) for f in files]
        if sum(sizes) >= PARALLEL_MIN_BYTES and not _mentions_namespace(files):
            return _check_parallel(files, sizes, jobs, options)
    return check_files(files, **options)


def _mentions_namespace(files: list[str]) -> bool:
    for f in files:
        with open(f, "rb") as fh:
            if b"Namespace" in fh.read():
                return True
    return False


def _check_parallel(files: list[str], sizes: list[int], jobs: int, options: dict) -> tuple[list[dict], list[str]]:
    import multiprocessing as mp

    # Warm the imports before forking so workers start ready.
    import podsec.api.types
    import podsec.api.validation
    import podsec.policy.checks
    import podsec.policy.pss  # noqa: F401

    total = sum(sizes)
    chunks: list[list[str]] = [[] for _ in range(jobs)]
    acc, k = 0, 0
    for f, sz in zip(files, sizes):
        if acc >= total * (k + 1) / jobs and k < jobs - 1:
            k += 1
        chunks[k].append(f)
        acc += sz
    ctx = mp.get_context("fork")
    with ctx.Pool(jobs) as pool, no_cyclic_gc():
        parts = pool.map(_worker, [(c, options) for c in chunks if c])
    results: list[dict] = []
    warnings: list[str] = []
    for status, value in parts:
        if status == "error":
            raise value  # type: ignore[misc]
        res, warn = value  # type: ignore[misc]
        results += res
        warnings += warn
    return results, warnings
