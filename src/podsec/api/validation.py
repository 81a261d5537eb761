"""API-server validation of a pod (or pod template), for every securityContext-related field.

A manifest the API server would reject never runs on a cluster, so podsec must reject it too —
with the same field path and the same words (kubelet-semantics.md §4).  The rules, their order
and their quirks follow ``pkg/apis/core/validation/validation.go`` (v1.33/v1.34 era):

* order of ``ValidatePodCreate``: pod-specific annotations, then ``ValidatePodSpec`` (volumes,
  containers, init containers, ephemeral containers, hostNetwork ports, restartPolicy, the pod
  security context, Windows hostProcess, hostUsers, ``spec.os``), then the pod-only checks
  (image whitespace, ephemeral containers on create, annotation/field consistency);
* quirks kept verbatim: ``spec.HostPID``/``spec.HostIPC`` capitalisation, the internal
  ``spec.securityContext.shareProcessNamespace`` path, the literal ``CAP_SYS_ADMIN`` match,
  unindexed paths for ``volumeMounts.subPath`` and downward-API item errors, a volume with any
  error not being mountable (``Not found``), seccomp annotations rendered as ``.child`` but
  AppArmor annotations as ``[key]``.

Inputs are plain dicts as decoded from YAML/JSON.  Values of the wrong type are ignored here
(:func:`podsec.api.types.check_types` reports them); nothing in this module raises on odd input.
Fields the API server defaults before validating (``terminationGracePeriodSeconds``,
``imagePullPolicy``, ``terminationMessagePolicy``, ``restartPolicy``, ``dnsPolicy``, port
``protocol``) are treated as defaulted when absent or empty.

Deliberately not covered (no security bearing, or needs cluster state): ObjectMeta (name,
labels, annotation key syntax), env/envFrom names and selectors, probes and lifecycle handlers,
resources, affinity/tolerations/DNS, the inner fields of network/cloud volume sources, downward
API ``fieldRef`` paths and clusterTrustBundle names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from podsec.api.fielderror import FieldError, Key, go_quote

__all__ = ["ValidationOptions", "validate_pod"]


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """API-server settings that change the verdict."""

    allow_privileged: bool = True
    """``kube-apiserver --allow-privileged`` (binary default false; most installers set true)."""
    resource_is_pod: bool = True
    """``False`` for the pod template of a workload: annotation paths become ``annotations…``
    (callers prefix ``spec.template``), the pod-only checks are skipped and ephemeral containers
    are forbidden outright."""
    on_create: bool = True
    """Apply the create-only checks of a Pod (ephemeral containers, annotation/field match);
    turn off to validate a pod that already exists (e.g. ``kubectl get -o yaml`` output)."""
    allow_only_recursive_selinux_change_policy: bool = False
    """``PodValidationOptions.AllowOnlyRecursiveSELinuxChangePolicy`` (SELinuxMount gate off)."""
    feature_gates: frozenset[str] = frozenset()
    """Enabled gates of :mod:`podsec.features`. A disabled gate's fields are dropped before validation
    (``dropDisabledPodFields``), so they are validated only when their gate is on."""

    @property
    def user_fields(self) -> bool:
        """KEP-5936 ``defaultUser``/``user`` are validated (``AtomicWriteVolumeUserFields``)."""
        return "AtomicWriteVolumeUserFields" in self.feature_gates

    @property
    def fs_user(self) -> bool:
        """KEP-5280 ``spec.securityContext.fsUser`` is validated (podsec's ``PodSecurityContextFSUser``)."""
        return "PodSecurityContextFSUser" in self.feature_gates


_DEFAULT_OPTIONS = ValidationOptions()
_EMPTY: dict = {}
_NO_ITEMS: list = []

# ---------------------------------------------------------------------------------------------
# Messages and value sets (verbatim from validation.go / apimachinery)

_MAX_ID = 2147483647
_RANGE_MSG = "must be between 0 and 2147483647, inclusive"
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_ONE_VOLUME_TYPE = "may not specify more than 1 volume type"
_EPHEMERAL_FORBIDDEN = "cannot be set for an Ephemeral Container"
_INIT_FORBIDDEN = "may not be set for init containers without restartPolicy=Always"
_BIDIRECTIONAL = "Bidirectional mount propagation is available only to privileged containers"
_NAME_IMAGE_KEYS = frozenset({"name", "image"})
_PLAIN_MOUNT_KEYS = frozenset({"name", "mountPath", "readOnly"})
_RRO_PROPAGATION = "may only be specified when mountPropagation is None or not specified"
_HOST_USERS_FALSE = "when `pod.Spec.HostUsers` is false"
_APE_PRIVILEGED = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
_APE_SYS_ADMIN = "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"
_HOST_PROCESS_ALL = (
    "If pod contains any hostProcess containers then all containers must be HostProcess containers"
)
_HOST_PROCESS_SAME = "pod hostProcess value must be identical if both are specified, was "
_NOT_FOR_WINDOWS = "cannot be set for a windows pod"
_NOT_FOR_LINUX = "windows options cannot be set for a linux pod"

_PROFILE_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
_CONTAINER_ID_FIELDS = ("runAsUser", "runAsGroup")
_POD_ID_FIELDS = ("fsGroup", "runAsUser", "runAsGroup")
_POD_ID_FIELDS_FS_USER = ("fsUser", *_POD_ID_FIELDS)
"""The KEP-5280 reference implementation validates ``fsUser`` (IsValidUserID) before ``fsGroup``."""
_PROC_MOUNT_TYPES = ("Default", "Unmasked")
_FSGROUP_POLICIES = ("Always", "OnRootMismatch")
_SUPPLEMENTAL_POLICIES = ("Merge", "Strict")
_SELINUX_POLICIES = ("MountOption", "Recursive")
_OS_NAMES = ("linux", "windows")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
_MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
_RECURSIVE_READ_ONLY = ("Disabled", "Enabled", "IfPossible")

_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_SECURITY_ANNOTATIONS = (_SECCOMP_POD_ANNOTATION, _SECCOMP_CONTAINER_PREFIX, _APPARMOR_PREFIX)

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_DNS1123_LABEL_FMT}')"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)

