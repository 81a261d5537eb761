"""Pod-level rules (``ValidatePodSpec`` beyond the containers): sysctls, the pod security context, Windows
hostProcess, ``hostUsers: false`` and ``spec.os``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from podsec.api.fielderror import FieldError
from podsec.api.validation.common import (
    _DEFAULT_OPTIONS,
    _EMPTY,
    _FSGROUP_POLICIES,
    _HOST_PROCESS_ALL,
    _HOST_PROCESS_SAME,
    _HOST_USERS_FALSE,
    _IPC_SYSCTLS,
    _MAX_ID,
    _NO_ITEMS,
    _NOT_FOR_LINUX,
    _NOT_FOR_WINDOWS,
    _OS_NAMES,
    _POD_ID_FIELDS,
    _POD_ID_FIELDS_FS_USER,
    _RESTART_POLICIES,
    _SECURITY_ANNOTATIONS,
    _SELINUX_POLICIES,
    _SUPPLEMENTAL_POLICIES,
    _SYSCTL_MSG,
    _SYSCTL_RE,
    ValidationOptions,
    _check_id,
    _check_ids,
    _d,
    _name,
    _s,
    _sc,
)
from podsec.api.validation.containers import (
    _as_container,
    _containers,
    _Ctx,
    _ephemeral_containers,
    _host_network_ports,
    _init_containers,
)
from podsec.api.validation.meta import (
    _annotations_match_fields,
    _pod_annotations,
)
from podsec.api.validation.security_context import (
    _apparmor_field,
    _seccomp_field,
    _windows_options,
)
from podsec.api.validation.volumes import (
    _volumes,
)

# ---------------------------------------------------------------------------------------------
# Pod level


def _sysctl_namespace(name: str) -> str:
    """component-helpers sysctl.GetNamespace: "Net", "IPC" or ""."""
    first = -1
    for i, ch in enumerate(name):
        if ch in "./":
            first = i
            break
    if first != -1 and name[first] == "/":
        name = name.translate(_SLASH_SWAP)
    star = name.find("*")
    if star != -1:
        name = name[:star]
    if name in _IPC_SYSCTLS:
        return "IPC"
    if name.startswith("net."):
        return "Net"
    if name.startswith("fs.mqueue."):
        return "IPC"
    return ""


_SLASH_SWAP = str.maketrans({".": "/", "/": "."})


def _sysctls(sysctls: list, sp: dict, errs: list[FieldError]) -> None:
    """validateSysctls (create: namespaced sysctls are refused with hostNetwork/hostIPC)."""
    seen: set[str] = set()
    host_net = sp.get("hostNetwork") is True
    host_ipc = sp.get("hostIPC") is True
    for i, s in enumerate(sysctls):
        s = s if isinstance(s, dict) else _EMPTY
        name = _name(s)
        path = ("spec", "securityContext", "sysctls", i, "name")
        if not name:
            errs.append(FieldError("Required", path))
        elif len(name) > 253 or not _SYSCTL_RE.fullmatch(name):
            errs.append(FieldError("Invalid", path, _SYSCTL_MSG, name))
        elif name in seen:
            errs.append(FieldError("Duplicate", path, value=name))
        if host_net or host_ipc:
            ns = _sysctl_namespace(name)
            if host_net and ns == "Net":
                errs.append(
                    FieldError("Invalid", path, "may not be specified when 'hostNetwork' is true", name)
                )
            elif host_ipc and ns == "IPC":
                errs.append(FieldError("Invalid", path, "may not be specified when 'hostIPC' is true", name))
        seen.add(name)


def _pod_security_context(
    psc: dict | None, sp: dict, opts: ValidationOptions, errs: list[FieldError]
) -> None:
    """validatePodSpecSecurityContext (the internal PodSecurityContext includes spec.host*)."""
    base = ("spec", "securityContext")
    if psc:
        _check_ids(psc, _POD_ID_FIELDS_FS_USER if opts.fs_user else _POD_ID_FIELDS, base, errs)
        groups = psc.get("supplementalGroups")
        if groups and isinstance(groups, list):
            for g, gid in enumerate(groups):
                if not (type(gid) is int and 0 <= gid <= _MAX_ID):
                    _check_id(gid, (*base, "supplementalGroups", g), errs)
    if sp.get("shareProcessNamespace") is True and sp.get("hostPID") is True:
        errs.append(
            FieldError(
                "Invalid",
                (*base, "shareProcessNamespace"),
                "ShareProcessNamespace and HostPID cannot both be enabled",
                True,
                where=("spec", "shareProcessNamespace"),
            )
        )
    if not psc:
        return
    sysctls = psc.get("sysctls")
    if sysctls and isinstance(sysctls, list):
        _sysctls(sysctls, sp, errs)
    pol = psc.get("fsGroupChangePolicy")
    if pol is not None and isinstance(pol, str) and pol not in _FSGROUP_POLICIES:
        errs.append(
            FieldError("NotSupported", (*base, "fsGroupChangePolicy"), value=pol, supported=_FSGROUP_POLICIES)
        )
    v = psc.get("seccompProfile")
    if v is not None:
        _seccomp_field(v, (*base, "seccompProfile"), errs)
    v = psc.get("windowsOptions")
    if v is not None:
        _windows_options(v, (*base, "windowsOptions"), errs)
    v = psc.get("appArmorProfile")
    if v is not None:
        _apparmor_field(v, (*base, "appArmorProfile"), errs)
    pol = psc.get("supplementalGroupsPolicy")
    if pol is not None and isinstance(pol, str) and pol not in _SUPPLEMENTAL_POLICIES:
        errs.append(
            FieldError(
                "NotSupported",
                (*base, "supplementalGroupsPolicy"),
                value=pol,
                supported=_SUPPLEMENTAL_POLICIES,
            )
        )
    pol = psc.get("seLinuxChangePolicy")
    if pol is not None and isinstance(pol, str):
        allowed = ("Recursive",) if opts.allow_only_recursive_selinux_change_policy else _SELINUX_POLICIES
        if pol not in allowed:
            errs.append(
                FieldError("NotSupported", (*base, "seLinuxChangePolicy"), value=pol, supported=allowed)
            )


def _visit(inits: list, ctrs: list, ephs: list) -> Iterator[tuple[dict, tuple]]:
    """podshelper.VisitContainersWithPath order: init, regular, ephemeral."""
    for i, c in enumerate(inits):
        yield _as_container(c), ("spec", "initContainers", i)
    for i, c in enumerate(ctrs):
        yield _as_container(c), ("spec", "containers", i)
    for i, c in enumerate(ephs):
        yield _as_container(c), ("spec", "ephemeralContainers", i)


def _host_process(
    psc: dict | None,
    sp: dict,
    visit: list[tuple[dict, tuple]],
    opts: ValidationOptions,
    errs: list[FieldError],
) -> None:
    """validateWindowsHostProcessPod."""
    pod_wo = _d(psc.get("windowsOptions")) if psc else None
    pod_hp = pod_wo.get("hostProcess") if pod_wo else None
    if not isinstance(pod_hp, bool):
        pod_hp = None
    count = 0
    hp_count = 0
    for c, cpath in visit:
        count += 1
        wo = _sc(c).get("windowsOptions")
        c_hp = wo.get("hostProcess") if isinstance(wo, dict) else None
        if not isinstance(c_hp, bool):
            c_hp = None
        if pod_hp is not None and c_hp is not None and pod_hp != c_hp:
            errs.append(
                FieldError(
                    "Invalid",
                    (*cpath, "securityContext", "windowsOptions", "hostProcess"),
                    _HOST_PROCESS_SAME + ("true" if pod_hp else "false"),
                    c_hp,
                )
            )
        if c_hp is True or (c_hp is None and pod_hp is True):
            hp_count += 1
    if hp_count:
        if hp_count != count:
            errs.append(
                FieldError(
                    "Invalid",
                    ("spec",),
                    _HOST_PROCESS_ALL,
                    "",
                )
            )
        if sp.get("hostNetwork") is not True:
            errs.append(
                FieldError(
                    "Invalid",
                    ("spec", "hostNetwork"),
                    "hostNetwork must be true if pod contains any hostProcess containers",
                    False,
                )
            )
        if not opts.allow_privileged:
            errs.append(
                FieldError("Forbidden", ("spec",), "hostProcess containers are disallowed by cluster policy")
            )


def _host_users(sp: dict, errs: list[FieldError]) -> None:
    """validateHostUsers — the capitalised ``HostPID``/``HostIPC`` segments are upstream's."""
    if sp.get("hostUsers") is not False:
        return
    if sp.get("hostNetwork") is True:
        errs.append(FieldError("Forbidden", ("spec", "hostNetwork"), _HOST_USERS_FALSE))
    if sp.get("hostPID") is True:
        errs.append(
            FieldError("Forbidden", ("spec", "HostPID"), _HOST_USERS_FALSE, where=("spec", "hostPID"))
        )
    if sp.get("hostIPC") is True:
        errs.append(
            FieldError("Forbidden", ("spec", "HostIPC"), _HOST_USERS_FALSE, where=("spec", "hostIPC"))
        )


