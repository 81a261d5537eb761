"""podsec's own checks: what Pod Security Standards do not catch but breaks pods or misleads people.

Each check is a small function of the pod template and its resolved view, registered with an
ID, a severity, why it matters and how to fix it. They read the resolved object, so they
agree with ``explain`` and ``run`` by construction.

What is decided above the judge (PUID/PGID verdicts, which volume files a container can read) is
handed in as :class:`PodFacts` by the caller (:func:`podsec.check.pod_facts`); the checks only word it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podsec.findings import Finding
from podsec.model import ResolvedContainer, ResolvedPod

CheckFn = Callable[[dict, dict, ResolvedPod], Iterator[Finding]]


@dataclass(frozen=True, slots=True)
class CheckInfo:
    id: str
    severity: str
    title: str
    why: str
    fn: CheckFn
    gated: bool = False
    """The check also receives the enabled feature gates (a fourth argument)."""
    needs_facts: bool = False
    """The check also receives the :class:`PodFacts` (``facts=``)."""


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What was decided about the pod above the judge, for the checks that word it."""

    puid: Mapping[str, Any] = field(default_factory=dict)
    """PUID/PGID verdicts by container name (:class:`podsec.puid.Verdict`), from :func:`podsec.puid.verdicts`."""
    unreadable: Sequence[Any] = ()
    """Volume files a container cannot read (:class:`podsec.volumes.readable.Unreadable`)."""


NO_FACTS = PodFacts()

REGISTRY: list[CheckInfo] = []