_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_RE_SRC = "^(" + _SYSCTL_SEGMENT + "[\\./])*" + _SYSCTL_SEGMENT + "$"
_SYSCTL_RE = re.compile("(" + _SYSCTL_SEGMENT + "[\\./])*" + _SYSCTL_SEGMENT)
_SYSCTL_MSG = f"must have at most 253 characters and match regex {_SYSCTL_RE_SRC}"
_IPC_SYSCTLS = frozenset(
    {
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.shm",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.msg",
    }
)

# Windows runAsUserName (validateWindowsSecurityContextOptions).
_CTRL_RE = re.compile("[\x00-\x1f\x7f]")
_NETBIOS_RE = re.compile(r'[^\\/:*?"<>|.][^\\/:*?"<>|]{0,14}')
_WIN_DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_WIN_DOMAIN_DNS_RE = re.compile(f"{_WIN_DNS_LABEL}(?:\\.{_WIN_DNS_LABEL})*")
_USER_BAD_CHARS_RE = re.compile(r'["/\\:;|=,+*?<>@\[\]]')
_USER_DOTS_SPACES_RE = re.compile(r"[. ]+")

# Go's unicode.IsSpace set (strings.TrimSpace), which differs from Python's str.strip().
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_QUANTITY_RE = re.compile(r"([+-]?)([0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")

# Volume sources in validateVolumeSource order: (JSON key, path segment used for the
# "more than 1 volume type" error — upstream spells two of them differently).
_VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
)

_SOURCE_ORDER = {key: i for i, (key, _) in enumerate(_VOLUME_SOURCES)}
_SOURCE_SEGMENT = dict(_VOLUME_SOURCES)

# Fields of EphemeralContainerCommon outside allowedEphemeralContainerFields, in struct order.
_EPHEMERAL_DISALLOWED = (
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
)
_INIT_FORBIDDEN_FIELDS = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")

# ---------------------------------------------------------------------------------------------
# Small typed accessors: the wrong type reads as "absent" (check_types reports it).


def _d(v: object) -> dict | None:
    return v if isinstance(v, dict) else None


def _l(v: object) -> list | None:
    return v if isinstance(v, list) else None


