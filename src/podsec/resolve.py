"""Each container's effective security settings, as the kubelet and containerd would decide them.

This is the one function the whole project calls (explain, check, run). It follows
``shared/reference/kubelet-semantics.md`` §1, §2, §5 and ``oci-translation.md`` §1–§7:
pod+container merge, image USER, runAsNonRoot verification with the kubelet's words,
containerd's user/group resolution and its capability algorithm.
"""

from __future__ import annotations

from collections.abc import Callable

from podsec.goquote import go_quote
from podsec.image.model import ImageInfo
from podsec.model import (
    AppArmorProfile,
    Capabilities,
    Identity,
    Mount,
    NonRootOutcome,
    Path,
    ResolvedContainer,
    ResolvedPod,
    SeccompProfile,
)
from podsec.oci.caps import CAPABILITY_NUMBERS, DEFAULT_CAPS, host_capabilities
from podsec.oci.plan import sandbox_user_error
from podsec.oci.seccomp import KUBELET_SECCOMP_ROOT

MAX_ID = 2147483647
ALL_CAPS: tuple[str, ...] = tuple(CAPABILITY_NUMBERS)
"""Capability numbers 0..40 in kernel order; the index is the bit (the table is :mod:`podsec.oci.caps`)."""
CAP_NUMBER = CAPABILITY_NUMBERS

DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

VOLUME_SOURCES = (
    "emptyDir", "hostPath", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim",
    "nfs", "csi", "ephemeral", "image", "iscsi", "glusterfs", "rbd", "cephfs", "fc", "azureFile",
    "azureDisk", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "flexVolume", "cinder",
    "flocker", "vsphereVolume", "quobyte", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)  # fmt: skip

ImageLookup = Callable[[str], ImageInfo | None]

CONTAINER_KINDS = (("initContainers", "init"), ("containers", "container"), ("ephemeralContainers", "ephemeral"))