_WINDOWS_POD_FIELDS = (
    ("securityContext", "appArmorProfile"),
    ("securityContext", "seLinuxOptions"),
    ("spec", "hostUsers"),
    ("spec", "hostPID"),
    ("spec", "hostIPC"),
    ("securityContext", "seccompProfile"),
    ("securityContext", "fsGroup"),
    ("securityContext", "fsGroupChangePolicy"),
    ("securityContext", "sysctls"),
    ("spec", "shareProcessNamespace"),
    ("securityContext", "runAsUser"),
    ("securityContext", "runAsGroup"),
    ("securityContext", "supplementalGroups"),
    ("securityContext", "supplementalGroupsPolicy"),
    ("securityContext", "seLinuxChangePolicy"),
)
_WINDOWS_CONTAINER_FIELDS = (
    "appArmorProfile",
    "seLinuxOptions",
    "seccompProfile",
    "capabilities",
    "readOnlyRootFilesystem",
    "privileged",
    "allowPrivilegeEscalation",
    "procMount",
    "runAsUser",
    "runAsGroup",
)


def _os(psc: dict | None, sp: dict, visit: list[tuple[dict, tuple]], errs: list[FieldError]) -> None:
    """validateOS, then validateLinux / validateWindows."""
    os_ = sp.get("os")
    if os_ is None:
        return
    os_ = os_ if isinstance(os_, dict) else _EMPTY
    name = _s(os_.get("name")) or ""
    if not name:
        errs.append(FieldError("Required", ("spec", "os", "name"), "cannot be empty"))
        return
    if name not in _OS_NAMES:
        errs.append(FieldError("NotSupported", ("spec", "os"), value=name, supported=_OS_NAMES))
        return
    psc = psc or _EMPTY
    if name == "linux":
        if psc.get("windowsOptions") is not None:
            errs.append(
                FieldError("Forbidden", ("spec", "securityContext", "windowsOptions"), _NOT_FOR_LINUX)
            )
        for c, cpath in visit:
            if _sc(c).get("windowsOptions") is not None:
                errs.append(
                    FieldError("Forbidden", (*cpath, "securityContext", "windowsOptions"), _NOT_FOR_LINUX)
                )
        return
    for where, fld in _WINDOWS_POD_FIELDS:
        if where == "spec":
            v = sp.get(fld)
            hit = v is True if fld in ("hostPID", "hostIPC") else v is not None
            if hit:
                errs.append(FieldError("Forbidden", ("spec", fld), _NOT_FOR_WINDOWS))
        else:
            v = psc.get(fld)
            hit = bool(v) if fld == "sysctls" else v is not None
            if hit:
                errs.append(FieldError("Forbidden", ("spec", "securityContext", fld), _NOT_FOR_WINDOWS))
    for c, cpath in visit:
        sc = _sc(c)
        if not sc:
            continue
        for fld in _WINDOWS_CONTAINER_FIELDS:
            if sc.get(fld) is not None:
                errs.append(FieldError("Forbidden", (*cpath, "securityContext", fld), _NOT_FOR_WINDOWS))