def _s(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _i(v: object) -> int | None:
    if type(v) is int:
        return v  # type: ignore[return-value]
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    return None


def _sc(c: dict) -> dict:
    """A container's securityContext, or an empty dict."""
    sc = c.get("securityContext")
    return sc if isinstance(sc, dict) else _EMPTY


def _name(c: dict) -> str:
    n = c.get("name")
    return n if isinstance(n, str) else ""


# ---------------------------------------------------------------------------------------------
# Reusable rule helpers (apimachinery validation functions)


_GOOD_LABELS: set[str] = set()
"""Names already known to be DNS-1123 labels: the same few names recur in every manifest."""


def _dns1123_label(value: str, path: tuple, errs: list[FieldError]) -> None:
    if value in _GOOD_LABELS:
        return
    if len(value) <= 63 and _DNS1123_LABEL_RE.fullmatch(value):
        if len(_GOOD_LABELS) > 4096:
            _GOOD_LABELS.clear()
        _GOOD_LABELS.add(value)
        return
    if len(value.encode()) > 63:
        errs.append(FieldError("Invalid", path, "must be no more than 63 characters", value))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        msg = "must not contain dots" if _DNS1123_SUBDOMAIN_RE.fullmatch(value) else _DNS1123_LABEL_MSG
        errs.append(FieldError("Invalid", path, msg, value))


def _dns1123_subdomain_msgs(value: str) -> list[str]:
    msgs = []
    if len(value.encode()) > 253:
        msgs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        msgs.append(_DNS1123_SUBDOMAIN_MSG)
    return msgs


def _check_id(v: object, path: tuple, errs: list[FieldError]) -> None:
    """IsValidUserID / IsValidGroupID: 0..MaxInt32, 0 included."""
    n = _i(v)
    if n is not None and (n < 0 or n > _MAX_ID):
        errs.append(FieldError("Invalid", path, _RANGE_MSG, n))


def _check_ids(obj: dict, keys: tuple[str, ...], base: tuple, errs: list[FieldError]) -> None:
    """Range-check the uid/gid fields of one security context (paths built only on error)."""
    for key in keys:
        v = obj.get(key)
        if v is not None and not (type(v) is int and 0 <= v <= _MAX_ID):
            _check_id(v, (*base, key), errs)


def _check_mode(v: object, path: tuple, errs: list[FieldError], where: tuple = ()) -> None:
    n = _i(v)
    if n is not None and (n > 0o777 or n < 0):
        errs.append(FieldError("Invalid", path, _FILE_MODE_MSG, n, where=where))


def _no_backsteps(p: str, path: tuple, errs: list[FieldError], where: tuple = ()) -> None:
    if ".." in p and ".." in p.split("/"):
        errs.append(FieldError("Invalid", path, "must not contain '..'", p, where=where))


def _local_descending_path(p: str, path: tuple, errs: list[FieldError], where: tuple = ()) -> None:
    if p.startswith("/"):
        errs.append(FieldError("Invalid", path, "must be a relative path", p, where=where))
    _no_backsteps(p, path, errs, where)


def _local_non_reserved_path(p: str, path: tuple, errs: list[FieldError], where: tuple = ()) -> None:
    _local_descending_path(p, path, errs, where)
    if p.startswith("..") and not p.startswith("../"):
        errs.append(FieldError("Invalid", path, "must not start with '..'", p, where=where))


def _port_num(v: object, path: tuple, errs: list[FieldError]) -> None:
    n = _i(v)
    if n is not None and not 1 <= n <= 65535:
        errs.append(FieldError("Invalid", path, _PORT_RANGE_MSG, n))


# ---------------------------------------------------------------------------------------------
# Seccomp / AppArmor / Windows options (both levels)


def _seccomp_field(prof: object, path: tuple, errs: list[FieldError]) -> None:
    """validateSeccompProfileField."""
    if not isinstance(prof, dict):
        return
    t = prof.get("type")
    t = t if isinstance(t, str) else ""
    if t not in _PROFILE_TYPES:
        if t == "":
            errs.append(
                FieldError("Required", (*path, "type"), "type is required when seccompProfile is set")
            )
        else:
            errs.append(FieldError("NotSupported", (*path, "type"), value=t, supported=_PROFILE_TYPES))
    lp = prof.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            errs.append(
                FieldError(
                    "Required", (*path, "localhostProfile"), "must be set when seccomp type is Localhost"
                )
            )
        elif isinstance(lp, str):
            _local_descending_path(lp, (*path, "localhostProfile"), errs)
    elif lp is not None:
        errs.append(
            FieldError(
                "Invalid", (*path, "localhostProfile"), "can only be set when seccomp type is Localhost", prof
            )
        )


def _apparmor_field(prof: object, path: tuple, errs: list[FieldError]) -> None:
    """ValidateAppArmorProfileField."""
    if not isinstance(prof, dict):
        return
    t = prof.get("type")
    t = t if isinstance(t, str) else ""
    lp = prof.get("localhostProfile")
    lp_path = (*path, "localhostProfile")
    if t == "Localhost":
        if lp is None:
            errs.append(FieldError("Required", lp_path, "must be set when AppArmor type is Localhost"))
        elif isinstance(lp, str):
            stripped = lp.strip(_GO_SPACE)
            if stripped != lp:
                errs.append(FieldError("Invalid", lp_path, "must not be padded with whitespace", lp))
            elif stripped == "":
                errs.append(FieldError("Required", lp_path, "must be set when AppArmor type is Localhost"))
            if len(lp) > 1023 and len(lp.encode()) > 4095:
                errs.append(FieldError("TooLong", lp_path, "may not be more than 4095 bytes"))
    elif t in ("RuntimeDefault", "Unconfined"):
        if lp is not None:
            errs.append(FieldError("Invalid", lp_path, "can only be set when AppArmor type is Localhost", lp))
    elif t == "":
        errs.append(FieldError("Required", (*path, "type"), "type is required when appArmorProfile is set"))
    else:
        errs.append(FieldError("NotSupported", (*path, "type"), value=t, supported=_PROFILE_TYPES))


def _windows_options(wo: object, path: tuple, errs: list[FieldError]) -> None:
    """validateWindowsSecurityContextOptions."""
    if not isinstance(wo, dict) or not wo:
        return
    name = _s(wo.get("gmsaCredentialSpecName"))
    if name is not None:
        for msg in _dns1123_subdomain_msgs(name):
            errs.append(FieldError("Invalid", (*path, "gmsaCredentialSpecName"), msg, name))
    spec = _s(wo.get("gmsaCredentialSpec"))
    if spec is not None:
        size = len(spec.encode())
        if size == 0:
            errs.append(
                FieldError(
                    "Invalid",
                    (*path, "gmsaCredentialSpec"),
                    "gmsaCredentialSpec cannot be an empty string",
                    spec,
                )
            )
        elif size > 64 * 1024:
            errs.append(
                FieldError(
                    "Invalid",
                    (*path, "gmsaCredentialSpec"),
                    "gmsaCredentialSpec size must be under 64 KiB",
                    spec,
                )
            )
    user = _s(wo.get("runAsUserName"))
    if user is not None:
        _run_as_user_name(user, (*path, "runAsUserName"), errs)


def _run_as_user_name(value: str, path: tuple, errs: list[FieldError]) -> None:
    def bad(msg: str) -> None:
        errs.append(FieldError("Invalid", path, msg, value))

    if value == "":
        bad("runAsUserName cannot be an empty string")
        return
    if _CTRL_RE.search(value):
        bad("runAsUserName cannot contain control characters")
        return
    parts = value.split("\\")
    if len(parts) > 2:
        bad("runAsUserName cannot contain more than one backslash")
        return
    has_domain = len(parts) == 2
    domain, user = (parts[0], parts[1]) if has_domain else ("", parts[0])
    if len(domain.encode()) >= 256:
        bad("runAsUserName's Domain length must be under 256 characters")
    if has_domain and not (_NETBIOS_RE.fullmatch(domain) or _WIN_DOMAIN_DNS_RE.fullmatch(domain)):
        bad("runAsUserName's Domain doesn't match the NetBios nor the DNS format")
    ulen = len(user.encode())
    if ulen == 0:
        bad("runAsUserName's User cannot be empty")
    elif ulen > 104:
        bad("runAsUserName's User length must not be longer than 104 characters")
    if _USER_DOTS_SPACES_RE.fullmatch(user):
        bad("runAsUserName's User cannot contain only periods or spaces")
    if _USER_BAD_CHARS_RE.search(user):
        bad("runAsUserName's User cannot contain the following characters: \"/\\:;|=,+*?<>@[]")


# ---------------------------------------------------------------------------------------------
# Container security context (ValidateSecurityContext)


def _container_security_context(
    sc: dict, path: tuple, host_users: bool, opts: ValidationOptions, errs: list[FieldError]
) -> None:
    priv = sc.get("privileged")
    if priv is True and not opts.allow_privileged:
        errs.append(FieldError("Forbidden", (*path, "privileged"), "disallowed by cluster policy"))
    _check_ids(sc, _CONTAINER_ID_FIELDS, path, errs)
    pm = sc.get("procMount")
    if isinstance(pm, str):
        if pm not in _PROC_MOUNT_TYPES:
            errs.append(
                FieldError("NotSupported", (*path, "procMount"), value=pm, supported=_PROC_MOUNT_TYPES)
            )
        if host_users and pm == "Unmasked":
            errs.append(
                FieldError("Invalid", (*path, "procMount"), "`hostUsers` must be false to use `Unmasked`", pm)
            )
    prof = sc.get("seccompProfile")
    if prof is not None:
        _seccomp_field(prof, (*path, "seccompProfile"), errs)
    if sc.get("allowPrivilegeEscalation") is False:
        if priv is True:
            errs.append(FieldError("Invalid", path, _APE_PRIVILEGED, sc))
        caps = sc.get("capabilities")
        add = caps.get("add") if isinstance(caps, dict) else None
        if isinstance(add, list) and "CAP_SYS_ADMIN" in add:
            for cap in add:
                if cap == "CAP_SYS_ADMIN":
                    errs.append(FieldError("Invalid", path, _APE_SYS_ADMIN, sc))
    wo = sc.get("windowsOptions")
    if wo is not None:
        _windows_options(wo, (*path, "windowsOptions"), errs)
    prof = sc.get("appArmorProfile")
    if prof is not None:
        _apparmor_field(prof, (*path, "appArmorProfile"), errs)


# ---------------------------------------------------------------------------------------------
# Volumes (ValidateVolumes)


def _key_to_path(kp: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    key = _s(kp.get("key")) or ""
    p = _s(kp.get("path")) or ""
    if not key:
        errs.append(FieldError("Required", (*path, "key")))
    if not p:
        errs.append(FieldError("Required", (*path, "path")))
    _local_non_reserved_path(p, (*path, "path"), errs)
    if "mode" in kp:
        _check_mode(kp["mode"], (*path, "mode"), errs)
    if users and kp.get("user") is not None:
        _check_id(kp["user"], (*path, "user"), errs)


def _items(src: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    items = _l(src.get("items"))
    if items:
        for j, kp in enumerate(items):
            _key_to_path(kp if isinstance(kp, dict) else _EMPTY, (*path, "items", j), errs, users)


def _default_user(src: dict, path: tuple, errs: list[FieldError], users: bool) -> None:
    """KEP-5936 ``defaultUser``: IsValidUserID like runAsUser (only when its gate is on)."""
    if users and src.get("defaultUser") is not None:
        _check_id(src["defaultUser"], (*path, "defaultUser"), errs)


def _downward_api_file(f: dict, path: tuple, item: tuple, errs: list[FieldError], users: bool = False) -> None:
    """validateDownwardAPIVolumeFile — upstream reports these at the source path, unindexed
    (``item`` is the file entry's real place, kept as the errors' ``where``)."""
    p = _s(f.get("path")) or ""
    if not p:
        errs.append(FieldError("Required", (*path, "path"), where=(*item, "path")))
    _local_non_reserved_path(p, (*path, "path"), errs, (*item, "path"))
    has_field = f.get("fieldRef") is not None
    has_resource = f.get("resourceFieldRef") is not None
    if has_field:
        if has_resource:
            errs.append(
                FieldError(
                    "Invalid",
                    path,
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                    "resource",
                    where=item,
                )
            )
    elif not has_resource:
        errs.append(
            FieldError("Required", path, "one of fieldRef and resourceFieldRef is required", where=item)
        )
    if "mode" in f:
        _check_mode(f["mode"], (*path, "mode"), errs, (*item, "mode"))
    if users and f.get("user") is not None:
        # Inferred: reported at the source path like ``mode`` (validateDownwardAPIVolumeFile gets no index).
        n = _i(f["user"])
        if n is not None and not 0 <= n <= _MAX_ID:
            errs.append(FieldError("Invalid", (*path, "user"), _RANGE_MSG, n, where=(*item, "user")))


def _projection_sources(proj: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    sources = _l(proj.get("sources"))
    if not sources:
        return
    all_paths: set[str] = set()

    def track(p: str, value: object) -> None:
        if p in all_paths:
            errs.append(FieldError("Invalid", path, "conflicting duplicate paths", value))
        else:
            all_paths.add(p)

    for i, source in enumerate(sources):
        if not isinstance(source, dict):
            continue
        num = 0
        src_path = (*path, "sources", i)
        for kind in ("secret", "configMap"):
            obj = source.get(kind)
            if obj is None:
                continue
            num += 1
            obj = obj if isinstance(obj, dict) else _EMPTY
            obj_name = _s(obj.get("name")) or ""
            if not obj_name:
                errs.append(FieldError("Required", (*src_path, kind, "name")))
            items = _l(obj.get("items"))
            for j, kp in enumerate(items or ()):
                kp = kp if isinstance(kp, dict) else _EMPTY
                _key_to_path(kp, (*src_path, kind, "items", j), errs, users)
                p = _s(kp.get("path")) or ""
                if p:
                    track(p, obj_name)
        dapi = source.get("downwardAPI")
        if dapi is not None:
            num += 1
            items = _l(dapi.get("items")) if isinstance(dapi, dict) else None
            for j, f in enumerate(items or ()):
                f = f if isinstance(f, dict) else _EMPTY
                _downward_api_file(
                    f, (*src_path, "downwardAPI"), (*src_path, "downwardAPI", "items", j), errs, users
                )
                p = _s(f.get("path")) or ""
                if p:
                    track(p, p)
        sat = source.get("serviceAccountToken")
        if sat is not None:
            num += 1
            sat = sat if isinstance(sat, dict) else _EMPTY
            exp = _i(sat.get("expirationSeconds"))
            if exp is None:
                exp = 3600  # SetDefaults_ServiceAccountTokenProjection
            exp_path = (*src_path, "serviceAccountToken", "expirationSeconds")
            if exp < 600:
                errs.append(
                    FieldError("Invalid", exp_path, "may not specify a duration less than 10 minutes", exp)
                )
            if exp > 1 << 32:
                errs.append(
                    FieldError(
                        "Invalid", exp_path, "may not specify a duration larger than 2^32 seconds", exp
                    )
                )
            p = _s(sat.get("path")) or ""
            real = (*src_path, "serviceAccountToken", "path")
            if not p:
                errs.append(FieldError("Required", (*path, "path"), where=real))
            else:
                _local_non_reserved_path(p, (*path, "path"), errs, real)
            if users and sat.get("user") is not None:
                _check_id(sat["user"], (*src_path, "serviceAccountToken", "user"), errs)
        ctb = source.get("clusterTrustBundle")
        if ctb is not None:
            num += 1
            ctb = ctb if isinstance(ctb, dict) else _EMPTY
            p = _s(ctb.get("path")) or ""
            if not p:
                errs.append(FieldError("Required", (*src_path, "clusterTrustBundle", "path")))
            _local_non_reserved_path(p, (*src_path, "clusterTrustBundle", "path"), errs)
            track(p, p)
            if users and ctb.get("user") is not None:
                _check_id(ctb["user"], (*src_path, "clusterTrustBundle", "user"), errs)
        if num > 1:
            errs.append(
                FieldError("Forbidden", src_path, "may not specify more than 1 volume type per source")
            )


def _negative_quantity(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return v < 0
    if isinstance(v, str):
        m = _QUANTITY_RE.fullmatch(v.strip())
        if m and m.group(1) == "-":
            try:
                return float(m.group(2)) != 0
            except ValueError:
                return False
    return False


def _volume_source(vol: dict, idx: tuple, opts: ValidationOptions, errs: list[FieldError]) -> None:
    """validateVolumeSource: exactly one source; the first one present (upstream order) is validated."""
    present = [k for k, v in vol.items() if v is not None and k in _SOURCE_ORDER]
    if len(present) > 1:
        present.sort(key=_SOURCE_ORDER.__getitem__)
    num = 0
    for key in present:
        src = vol[key]
        seg = _SOURCE_SEGMENT[key]
        if num > 0:
            errs.append(FieldError("Forbidden", (*idx, seg), _ONE_VOLUME_TYPE, where=(*idx, key)))
            continue
        num += 1
        if not isinstance(src, dict):
            continue
        path = (*idx, key)
        if key == "emptyDir":
            if "sizeLimit" in src and _negative_quantity(src["sizeLimit"]):
                errs.append(
                    FieldError(
                        "Forbidden", (*path, "sizeLimit"), "SizeLimit field must be a valid resource quantity"
                    )
                )
        elif key == "hostPath":
            p = _s(src.get("path")) or ""
            if not p:
                errs.append(FieldError("Required", (*path, "path")))
                continue
            _no_backsteps(p, (*path, "path"), errs)
            t = src.get("type")
            if isinstance(t, str) and t not in _HOST_PATH_TYPES:
                errs.append(FieldError("NotSupported", (*path, "type"), value=t, supported=_HOST_PATH_TYPES))
        elif key == "secret" or key == "configMap":
            name_key = "secretName" if key == "secret" else "name"
            if not _s(src.get(name_key)):
                errs.append(FieldError("Required", (*path, name_key)))
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            _items(src, path, errs, opts.user_fields)
        elif key == "downwardAPI":
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            for j, f in enumerate(_l(src.get("items")) or ()):
                _downward_api_file(
                    f if isinstance(f, dict) else _EMPTY, path, (*path, "items", j), errs, opts.user_fields
                )
        elif key == "projected":
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            _projection_sources(src, path, errs, opts.user_fields)
        elif key == "persistentVolumeClaim":
            if not _s(src.get("claimName")):
                errs.append(FieldError("Required", (*path, "claimName")))
        elif key == "gitRepo":
            if not _s(src.get("repository")):
                errs.append(FieldError("Required", (*path, "repository")))
            _local_descending_path(_s(src.get("directory")) or "", (*path, "directory"), errs)
        elif key == "nfs":
            server = _s(src.get("server")) or ""
            p = _s(src.get("path")) or ""
            if not server:
                errs.append(FieldError("Required", (*path, "server")))
            if not p:
                errs.append(FieldError("Required", (*path, "path")))
            if not p.startswith("/"):
                errs.append(FieldError("Invalid", (*path, "path"), "must be an absolute path", p))
        elif key == "image" and opts.resource_is_pod and not _s(src.get("reference")):
            errs.append(FieldError("Required", (*path, "reference")))
    if num == 0:
        errs.append(FieldError("Required", idx, "must specify a volume type"))


def _volumes(vols: list, opts: ValidationOptions, errs: list[FieldError]) -> dict[str, dict]:
    """ValidateVolumes → the volumes containers may mount (a volume with any error is not one)."""
    known: dict[str, dict] = {}
    for i, vol in enumerate(vols):
        vol = vol if isinstance(vol, dict) else _EMPTY
        idx = ("spec", "volumes", i)
        before = len(errs)
        _volume_source(vol, idx, opts, errs)
        name = vol.get("name")
        if type(name) is not str:
            name = _name(vol)
        if not name:
            errs.append(FieldError("Required", (*idx, "name")))
        elif name not in _GOOD_LABELS:
            _dns1123_label(name, (*idx, "name"), errs)
        if name in known:
            errs.append(FieldError("Duplicate", (*idx, "name"), value=name))
        if len(errs) == before:
            known[name] = vol
    return known


# ---------------------------------------------------------------------------------------------
# Containers


def _volume_mounts(mounts: list, c: dict, vols: dict[str, dict], path: tuple, errs: list[FieldError]) -> None:
    """ValidateVolumeMounts (its ``subPath``/``mountPropagation`` errors are unindexed upstream)."""
    seen: set[str] = set()
    base = (*path, "volumeMounts")
    for i, m in enumerate(mounts):
        if not isinstance(m, dict):
            m = _EMPTY
        name = m.get("name")
        if type(name) is not str:
            name = _name(m)
        mount_path = m.get("mountPath")
        if type(mount_path) is not str:
            mount_path = _s(mount_path) or ""
        vol = vols.get(name)
        if not name or vol is None or not mount_path or mount_path in seen:
            idx = (*base, i)
            if not name:
                errs.append(FieldError("Required", (*idx, "name")))
            if vol is None:
                errs.append(FieldError("NotFound", (*idx, "name"), value=name))
            if not mount_path:
                errs.append(FieldError("Required", (*idx, "mountPath")))
            if mount_path in seen:
                errs.append(FieldError("Invalid", (*idx, "mountPath"), "must be unique", mount_path))
        seen.add(mount_path)
        if len(m) <= 3 and _PLAIN_MOUNT_KEYS.issuperset(m):
            continue  # only name, mountPath (and readOnly): nothing else to check
        sub = _s(m.get("subPath")) or ""
        sub_expr = _s(m.get("subPathExpr")) or ""
        if vol is not None and vol.get("image") is not None:
            if sub:
                errs.append(
                    FieldError("Invalid", (*base, i, "subPath"), "not allowed in image volume sources", sub)
                )
            if sub_expr:
                errs.append(
                    FieldError(
                        "Invalid", (*base, i, "subPathExpr"), "not allowed in image volume sources", sub_expr
                    )
                )
        if sub:
            _local_descending_path(sub, (*base, "subPath"), errs, (*base, i, "subPath"))
        if sub_expr:
            if sub:
                errs.append(
                    FieldError(
                        "Invalid",
                        (*base, i, "subPathExpr"),
                        "subPathExpr and subPath are mutually exclusive",
                        sub_expr,
                    )
                )
            _local_descending_path(sub_expr, (*base, "subPathExpr"), errs, (*base, i, "subPathExpr"))
        prop = _s(m.get("mountPropagation"))
        if prop is not None:
            prop_path = (*base, "mountPropagation")
            real = (*base, i, "mountPropagation")
            if prop not in _MOUNT_PROPAGATIONS:
                errs.append(
                    FieldError(
                        "NotSupported", prop_path, value=prop, supported=_MOUNT_PROPAGATIONS, where=real
                    )
                )
            if prop == "Bidirectional" and _sc(c).get("privileged") is not True:
                errs.append(FieldError("Forbidden", prop_path, _BIDIRECTIONAL, where=real))
        rro = _s(m.get("recursiveReadOnly"))
        if rro is not None and rro != "Disabled":
            rro_path = (*base, "recursiveReadOnly")
            real = (*base, i, "recursiveReadOnly")
            if rro in _RECURSIVE_READ_ONLY:
                if m.get("readOnly") is not True:
                    errs.append(
                        FieldError(
                            "Forbidden", rro_path, "may only be specified when readOnly is true", where=real
                        )
                    )
                if prop is not None and prop != "None":
                    errs.append(FieldError("Forbidden", rro_path, _RRO_PROPAGATION, where=real))
            else:
                errs.append(
                    FieldError(
                        "NotSupported", rro_path, value=rro, supported=_RECURSIVE_READ_ONLY, where=real
                    )
                )


def _container_ports(ports: list, path: tuple, host_ports: list | None, errs: list[FieldError]) -> None:
    """validateContainerPorts (numbers and protocol); collects host ports for the conflict check."""
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            p = _EMPTY
        cp = p.get("containerPort")
        if not (type(cp) is int and 1 <= cp <= 65535):
            cp = _i(cp)
            if not cp:
                errs.append(FieldError("Required", (*path, "ports", i, "containerPort")))
            else:
                _port_num(cp, (*path, "ports", i, "containerPort"), errs)
        hp = p.get("hostPort")
        proto = p.get("protocol")
        if hp is not None:
            hp = _i(hp)
            if hp:
                _port_num(hp, (*path, "ports", i, "hostPort"), errs)
                if host_ports is not None:
                    host_ip = _s(p.get("hostIP")) or ""
                    host_ports.append((path, i, f"{_s(proto) or 'TCP'}/{host_ip}/{hp}"))
        if proto is not None and proto not in _PROTOCOLS and isinstance(proto, str) and proto:
            errs.append(
                FieldError("NotSupported", (*path, "ports", i, "protocol"), value=proto, supported=_PROTOCOLS)
            )


def _host_port_conflicts(host_ports: list, errs: list[FieldError], shown: tuple | None = None) -> None:
    """AccumulateUniqueHostPorts: the same protocol/hostIP/hostPort twice is a Duplicate.

    ``shown`` replaces the container path in the message (upstream checks each init container
    as a one-element list, so it always says ``initContainers[0]``)."""
    seen: set[str] = set()
    for path, i, key in host_ports:
        if key in seen:
            real = (*path, "ports", i, "hostPort")
            if shown is None:
                errs.append(FieldError("Duplicate", real, value=key))
            else:
                errs.append(FieldError("Duplicate", (*shown, "ports", i, "hostPort"), value=key, where=real))
        else:
            seen.add(key)


class _Ctx:
    """Per-call state shared by the container checks (one object instead of six arguments)."""

    __slots__ = ("errs", "host_users", "late", "opts", "vols", "windows_options")

    def __init__(self, errs: list[FieldError], opts: ValidationOptions, host_users: bool) -> None:
        self.errs = errs
        self.opts = opts
        self.host_users = host_users
        self.vols: dict[str, dict] = _EMPTY
        self.late: list[FieldError] = []
        """Image-whitespace errors: found while visiting containers, reported after ValidatePodSpec."""
        self.windows_options = False
        """Whether any container sets securityContext.windowsOptions (gates the hostProcess walk)."""


def _container_common(c: dict, path: tuple, ctx: _Ctx, host_ports: list | None = None) -> None:
    """validateContainerCommon: name, image, ports, mounts, pull policy, security context."""
    errs = ctx.errs
    name = c.get("name")
    if name and type(name) is str:
        if name not in _GOOD_LABELS:
            _dns1123_label(name, (*path, "name"), errs)
    else:
        name = _name(c)
        if not name:
            errs.append(FieldError("Required", (*path, "name")))
        else:
            _dns1123_label(name, (*path, "name"), errs)
    image = c.get("image")
    if not image or not isinstance(image, str):
        errs.append(FieldError("Required", (*path, "image")))
    elif (image[0].isspace() or image[-1].isspace()) and image.strip(_GO_SPACE) != image:
        ctx.late.append(
            FieldError("Invalid", (*path, "image"), "must not have leading or trailing whitespace", image)
        )
    if len(c) > 2 or not _NAME_IMAGE_KEYS.issuperset(c):  # anything beyond name and image?
        v = c.get("terminationMessagePolicy")
        if v and isinstance(v, str) and v not in _TERMINATION_MESSAGE_POLICIES:
            errs.append(
                FieldError(
                    "NotSupported",
                    (*path, "terminationMessagePolicy"),
                    value=v,
                    supported=_TERMINATION_MESSAGE_POLICIES,
                )
            )
        v = c.get("ports")
        if v and isinstance(v, list):
            _container_ports(v, path, host_ports, errs)
        v = c.get("volumeMounts")
        if v and isinstance(v, list):
            _volume_mounts(v, c, ctx.vols, path, errs)
        v = c.get("imagePullPolicy")
        if v and isinstance(v, str) and v not in _PULL_POLICIES:
            errs.append(
                FieldError("NotSupported", (*path, "imagePullPolicy"), value=v, supported=_PULL_POLICIES)
            )
        v = c.get("securityContext")
        if v and isinstance(v, dict):
            _container_security_context(v, (*path, "securityContext"), ctx.host_users, ctx.opts, errs)
            if v.get("windowsOptions") is not None:
                ctx.windows_options = True


def _as_container(c: object) -> dict:
    return c if isinstance(c, dict) else _EMPTY


def _containers(ctrs: list, ctx: _Ctx) -> None:
    """validateContainers (regular containers)."""
    errs = ctx.errs
    if not ctrs:
        errs.append(FieldError("Required", ("spec", "containers")))
        return
    names: set[str] = set()
    host_ports: list = []
    for i, c in enumerate(ctrs):
        if not isinstance(c, dict):
            c = _EMPTY
        path = ("spec", "containers", i)
        _container_common(c, path, ctx, host_ports)
        name = c.get("name")
        if type(name) is not str:
            name = _name(c)
        if name in names:
            errs.append(FieldError("Duplicate", (*path, "name"), value=name))
        else:
            names.add(name)
        if c.get("restartPolicy") is not None:
            errs.append(
                FieldError("Forbidden", (*path, "restartPolicy"), "may not be set for non-init containers")
            )
    if host_ports:
        _host_port_conflicts(host_ports, errs)


def _init_containers(inits: list, ctrs: list, ctx: _Ctx) -> None:
    """validateInitContainers."""
    errs = ctx.errs
    names = {_name(_as_container(c)) for c in ctrs}
    for i, c in enumerate(inits):
        c = _as_container(c)
        path = ("spec", "initContainers", i)
        host_ports: list = []
        _container_common(c, path, ctx, host_ports)
        restart_always = False
        rp = c.get("restartPolicy")
        if isinstance(rp, str):
            if rp != "Always":
                errs.append(
                    FieldError("NotSupported", (*path, "restartPolicy"), value=rp, supported=("Always",))
                )
            restart_always = rp == "Always"
        name = _name(c)
        if name in names:
            errs.append(FieldError("Duplicate", (*path, "name"), value=name))
        elif name:
            names.add(name)
        if host_ports:
            # Upstream checks each init container as a one-element list, so the path says [0].
            _host_port_conflicts(host_ports, errs, ("spec", "initContainers", 0))
        if not restart_always:
            for fld in _INIT_FORBIDDEN_FIELDS:
                if c.get(fld) is not None:
                    errs.append(FieldError("Forbidden", (*path, fld), _INIT_FORBIDDEN))


def _ephemeral_containers(ephs: list, ctrs: list, inits: list, ctx: _Ctx) -> None:
    """validateEphemeralContainers (which also applies the pod-only image check inline)."""
    errs = ctx.errs
    other = {_name(_as_container(c)) for c in ctrs}
    other.update(_name(_as_container(c)) for c in inits)
    names = set(other)
    for i, c in enumerate(ephs):
        c = _as_container(c)
        path = ("spec", "ephemeralContainers", i)
        late = len(ctx.late)
        _container_common(c, path, ctx)
        if len(ctx.late) > late:  # validateContainerOnlyForPod runs right here for ephemeral ones
            errs.extend(ctx.late[late:])
            del ctx.late[late:]
        name = _name(c)
        if name in names:
            errs.append(FieldError("Duplicate", (*path, "name"), value=name))
        else:
            names.add(name)
        target = _s(c.get("targetContainerName"))
        if target and target not in other:
            errs.append(FieldError("NotFound", (*path, "targetContainerName"), value=target))
        for fld in _EPHEMERAL_DISALLOWED:
            v = c.get(fld)
            if v is None or (fld == "resources" and isinstance(v, dict) and not v):
                continue
            errs.append(FieldError("Forbidden", (*path, fld), _EPHEMERAL_FORBIDDEN))
        mounts = _l(c.get("volumeMounts"))
        for j, m in enumerate(mounts or ()):
            if not isinstance(m, dict):
                continue
            if _s(m.get("subPath")):
                errs.append(
                    FieldError("Forbidden", (*path, "volumeMounts", j, "subPath"), _EPHEMERAL_FORBIDDEN)
                )
            if _s(m.get("subPathExpr")):
                errs.append(
                    FieldError("Forbidden", (*path, "volumeMounts", j, "subPathExpr"), _EPHEMERAL_FORBIDDEN)
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
# Annotations


def _seccomp_annotation(value: str, path: tuple, errs: list[FieldError]) -> None:
    """ValidateSeccompProfile for a legacy annotation value."""
    if value in ("runtime/default", "docker/default", "unconfined"):
        return
    if value.startswith("localhost/"):
        _local_descending_path(value[len("localhost/") :], path, errs)
        return
    errs.append(FieldError("Invalid", path, "must be a valid seccomp profile", value))


def _annotation_str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _pod_annotations(ann: dict, names: set[str], base: tuple, errs: list[FieldError]) -> None:
    """ValidatePodSpecificAnnotations: the seccomp and AppArmor parts (document order)."""
    if _SECCOMP_POD_ANNOTATION in ann:
        _seccomp_annotation(
            _annotation_str(ann[_SECCOMP_POD_ANNOTATION]), (*base, _SECCOMP_POD_ANNOTATION), errs
        )
    for k, v in ann.items():
        if isinstance(k, str) and k.startswith(_SECCOMP_CONTAINER_PREFIX):
            _seccomp_annotation(_annotation_str(v), (*base, k), errs)
    for k, v in ann.items():
        if not isinstance(k, str) or not k.startswith(_APPARMOR_PREFIX):
            continue
        cname = k[len(_APPARMOR_PREFIX) :]
        if cname not in names:
            errs.append(FieldError("Invalid", (*base, Key(k)), "container not found", cname))
        p = _annotation_str(v)
        if p not in ("", "runtime/default", "unconfined") and not p.startswith("localhost/"):
            errs.append(
                FieldError("Invalid", (*base, Key(k)), f"invalid AppArmor profile name: {go_quote(p)}", p)
            )


def _seccomp_match(annotation: str, prof: dict, path: tuple, errs: list[FieldError]) -> None:
    """validateSeccompAnnotationsAndFieldsMatch."""
    t = prof.get("type")
    if t == "Unconfined":
        if annotation != "unconfined":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
    elif t == "RuntimeDefault":
        if annotation not in ("runtime/default", "docker/default"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
    elif t == "Localhost":
        if not annotation.startswith("localhost/"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
        elif annotation[len("localhost/") :] != prof.get("localhostProfile"):
            errs.append(
                FieldError(
                    "Forbidden",
                    (*path, "localhostProfile"),
                    "seccomp profile in annotation and field must match",
                )
            )


def _apparmor_match(annotation: str, prof: dict, path: tuple, errs: list[FieldError]) -> None:
    """The per-container body of validateAppArmorAnnotationsAndFieldsMatchOnCreate."""
    t = prof.get("type")
    if t == "Unconfined":
        if annotation != "unconfined":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
    elif t == "RuntimeDefault":
        if annotation != "runtime/default":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
    elif t == "Localhost":
        if not annotation.startswith("localhost/"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
        elif annotation[len("localhost/") :] != prof.get("localhostProfile"):
            errs.append(
                FieldError(
                    "Forbidden",
                    (*path, "localhostProfile"),
                    "apparmor profile in annotation and field must match",
                )
            )


def _annotations_match_fields(
    ann: dict, psc: dict | None, sp: dict, visit: list[tuple[dict, tuple]], errs: list[FieldError]
) -> None:
    """validateSeccompAnnotationsAndFields + validateAppArmorAnnotationsAndFieldsMatchOnCreate."""
    pod_seccomp = _d(psc.get("seccompProfile")) if psc else None
    if pod_seccomp is not None and _SECCOMP_POD_ANNOTATION in ann:
        _seccomp_match(
            _annotation_str(ann[_SECCOMP_POD_ANNOTATION]),
            pod_seccomp,
            ("spec", "securityContext", "seccompProfile"),
            errs,
        )
    for c, cpath in visit:
        prof = _d(_sc(c).get("seccompProfile"))
        if prof is None:
            continue
        key = _SECCOMP_CONTAINER_PREFIX + _name(c)
        if key in ann:
            _seccomp_match(
                _annotation_str(ann[key]), prof, (*cpath, "securityContext", "seccompProfile"), errs
            )
    os_ = _d(sp.get("os"))
    if os_ is not None and os_.get("name") == "windows":
        return
    pod_aa = _d(psc.get("appArmorProfile")) if psc else None
    for c, cpath in visit:
        prof = _d(_sc(c).get("appArmorProfile")) or pod_aa
        if prof is None:
            continue
        key = _APPARMOR_PREFIX + _name(c)
        if key in ann:
            _apparmor_match(
                _annotation_str(ann[key]), prof, (*cpath, "securityContext", "appArmorProfile"), errs
            )


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


def _host_network_ports(ctrs: list, errs: list[FieldError]) -> None:
    """validatePodHostNetworkDeps (hostPort 0 is defaulted to containerPort first)."""
    for i, c in enumerate(ctrs):
        for j, p in enumerate(_l(_as_container(c).get("ports")) or ()):
            if not isinstance(p, dict):
                continue
            hp = _i(p.get("hostPort")) or 0
            if hp != 0 and hp != (_i(p.get("containerPort")) or 0):
                errs.append(
                    FieldError(
                        "Invalid",
                        ("spec", "containers", i, "ports", j, "hostPort"),
                        "must match `containerPort` when `hostNetwork` is true",
                        hp,
                    )
                )