def _d(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def _bool(value: object) -> bool | None:
    return value if type(value) is bool else None


def format_pod(metadata: dict) -> str:
    """The kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    ns = metadata.get("namespace") or "default"
    return f"{metadata.get('name') or ''}_{ns}({metadata.get('uid') or ''})"


def image_user(user: str | None) -> tuple[int | None, str]:
    """containerd's ``getUserFromImage``: the part before ``:`` as a uid, else as a name."""
    if not user:
        return None, ""
    part = user.split(":", 1)[0]
    try:
        return int(part, 10), ""
    except ValueError:
        return None, part


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 64): no spaces, no underscores, optional sign."""
    body = s[1:] if s[:1] in "+-" else s
    if not body or not body.isascii() or not body.isdigit():
        return None
    v = int(s, 10)
    return v if -(2**63) <= v < 2**63 else None


def verify_run_as_non_root(
    metadata: dict, name: str, run_as_non_root: bool | None, run_as_user: int | None,
    uid: int | None, username: str, image_known: bool,
) -> NonRootOutcome:
    """kubelet ``verifyRunAsNonRoot`` with its exact messages (kubelet-semantics §2.2)."""
    if not run_as_non_root:
        return NonRootOutcome(required=False, ok=True)
    pod = go_quote(format_pod(metadata))
    suffix = f"(pod: {pod}, container: {name})"
    if run_as_user is not None:
        if run_as_user == 0:
            return NonRootOutcome(True, False, f"container's runAsUser breaks non-root policy {suffix}")
        return NonRootOutcome(True, True)
    if not image_known:
        return NonRootOutcome(True, None, "depends on the image's USER: it must be numeric and not 0")
    if uid is None and username:
        return NonRootOutcome(
            True, False,
            f"container has runAsNonRoot and image has non-numeric user ({username}), "
            f"cannot verify user is non-root {suffix}",
        )
    if uid is not None:
        if uid == 0:
            return NonRootOutcome(True, False, f"container has runAsNonRoot and image will run as root {suffix}")
        if uid < 0 or uid > MAX_ID:
            return NonRootOutcome(
                True, False,
                f"container has runAsNonRoot and image has an invalid user id ({uid}). (Must be 1-({MAX_ID})): "
                f"must be between 0 and {MAX_ID}, inclusive {suffix}",
            )
    return NonRootOutcome(True, True)


def resolve_capabilities(sc: dict, privileged: bool, uid: int | None, all_caps: tuple[str, ...]) -> Capabilities:
    """containerd ``WithCapabilities`` (``WithPrivileged``: every capability of ``all_caps``, the host's) then
    the kernel's execve rules (oci-translation §5). The one place the capability lists are decided: the OCI
    spec (:mod:`podsec.oci.steps`), explain and the checks all read its result."""
    caps = sc.get("capabilities")
    if privileged:
        bounding = list(all_caps)
        source = "container privileged"
    elif not isinstance(caps, dict):
        bounding = list(DEFAULT_CAPS)
        source = "default"
    else:
        add = [a for a in caps.get("add") or () if isinstance(a, str)]
        drop = [d for d in caps.get("drop") or () if isinstance(d, str)]
        bounding = list(DEFAULT_CAPS)
        if any(a.upper() == "ALL" for a in add):
            bounding = list(all_caps)
        if any(d.upper() == "ALL" for d in drop):
            bounding = []
        for a in add:
            if a.upper() == "ALL":
                continue
            name = "CAP_" + a.upper()
            if name not in bounding:
                bounding.append(name)
        for d in drop:
            if d.upper() == "ALL":
                continue
            name = "CAP_" + d.upper()
            if name in bounding:
                bounding.remove(name)
        source = "container"
    unknown = tuple(c for c in bounding if c not in CAP_NUMBER)
    known = tuple(sorted((c for c in bounding if c in CAP_NUMBER), key=CAP_NUMBER.__getitem__))
    if uid == 0:
        effective = known
    elif uid is None:
        effective = ()
    else:
        effective = ()  # execve clears permitted/effective for non-root without file caps or ambient
    return Capabilities(bounding=tuple(bounding), effective=effective, unknown=unknown, source=source)


def host_all_caps() -> tuple[str, ...]:
    """Every capability containerd would grant for ``add: [ALL]``: its own CapEff."""
    return host_capabilities()


def _seccomp(pod_sc: dict, sc: dict, seccomp_default: bool) -> SeccompProfile:
    """kubelet getSeccompProfile: container → pod → Unconfined (seccompDefault=false)."""
    for prof, source in ((sc.get("seccompProfile"), "container"), (pod_sc.get("seccompProfile"), "pod")):
        if isinstance(prof, dict):
            t = prof.get("type")
            if t == "RuntimeDefault":
                return SeccompProfile("RuntimeDefault", source=source)
            if t == "Localhost":
                lp = prof.get("localhostProfile")
                if not isinstance(lp, str) or not lp:
                    return SeccompProfile(
                        "Localhost", source=source,
                        error="localhostProfile must be set if seccompProfile type is Localhost.",
                    )
                return SeccompProfile("Localhost", f"{KUBELET_SECCOMP_ROOT}/{lp}", source=source)
            return SeccompProfile("Unconfined", source=source)
    if seccomp_default:
        return SeccompProfile("RuntimeDefault", source="kubelet seccompDefault")
    return SeccompProfile("Unconfined", source="default")


def _apparmor(metadata: dict, pod_sc: dict, sc: dict, name: str) -> AppArmorProfile:
    prof = sc.get("appArmorProfile")
    if isinstance(prof, dict):
        return AppArmorProfile(prof.get("type"), prof.get("localhostProfile"), "container")
    ann = _d(metadata.get("annotations")).get(f"container.apparmor.security.beta.kubernetes.io/{name}")
    if isinstance(ann, str) and ann:
        if ann == "runtime/default":
            return AppArmorProfile("RuntimeDefault", source="annotation")
        if ann == "unconfined":
            return AppArmorProfile("Unconfined", source="annotation")
        if ann.startswith("localhost/"):
            return AppArmorProfile("Localhost", ann[len("localhost/"):], "annotation")
    prof = pod_sc.get("appArmorProfile")
    if isinstance(prof, dict):
        return AppArmorProfile(prof.get("type"), prof.get("localhostProfile"), "pod")
    return AppArmorProfile(None)


def resolve_identity(pod_sc: dict, sc: dict, image: ImageInfo | None) -> tuple[Identity, list[str]]:
    """What the kubelet sends (CRI) and what containerd turns it into (kubelet-semantics §5.1)."""
    notes: list[str] = []
    run_as_user = _int(sc.get("runAsUser"))
    uid_source = "container"
    if run_as_user is None:
        run_as_user = _int(pod_sc.get("runAsUser"))
        uid_source = "pod"
    run_as_group = _int(sc.get("runAsGroup"))
    gid_source = "container"
    if run_as_group is None:
        run_as_group = _int(pod_sc.get("runAsGroup"))
        gid_source = "pod"
    ident = Identity(uid=None, gid=None, groups=None, run_as_user=run_as_user)
    ident.cri_run_as_group = run_as_group
    username = ""
    if run_as_user is not None:
        ident.cri_run_as_user = run_as_user
        ident.uid = run_as_user
        ident.uid_source = uid_source
    elif image is not None:
        img_uid, img_name = image_user(image.user)
        if img_uid is not None:
            ident.cri_run_as_user = img_uid
            ident.uid = img_uid
            ident.uid_source = "image"
        elif img_name:
            ident.cri_run_as_username = img_name
            username = img_name
            ident.uid_source = "image"
        else:
            ident.cri_run_as_user = 0
            ident.uid = 0
            ident.uid_source = "image (no USER: root)"
    else:
        ident.uid_source = "image"
        notes.append("user: the image's USER (root when it has none), unless runAsUser is set")

    # containerd WithUser(userstr): numeric uid → passwd gid (else 0); name → passwd lookup.
    if username:
        entry = image.user_by_name(username) if image else None
        if entry is None:
            ident.error = (
                f"failed to create containerd container: unable to find user {username}: "
                "no matching entries in passwd file"
            )
        else:
            ident.uid = entry.uid
            ident.username = entry.name
            ident.gid = entry.gid
            ident.gid_source = "image /etc/passwd"
    elif ident.uid is not None and image is not None:
        entry = image.user_by_uid(ident.uid)
        if entry is not None:
            ident.username = entry.name
            ident.gid = entry.gid
            ident.gid_source = "image /etc/passwd"
        else:
            ident.gid = 0
            ident.gid_source = "default (uid not in image /etc/passwd)"
    if run_as_group is not None:
        ident.gid = run_as_group
        ident.gid_source = gid_source
    elif ident.gid is None:
        notes.append("gid: the uid's group in the image's /etc/passwd, else 0")
    return ident, notes


def _groups(
    ident: Identity, pod_sc: dict, image: ImageInfo | None, strict: bool, extra_groups: tuple[int, ...],
) -> list[str]:
    """Supplementary groups: primary gid ∪ image memberships (Merge) ∪ fsGroup ∪ supplementalGroups."""
    notes: list[str] = []
    sources: dict[int, str] = {}
    fs_group = _int(pod_sc.get("fsGroup"))
    supp = [g for g in (pod_sc.get("supplementalGroups") or ()) if type(g) is int]
    if ident.gid is not None:
        sources[ident.gid] = "primary gid"
    if fs_group is not None:
        sources.setdefault(fs_group, "pod fsGroup")
    for g in supp:
        sources.setdefault(g, "pod supplementalGroups")
    for g in extra_groups:
        sources.setdefault(g, "volume gid annotation")
    if not strict:
        if image is not None:
            name = ident.username or ident.cri_run_as_username
            if name:
                for g in image.group or ():
                    if name in g.members and g.name != name:
                        sources.setdefault(g.gid, f"image /etc/group ({g.name})")
        else:
            notes.append("groups: also every image /etc/group entry that lists the user (policy Merge)")
    ident.group_sources = dict(sorted(sources.items()))
    ident.groups = tuple(sorted(sources)) if ident.gid is not None else None
    return notes


def _volume_type(vol: dict) -> str:
    for key in VOLUME_SOURCES:
        if key in vol and vol[key] is not None:
            return key
    return "emptyDir"  # API defaulting: a volume with no source is an emptyDir


def resolve_mounts(spec: dict, container: dict, path: Path) -> list[Mount]:
    volumes = {v.get("name"): v for v in spec.get("volumes") or () if isinstance(v, dict)}
    out: list[Mount] = []
    for i, vm in enumerate(container.get("volumeMounts") or ()):
        if not isinstance(vm, dict):
            continue
        vol = volumes.get(vm.get("name"), {})
        vtype = _volume_type(vol) if vol else "unknown"
        read_only = vm.get("readOnly") is True
        medium = _d(vol.get("emptyDir")).get("medium") if vtype == "emptyDir" else None
        if vtype in ("configMap", "secret", "projected", "downwardAPI"):
            read_only = True  # atomic-writer volumes are always mounted read-only
        out.append(
            Mount(
                name=str(vm.get("name") or ""),
                mount_path=str(vm.get("mountPath") or ""),
                read_only=read_only,
                volume_type=vtype,
                sub_path=vm.get("subPath") or None,
                sub_path_expr=vm.get("subPathExpr") or None,
                medium=medium if isinstance(medium, str) and medium else None,
                field=(*path, "volumeMounts", i),
            )
        )
    return out


def resolve_pod(
    metadata: dict | None,
    spec: dict | None,
    images: ImageLookup | None = None,
    *,
    kind: str = "Pod",
    seccomp_default: bool = False,
    all_caps: tuple[str, ...] | None = None,
) -> ResolvedPod:
    """Resolve every container of a pod (init, regular, ephemeral) as the kubelet + containerd would."""
    metadata = metadata or {}
    spec = spec or {}
    pod_sc = _d(spec.get("securityContext"))
    caps_all = all_caps if all_caps is not None else host_all_caps()
    strict = pod_sc.get("supplementalGroupsPolicy") == "Strict"
    host_users = spec.get("hostUsers") is not False
    containers: list[ResolvedContainer] = []
    for key, ckind in CONTAINER_KINDS:
        for i, c in enumerate(spec.get(key) or ()):
            if not isinstance(c, dict):
                continue
            path: Path = ("spec", key, i)
            sc = _d(c.get("securityContext"))
            name = str(c.get("name") or "")
            image_ref = c.get("image") if isinstance(c.get("image"), str) else ""
            image = images(image_ref) if images and image_ref else None
            ident, notes = resolve_identity(pod_sc, sc, image)
            notes += _groups(ident, pod_sc, image, strict, ())
            privileged = sc.get("privileged") is True
            caps = resolve_capabilities(sc, privileged, ident.uid, caps_all)
            ape = _bool(sc.get("allowPrivilegeEscalation"))
            proc_mount = sc.get("procMount") if sc.get("procMount") in ("Default", "Unmasked") else "Default"
            if privileged or proc_mount == "Unmasked":
                masked, ro_paths = (), ()
            else:
                masked, ro_paths = DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
            rnr = _bool(sc.get("runAsNonRoot"))
            rnr_source = "container"
            if rnr is None:
                rnr = _bool(pod_sc.get("runAsNonRoot"))
                rnr_source = "pod"
            img_uid, img_name = (None, "")
            if image is not None:
                img_uid, img_name = image_user(image.user)
                if img_uid is None and not img_name:
                    img_uid = 0
            nonroot = verify_run_as_non_root(
                metadata, name, rnr, ident.run_as_user, img_uid, img_name, image is not None
            )
            if nonroot.required:
                nonroot.source = rnr_source
            selinux = sc.get("seLinuxOptions") if isinstance(sc.get("seLinuxOptions"), dict) else None
            if selinux is None and isinstance(pod_sc.get("seLinuxOptions"), dict):
                selinux = pod_sc["seLinuxOptions"]
            sources = {
                "privileged": "container" if "privileged" in sc else "default",
                "allowPrivilegeEscalation": "container" if ape is not None else "default",
                "readOnlyRootFilesystem": "container" if "readOnlyRootFilesystem" in sc else "default",
                "procMount": "container" if "procMount" in sc else "default",
            }
            containers.append(
                ResolvedContainer(
                    name=name,
                    kind=ckind,
                    index=i,
                    path=path,
                    image=image_ref,
                    image_known=image is not None,
                    identity=ident,
                    run_as_non_root=nonroot,
                    capabilities=caps,
                    privileged=privileged,
                    no_new_privileges=ape is False,
                    seccomp=SeccompProfile("Unconfined", source="container privileged")
                    if privileged
                    else _seccomp(pod_sc, sc, seccomp_default),
                    apparmor=_apparmor(metadata, pod_sc, sc, name),
                    selinux=selinux,
                    masked_paths=masked,
                    readonly_paths=ro_paths,
                    readonly_rootfs=sc.get("readOnlyRootFilesystem") is True,
                    proc_mount=proc_mount,
                    mounts=resolve_mounts(spec, c, path),
                    depends_on_image=notes,
                    sources=sources,
                )
            )
    sysctls = tuple(
        (str(s.get("name")), str(s.get("value", "")))
        for s in pod_sc.get("sysctls") or ()
        if isinstance(s, dict) and s.get("name")
    )
    sandbox_user, sandbox_group = _int(pod_sc.get("runAsUser")), _int(pod_sc.get("runAsGroup"))
    return ResolvedPod(
        sandbox_error=sandbox_user_error(sandbox_user, sandbox_group),
        sandbox_user=sandbox_user,
        fs_user=_int(pod_sc.get("fsUser")),
        sandbox_group=sandbox_group,
        kind=kind,
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or "default"),
        uid=str(metadata.get("uid") or ""),
        host_network=spec.get("hostNetwork") is True,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        share_process_namespace=spec.get("shareProcessNamespace") is True,
        host_users=host_users,
        fs_group=_int(pod_sc.get("fsGroup")),
        fs_group_change_policy=pod_sc.get("fsGroupChangePolicy") or "Always",
        supplemental_groups=tuple(g for g in pod_sc.get("supplementalGroups") or () if type(g) is int),
        supplemental_groups_policy="Strict" if strict else "Merge",
        sysctls=sysctls,
        containers=containers,
    )