def check(
    id: str, severity: str, title: str, why: str, *, gated: bool = False, needs_facts: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append(CheckInfo(id, severity, title, why, fn, gated, needs_facts))
        return fn

    return register


def _d(v: object) -> dict:
    return v if isinstance(v, dict) else {}


def _containers(spec: dict) -> Iterator[tuple[str, int, dict]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(key) or ()):
            if isinstance(c, dict):
                yield key, i, c


def _sc_path(rc: ResolvedContainer, spec: dict, *rest: str | int) -> tuple[str | int, ...]:
    c = spec[rc.path[1]][rc.path[2]]
    if "securityContext" not in c:
        return rc.path
    return (*rc.path, "securityContext", *rest)


@check(
    "PS001", "critical", "pod can never start: runAsNonRoot fails",
    "The kubelet verifies runAsNonRoot before creating the container; when it fails the container "
    "stays in CreateContainerConfigError forever.",
)
def run_as_non_root_fails(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for rc in pod.containers:
        nr = rc.run_as_non_root
        if nr.ok is not False or not nr.message:
            continue
        c = spec[rc.path[1]][rc.path[2]]
        sc = _d(c.get("securityContext"))
        if "runAsUser" in sc:
            path = (*rc.path, "securityContext", "runAsUser")
            fix = "remove runAsUser: 0 or set it to a non-zero uid, e.g. 1000"
        elif "runAsUser" in _d(spec.get("securityContext")):
            path = ("spec", "securityContext", "runAsUser")
            fix = "set runAsUser to a non-zero uid"
        else:
            path = (*rc.path, "image")
            fix = "set securityContext.runAsUser to a non-zero uid (e.g. 1000), or use an image with a numeric USER"
        yield Finding(
            "PS001", "critical", f'container "{rc.name}" will not start: {nr.message}',
            path, fix=fix, container=rc.name,
        )


@check(
    "PS002", "medium", "runAsNonRoot depends on an image USER podsec cannot see",
    "With runAsNonRoot and no runAsUser, the kubelet accepts only an image whose USER is numeric and "
    "not 0; a named USER (even 'nginx') or no USER makes the container fail to start.",
)
def run_as_non_root_unverifiable(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for rc in pod.containers:
        if rc.run_as_non_root.ok is None:
            yield Finding(
                "PS002", "medium",
                f'container "{rc.name}" sets runAsNonRoot without runAsUser: it starts only if image '
                f'"{rc.image}" has a numeric, non-zero USER',
                (*rc.path, "image"),
                fix="set securityContext.runAsUser (e.g. 1000), or load the image with `podsec image load` "
                "so podsec can read its USER",
                container=rc.name,
            )


@check(
    "PS003", "high", "capability name that the runtime will not understand",
    "Kubernetes passes capability names verbatim; containerd prefixes CAP_ and upper-cases them, so "
    "CAP_NET_ADMIN becomes CAP_CAP_NET_ADMIN, which runc silently ignores and crun rejects. Lower-case "
    "names work at runtime but fail Pod Security baseline, which compares names exactly.",
)
def capability_names(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for key, i, c in _containers(spec):
        caps = _d(_d(c.get("securityContext")).get("capabilities"))
        for op in ("add", "drop"):
            names = caps.get(op)
            if not isinstance(names, list):
                continue
            for j, name in enumerate(names):
                if not isinstance(name, str) or name.upper() == "ALL":
                    continue
                path = ("spec", key, i, "securityContext", "capabilities", op, j)
                if name.upper().startswith("CAP_"):
                    effect = (
                        "is never added (runc ignores it; crun fails to start the container)"
                        if op == "add"
                        else "drops nothing"
                    )
                    yield Finding(
                        "PS003", "high",
                        f'container "{c.get("name")}" capabilities.{op} "{name}" becomes "CAP_{name.upper()}" '
                        f"and {effect}",
                        path, fix=f'write "{name[4:].upper()}" without the CAP_ prefix', container=c.get("name"),
                    )
                elif name != name.upper():
                    yield Finding(
                        "PS003", "low",
                        f'container "{c.get("name")}" capabilities.{op} "{name}" is not upper case: it works '
                        "at runtime but Pod Security Admission compares names exactly",
                        path, fix=f'write "{name.upper()}"', container=c.get("name"),
                    )


@check(
    "PS004", "medium", "added capabilities are not effective for a non-root user",
    "Kubernetes has no ambient capabilities: for a non-zero uid the kernel clears the effective and "
    "permitted sets at exec, so capabilities.add only widens the bounding set (kubernetes#56374).",
)
def caps_for_non_root(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for rc in pod.containers:
        if rc.identity.uid in (0, None) or rc.privileged:
            continue
        c = spec[rc.path[1]][rc.path[2]]
        add = _d(_d(c.get("securityContext")).get("capabilities")).get("add")
        if not isinstance(add, list):
            continue
        names = [a for a in add if isinstance(a, str) and a.upper() != "ALL"]
        if not names:
            continue
        only_nbs = all(n.upper().removeprefix("CAP_") == "NET_BIND_SERVICE" for n in names)
        note = (
            " (binding ports below 1024 still works: containerd sets net.ipv4.ip_unprivileged_port_start=0)"
            if only_nbs
            else ""
        )
        yield Finding(
            "PS004", "low" if only_nbs else "medium",
            f'container "{rc.name}" runs as uid {rc.identity.uid}, so the added capabilities '
            f"{', '.join(names)} are only in its bounding set, not effective{note}",
            (*rc.path, "securityContext", "capabilities", "add"),
            fix="grant file capabilities in the image (setcap) and keep allowPrivilegeEscalation unset, "
            "or run as root with capabilities drop: [ALL] plus only what is needed",
            container=rc.name,
        )


@check(
    "PS005", "high", "container turns seccomp off although the pod asks for it",
    "A container's seccompProfile replaces the pod's, so Unconfined in one container removes the "
    "RuntimeDefault filter the pod set for everyone.",
)
def seccomp_override(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    pod_type = _d(_d(spec.get("securityContext")).get("seccompProfile")).get("type")
    if pod_type not in ("RuntimeDefault", "Localhost"):
        return
    for rc in pod.containers:
        if rc.seccomp.type == "Unconfined" and rc.seccomp.source == "container":
            yield Finding(
                "PS005", "high",
                f'container "{rc.name}" sets seccompProfile Unconfined, overriding the pod\'s {pod_type}',
                (*rc.path, "securityContext", "seccompProfile", "type"),
                fix="remove the container's seccompProfile, or use a Localhost profile that allows what it needs",
                container=rc.name,
            )


@check(
    "PS006", "medium", "read-only root filesystem with nowhere to write",
    "With readOnlyRootFilesystem every write outside a volume fails with EROFS; most programs write "
    "at least to /tmp.",
)
def readonly_without_writable(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for rc in pod.containers:
        if rc.readonly_rootfs and not rc.writable_mounts:
            yield Finding(
                "PS006", "medium",
                f'container "{rc.name}" has a read-only root filesystem and no writable volume mount',
                (*rc.path, "securityContext", "readOnlyRootFilesystem"),
                fix="mount an emptyDir at each path the app writes (often /tmp); `podsec trace` finds them",
                container=rc.name,
            )


_NO_OWNERSHIP = {"hostPath": "hostPath", "nfs": "NFS"}


@check(
    "PS007", "medium", "fsGroup does not change ownership of this volume",
    "The kubelet applies fsGroup ownership only to emptyDir, configMap, secret, projected, downwardAPI and "
    "to block/CSI volumes that support it; hostPath and NFS files keep their owner and mode, so the "
    "group only becomes a supplementary group.",
)
def fsgroup_ignored(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    psc = _d(spec.get("securityContext"))
    if psc.get("fsGroup") is None and psc.get("fsGroupChangePolicy") is None:
        return
    used = {m.name for rc in pod.containers for m in rc.mounts}
    for i, v in enumerate(spec.get("volumes") or ()):
        if not isinstance(v, dict):
            continue
        for key, label in _NO_OWNERSHIP.items():
            if v.get(key) is not None and v.get("name") in used:
                yield Finding(
                    "PS007", "medium",
                    f'volume "{v.get("name")}" is {label}: fsGroup/fsGroupChangePolicy do not change its '
                    "files' group or mode",
                    ("spec", "volumes", i, key),
                    fix="set the directory's group and setgid bit on the server (or `podsec perms --fix`), or "
                    "run the pod with a runAsUser/runAsGroup that already owns the files",
                )




@check(
    "PS008", "high", "PUID/PGID image fights the securityContext",
    "linuxserver.io-style images start as root (s6-overlay /init) and drop to PUID:PGID themselves with "
    "setgroups()/setgid()/setuid(); runAsUser/runAsNonRoot, dropping CHOWN/SETGID/SETUID, sharing the PID "
    "namespace or a read-only root stop that init or quietly change who the app runs as.",
    needs_facts=True,
)
def puid_pgid_conflict(meta: dict, spec: dict, pod: ResolvedPod, facts: PodFacts = NO_FACTS) -> Iterator[Finding]:
    for name, v in facts.puid.items():
        if not v.conflicts:
            continue
        first = (v.fatal or v.conflicts)[0]
        yield Finding(
            "PS008", "high" if v.fatal else "medium",
            f'container "{name}" is a PUID/PGID image: {v.summary()}',
            first.field, why=f"{first.setting}: {first.breaks}", fix=first.instead, container=name,
        )


@check(
    "PS009", "critical", "pod sandbox cannot be created",
    "containerd builds the pod sandbox from pod-level runAsUser/runAsGroup; a group without a user "
    "fails RunPodSandbox, so the pod stays in ContainerCreating.",
)
def sandbox_fails(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    if pod.sandbox_error:
        yield Finding(
            "PS009", "critical", f"pod will not start: RunPodSandbox: {pod.sandbox_error}",
            ("spec", "securityContext", "runAsGroup"),
            fix="also set pod-level runAsUser, or move runAsGroup into each container's securityContext",
        )


@check(
    "PS010", "info", "no seccomp profile",
    "Kubernetes' default is Unconfined (kubelet seccompDefault is off unless a node enables it): every "
    "syscall is allowed.",
)
def seccomp_unconfined(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    for rc in pod.containers:
        if rc.seccomp.type == "Unconfined" and rc.seccomp.source == "default" and not rc.privileged:
            yield Finding(
                "PS010", "info",
                f'container "{rc.name}" runs without seccomp (Unconfined is the Kubernetes default)',
                ("spec", "securityContext") if "securityContext" in spec else rc.path,
                fix="set spec.securityContext.seccompProfile.type: RuntimeDefault",
                container=rc.name,
            )


_FIX_FS_USER = (
    "on a cluster: put the owner on the volume instead — configMap/secret/projected/downwardAPI defaultUser or an "
    "item's user (Kubernetes 1.37 alpha, gate AtomicWriteVolumeUserFields) — or copy and chown the files in an "
    "initContainer; podsec run honours fsUser only with --feature-gates PodSecurityContextFSUser=true"
)
_FIX_USER_FIELDS = (
    "enable AtomicWriteVolumeUserFields on kube-apiserver and every kubelet (Kubernetes 1.37+), or copy and chown "
    "the files in an initContainer; podsec run honours it with --feature-gates AtomicWriteVolumeUserFields=true"
)


@check(
    "PS011", "high", "field needs a feature gate a stock cluster does not have",
    "Fields behind an alpha (or never merged) feature gate do nothing on a stock cluster: the API server drops a "
    "gated field when the Pod is created, and refuses a field it does not know under kubectl's default "
    "--validate=strict. Files in Secret and ConfigMap volumes then stay owned by root, which ssh (StrictModes) "
    "and psql (.pgpass) refuse for a non-root user.",
    gated=True,
)
def feature_gated_fields(meta: dict, spec: dict, pod: ResolvedPod, gates: frozenset[str] = frozenset()) -> Iterator[
    Finding
]:
    from podsec.features import POD_SECURITY_CONTEXT_FS_USER, gated_fields, stock_behaviour

    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    for f in gated_fields(spec):
        if f.gate in gates:
            continue
        if f.gate == POD_SECURITY_CONTEXT_FS_USER:
            yield Finding(
                "PS011", "high", stock_behaviour(f.gate, "fsUser") + "; the files stay owned by root",
                f.path, fix=_FIX_FS_USER,
            )
            continue
        vol = volumes[f.path[2]] if isinstance(f.path[2], int) and f.path[2] < len(volumes) else {}
        where = f'{f.name} {f.value} of volume "{_d(vol).get("name")}"'
        yield Finding(
            "PS011", "medium",
            stock_behaviour(f.gate, where) + "; the files stay owned by root",
            f.path, fix=_FIX_USER_FIELDS,
        )


_OWNER_CHECKING = {
    "authorized_keys": "sshd (StrictModes) also wants the file owned by the user",
    ".pgpass": "libpq also wants no group or world bits (0600): with fsGroup it ignores the file",
    "id_rsa": "ssh also wants a private key owned by the user and not readable by others",
    "id_ecdsa": "ssh also wants a private key owned by the user and not readable by others",
    "id_ed25519": "ssh also wants a private key owned by the user and not readable by others",
}


@check(
    "PS012", "high", "a container cannot read its Secret/ConfigMap files",
    "The kubelet writes configMap, secret, projected and downwardAPI files owned by root with the item's mode "
    "(else defaultMode, 0644); with fsGroup they get its group and owner/group read bits. A non-root container "
    "that is neither the owner nor in the file's group reads only through the bits for others, so 0600 or 0400 "
    "files are 'Permission denied' for it.",
    needs_facts=True,
)
def unreadable_volume_files(meta: dict, spec: dict, pod: ResolvedPod, facts: PodFacts = NO_FACTS) -> Iterator[
    Finding
]:
    for u in facts.unreadable:
        f, rc = u.files, u.container
        what = f'item "{f.item}"' if f.item else "its files"
        name = (f.item or "").rsplit("/", 1)[-1]
        extra = f"; {_OWNER_CHECKING[name]}" if name in _OWNER_CHECKING else ""
        groups = "groups " + ",".join(map(str, u.groups))
        if rc.identity.groups is None:
            groups = f"{groups} and the image's" if groups != "groups " else "groups from the image"
        yield Finding(
            "PS012", "high",
            f'container "{rc.name}" (uid {rc.identity.uid}, {groups}) '
            f'cannot read {what} of {u.volume_type} volume "{u.volume}": owner {f.uid}:{f.gid}, mode 0{f.mode:o} '
            f"(Permission denied){extra}",
            f.field, container=rc.name,
            fix="set the pod's fsGroup (the files get its group and group read: 0600 becomes 0640), or a mode that "
            "lets others read if the content is not secret; to make the user the owner (ssh, psql) Kubernetes "
            "has only proposals: defaultUser/user (gate AtomicWriteVolumeUserFields) or fsUser "
            "(--feature-gates PodSecurityContextFSUser=true in podsec), else copy the files in an initContainer",
        )


@check(
    "PS013", "high", "a capability that changes the node, not only the pod",
    "Containers share the host's kernel. Capabilities the kernel checks against the host (the initial user "
    "namespace) act on the whole node: its clock, its kernel modules, its network or its processes. Other pods "
    "on the node and the node itself are affected; hostUsers: false (a user namespace) takes that away.",
)
def host_changing_capabilities(meta: dict, spec: dict, pod: ResolvedPod) -> Iterator[Finding]:
    from podsec.oci.hostcaps import container_host_effects

    for rc in pod.containers:
        effects, certain = container_host_effects(pod, rc)
        if not effects:
            continue
        cond = " if the image's user is root" if not certain else ""
        c = spec[rc.path[1]][rc.path[2]]
        add = _d(_d(c.get("securityContext")).get("capabilities")).get("add")
        path = (*rc.path, "securityContext", "privileged") if rc.privileged else (
            (*rc.path, "securityContext", "capabilities", "add") if isinstance(add, list) else rc.path)
        names = sorted({e.short for e in effects})
        yield Finding(
            "PS013", "high" if certain else "medium",
            f'container "{rc.name}" can change the node{cond}: ' + "; ".join(e.sentence() for e in effects),
            path, container=rc.name,
            fix=f"remove {', '.join(names)} from capabilities.add (or privileged: true), or set hostUsers: false so "
            "the capabilities stay inside the pod's user namespace",
        )


def run_checks(
    meta: dict, spec: dict, pod: ResolvedPod, feature_gates: frozenset[str] = frozenset(),
    facts: PodFacts = NO_FACTS,
) -> list[Finding]:
    out: list[Finding] = []
    for info in REGISTRY:
        if info.gated:
            found = info.fn(meta, spec, pod, feature_gates)  # type: ignore[call-arg]
        elif info.needs_facts:
            found = info.fn(meta, spec, pod, facts=facts)  # type: ignore[call-arg]
        else:
            found = info.fn(meta, spec, pod)
        for f in found:
            if not f.why:
                f.why = info.why
            out.append(f)
    return out
