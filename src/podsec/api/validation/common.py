"""Validation options, the API server's messages and value sets, and the small rule helpers every part uses
(apimachinery's validation functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from podsec.api.fielderror import FieldError


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