# ---------------------------------------------------------------------------------------------
# Entry point


def validate_pod(
    metadata: dict | None, spec: dict | None, options: ValidationOptions = _DEFAULT_OPTIONS
) -> list[FieldError]:
    """Every error the API server would report for this pod (or pod template), in its order.

    Paths start at the pod (template) root: ``("spec", "containers", 0, …)``; a workload's caller
    renders them with ``prefix=("spec", "template")``.  An empty list means the API accepts it.
    """
    errs: list[FieldError] = []
    meta = metadata if isinstance(metadata, dict) else _EMPTY
    sp = spec if isinstance(spec, dict) else _EMPTY
    is_pod = options.resource_is_pod

    v = sp.get("initContainers")
    inits = v if v and isinstance(v, list) else _NO_ITEMS
    v = sp.get("containers")
    ctrs = v if v and isinstance(v, list) else _NO_ITEMS
    v = sp.get("ephemeralContainers")
    ephs = v if v and isinstance(v, list) else _NO_ITEMS
    psc = sp.get("securityContext")
    if not isinstance(psc, dict):
        psc = None
    ann = meta.get("annotations")
    # Only the seccomp/AppArmor annotations matter here; most pods have none.
    if (
        not ann
        or not isinstance(ann, dict)
        or not any(isinstance(k, str) and k.startswith(_SECURITY_ANNOTATIONS) for k in ann)
    ):
        ann = None

    # metadata: ValidatePodSpecificAnnotations
    if ann:
        names = {_name(_as_container(c)) for c in inits}
        names.update(_name(_as_container(c)) for c in ctrs)
        names.update(_name(_as_container(c)) for c in ephs)
        if is_pod:
            _pod_annotations(ann, names, ("metadata", "annotations"), errs)
        else:  # ValidatePodTemplateSpec says "annotations", the manifest has "metadata.annotations"
            _pod_annotations(ann, names, ("annotations",), errs)
            errs[:] = [replace(e, where=("metadata", *e.path)) for e in errs]

    # ValidatePodSpec
    hu = sp.get("hostUsers")
    ctx = _Ctx(errs, options, hu is not False)
    v = sp.get("volumes")
    if v and isinstance(v, list):
        ctx.vols = _volumes(v, options, errs)
    _containers(ctrs, ctx)
    if inits:
        _init_containers(inits, ctrs, ctx)
    if ephs:
        _ephemeral_containers(ephs, ctrs, inits, ctx)
    if sp.get("hostNetwork") is True:
        _host_network_ports(ctrs, errs)
    v = sp.get("restartPolicy")
    if v and isinstance(v, str) and v not in _RESTART_POLICIES:
        errs.append(
            FieldError("NotSupported", ("spec", "restartPolicy"), value=v, supported=_RESTART_POLICIES)
        )
    _pod_security_context(psc, sp, options, errs)
    visit: list[tuple[dict, tuple]] | None = None
    if ctx.windows_options or (psc and psc.get("windowsOptions") is not None):
        visit = list(_visit(inits, ctrs, ephs))
        _host_process(psc, sp, visit, options, errs)
    if hu is False:
        _host_users(sp, errs)
    if sp.get("os") is not None:
        if visit is None:
            visit = list(_visit(inits, ctrs, ephs))
        _os(psc, sp, visit, errs)

    # pod-only / create-only checks (ValidatePodCreate, ValidatePodTemplateSpec)
    if is_pod:
        if ctx.late:
            errs.extend(ctx.late)
        if options.on_create and ephs:
            errs.append(FieldError("Forbidden", ("spec", "ephemeralContainers"), "cannot be set on create"))
    if ann is not None and (options.on_create or not is_pod):
        if visit is None:
            visit = list(_visit(inits, ctrs, ephs))
        _annotations_match_fields(ann, psc, sp, visit, errs)
    if not is_pod and ephs:
        errs.append(
            FieldError(
                "Forbidden",
                ("spec", "ephemeralContainers"),
                "ephemeral containers not allowed in pod template",
            )
        )
    return errs
