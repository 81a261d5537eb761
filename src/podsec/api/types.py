"""Wrong-type detection for the pod fields podsec reads.

The API server decodes JSON into Go structs before it validates anything, so ``runAsUser: "abc"``
or ``env: [{name: X, value: 1}]`` is refused at decode time and no validation rule ever runs.
:func:`check_types` reproduces that first gate for the pod (template) fields podsec reads, so
the validator and the resolver can trust the shapes they are given.

The schema is data: a table of field → kind, walked only over the keys actually present (unknown
keys are ignored, as the API server's non-strict decoder drops them).  A YAML ``null`` is always
accepted — Go decodes it to the zero value / an absent pointer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from podsec.api.fielderror import FieldError, Key

__all__ = ["check_types"]


def _kind_of(v: object) -> str:
    """The JSON type name of a decoded YAML value (bool before int: ``True`` is an int in Python)."""
    t = type(v)
    name = _EXACT_NAMES.get(t)
    if name is not None:
        return name
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str | datetime.date):
        return "string"  # YAML timestamps stay strings for the API server's decoder
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, dict):
        return "object"
    return t.__name__


_EXACT_NAMES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


@dataclass(frozen=True, slots=True)
class _Scalar:
    expected: str
    """The ``expected …`` wording."""
    accepts: frozenset[str]
    """JSON type names that decode."""
    bits: int = 0
    """For integers: 32 or 64 (Go int32/int64 overflow is a decode error too)."""


# Schema nodes are plain tuples, laid out so the walker's common case is one dict lookup, one
# type() and one set-membership test per leaf:
#   (ok_types, int_lo, int_hi, tag, payload, scalar)
# ok_types: exact Python types accepted with no further look (always includes NoneType: a YAML
# null decodes to the zero value); int_lo..int_hi: the accepted range when the value is an int
# (empty range when ints are not accepted); tag/payload: nested object fields, array item or
# mapping value; scalar: the _Scalar that words the error.
_SCALAR, _OBJECT, _ARRAY, _MAPPING = range(4)
_NONE = type(None)
_NO_INTS = (1, 0)
_INT_LIMITS = {32: (-(2**31), 2**31 - 1), 64: (-(2**63), 2**63 - 1)}
_FAST_TYPES = {"string": str, "boolean": bool, "number": float}


def _scalar_node(expected: str, accepts: frozenset[str], bits: int = 0) -> tuple:
    kind = _Scalar(expected, accepts, bits)
    ok = frozenset({_NONE, *(_FAST_TYPES[a] for a in accepts if a in _FAST_TYPES)})
    if "integer" not in accepts:
        lo, hi = _NO_INTS
    elif bits:
        lo, hi = _INT_LIMITS[bits]
    else:
        lo, hi = float("-inf"), float("inf")
    return (ok, lo, hi, _SCALAR, None, kind)


_I32 = _scalar_node("integer", frozenset({"integer"}), 32)
_I64 = _scalar_node("integer", frozenset({"integer"}), 64)
_BOOL = _scalar_node("boolean", frozenset({"boolean"}))
_STR = _scalar_node("string", frozenset({"string"}))
_INT_OR_STR = _scalar_node("integer or string", frozenset({"integer", "string"}), 32)
_QUANTITY = _scalar_node("string or number", frozenset({"string", "integer", "number"}))
_ONLY_NONE = frozenset({_NONE})


def _obj(**fields: tuple) -> tuple:
    # payload: (all fields, keys whose str values need no look, keys whose bool values need none)
    str_ok = frozenset(k for k, n in fields.items() if str in n[0])
    bool_ok = frozenset(k for k, n in fields.items() if bool in n[0])
    return (_ONLY_NONE, *_NO_INTS, _OBJECT, (fields, str_ok, bool_ok), None)


def _List(item: tuple) -> tuple:
    return (_ONLY_NONE, *_NO_INTS, _ARRAY, item, None)


def _Map(value: tuple) -> tuple:
    return (_ONLY_NONE, *_NO_INTS, _MAPPING, value, None)


_ANY_OBJ = _obj()
_STR_LIST = _List(_STR)
_STR_MAP = _Map(_STR)

_PROFILE = _obj(type=_STR, localhostProfile=_STR)
_SELINUX = _obj(user=_STR, role=_STR, type=_STR, level=_STR)
_WINDOWS = _obj(gmsaCredentialSpecName=_STR, gmsaCredentialSpec=_STR, runAsUserName=_STR, hostProcess=_BOOL)

_POD_SECURITY_CONTEXT = _obj(
    runAsUser=_I64,
    runAsGroup=_I64,
    runAsNonRoot=_BOOL,
    fsGroup=_I64,
    fsGroupChangePolicy=_STR,
    supplementalGroups=_List(_I64),
    supplementalGroupsPolicy=_STR,
    seLinuxOptions=_SELINUX,
    seLinuxChangePolicy=_STR,
    seccompProfile=_PROFILE,
    appArmorProfile=_PROFILE,
    windowsOptions=_WINDOWS,
    sysctls=_List(_obj(name=_STR, value=_STR)),
)

_SECURITY_CONTEXT = _obj(
    capabilities=_obj(add=_STR_LIST, drop=_STR_LIST),
    privileged=_BOOL,
    seLinuxOptions=_SELINUX,
    windowsOptions=_WINDOWS,
    runAsUser=_I64,
    runAsGroup=_I64,
    runAsNonRoot=_BOOL,
    readOnlyRootFilesystem=_BOOL,
    allowPrivilegeEscalation=_BOOL,
    procMount=_STR,
    seccompProfile=_PROFILE,
    appArmorProfile=_PROFILE,
)

_KEY_SELECTOR = _obj(name=_STR, key=_STR, optional=_BOOL)
_FIELD_REF = _obj(apiVersion=_STR, fieldPath=_STR)
_RESOURCE_FIELD_REF = _obj(containerName=_STR, resource=_STR, divisor=_QUANTITY)
_EXEC = _obj(command=_STR_LIST)
_HTTP_GET = _obj(
    path=_STR, port=_INT_OR_STR, host=_STR, scheme=_STR, httpHeaders=_List(_obj(name=_STR, value=_STR))
)
_TCP_SOCKET = _obj(host=_STR, port=_INT_OR_STR)
_HANDLER = _obj(exec=_EXEC, httpGet=_HTTP_GET, tcpSocket=_TCP_SOCKET, sleep=_obj(seconds=_I64))
_PROBE = _obj(
    exec=_EXEC,
    httpGet=_HTTP_GET,
    tcpSocket=_TCP_SOCKET,
    grpc=_obj(port=_I32, service=_STR),
    initialDelaySeconds=_I32,
    timeoutSeconds=_I32,
    periodSeconds=_I32,
    successThreshold=_I32,
    failureThreshold=_I32,
    terminationGracePeriodSeconds=_I64,
)

_CONTAINER = _obj(
    name=_STR,
    image=_STR,
    command=_STR_LIST,
    args=_STR_LIST,
    workingDir=_STR,
    env=_List(
        _obj(
            name=_STR,
            value=_STR,
            valueFrom=_obj(
                fieldRef=_FIELD_REF,
                resourceFieldRef=_RESOURCE_FIELD_REF,
                configMapKeyRef=_KEY_SELECTOR,
                secretKeyRef=_KEY_SELECTOR,
            ),
        )
    ),
    envFrom=_List(
        _obj(
            prefix=_STR,
            configMapRef=_obj(name=_STR, optional=_BOOL),
            secretRef=_obj(name=_STR, optional=_BOOL),
        )
    ),
    ports=_List(_obj(name=_STR, containerPort=_I32, hostPort=_I32, protocol=_STR, hostIP=_STR)),
    resources=_obj(limits=_Map(_QUANTITY), requests=_Map(_QUANTITY)),
    volumeMounts=_List(
        _obj(
            name=_STR,
            mountPath=_STR,
            subPath=_STR,
            subPathExpr=_STR,
            readOnly=_BOOL,
            mountPropagation=_STR,
            recursiveReadOnly=_STR,
        )
    ),
    livenessProbe=_PROBE,
    readinessProbe=_PROBE,
    startupProbe=_PROBE,
    lifecycle=_obj(postStart=_HANDLER, preStop=_HANDLER),
    terminationMessagePath=_STR,
    terminationMessagePolicy=_STR,
    imagePullPolicy=_STR,
    restartPolicy=_STR,
    securityContext=_SECURITY_CONTEXT,
    stdin=_BOOL,
    stdinOnce=_BOOL,
    tty=_BOOL,
    targetContainerName=_STR,
)

# ``defaultUser``/``user`` (KEP-5936) are in the 1.37 schema whether or not their gate is on: the
# decoder refuses a wrong type before the registry drops a disabled field.
_KEY_TO_PATH = _List(_obj(key=_STR, path=_STR, mode=_I32, user=_I64))
_DOWNWARD_FILES = _List(
    _obj(path=_STR, mode=_I32, fieldRef=_FIELD_REF, resourceFieldRef=_RESOURCE_FIELD_REF, user=_I64)
)

_VOLUME = _obj(
    name=_STR,
    emptyDir=_obj(medium=_STR, sizeLimit=_QUANTITY),
    hostPath=_obj(path=_STR, type=_STR),
    configMap=_obj(name=_STR, defaultMode=_I32, optional=_BOOL, items=_KEY_TO_PATH, defaultUser=_I64),
    secret=_obj(secretName=_STR, defaultMode=_I32, optional=_BOOL, items=_KEY_TO_PATH, defaultUser=_I64),
    downwardAPI=_obj(defaultMode=_I32, items=_DOWNWARD_FILES, defaultUser=_I64),
    projected=_obj(
        defaultMode=_I32,
        defaultUser=_I64,
        sources=_List(
            _obj(
                secret=_obj(name=_STR, optional=_BOOL, items=_KEY_TO_PATH),
                configMap=_obj(name=_STR, optional=_BOOL, items=_KEY_TO_PATH),
                downwardAPI=_obj(items=_DOWNWARD_FILES),
                serviceAccountToken=_obj(audience=_STR, expirationSeconds=_I64, path=_STR, user=_I64),
                clusterTrustBundle=_obj(name=_STR, signerName=_STR, path=_STR, optional=_BOOL, user=_I64),
            )
        ),
    ),
    persistentVolumeClaim=_obj(claimName=_STR, readOnly=_BOOL),
    nfs=_obj(server=_STR, path=_STR, readOnly=_BOOL),
    csi=_obj(driver=_STR, readOnly=_BOOL, fsType=_STR, volumeAttributes=_STR_MAP),
    ephemeral=_ANY_OBJ,
    image=_obj(reference=_STR, pullPolicy=_STR),
)

_SPEC = _obj(
    securityContext=_POD_SECURITY_CONTEXT,
    hostNetwork=_BOOL,
    hostPID=_BOOL,
    hostIPC=_BOOL,
    hostUsers=_BOOL,
    shareProcessNamespace=_BOOL,
    containers=_List(_CONTAINER),
    initContainers=_List(_CONTAINER),
    ephemeralContainers=_List(_CONTAINER),
    volumes=_List(_VOLUME),
    restartPolicy=_STR,
    terminationGracePeriodSeconds=_I64,
    activeDeadlineSeconds=_I64,
    serviceAccountName=_STR,
    serviceAccount=_STR,
    automountServiceAccountToken=_BOOL,
    nodeName=_STR,
    hostname=_STR,
    subdomain=_STR,
    os=_obj(name=_STR),
    runtimeClassName=_STR,
    dnsPolicy=_STR,
    priorityClassName=_STR,
    enableServiceLinks=_BOOL,
    setHostnameAsFQDN=_BOOL,
    nodeSelector=_STR_MAP,
    imagePullSecrets=_List(_obj(name=_STR)),
)

_METADATA = _obj(
    name=_STR, generateName=_STR, namespace=_STR, uid=_STR, labels=_STR_MAP, annotations=_STR_MAP
)


def _with_field(node: tuple, key: str, child: tuple) -> tuple:
    """A copy of object node ``node`` that also knows ``key``."""
    return _obj(**{**node[4][0], key: child})


_SPEC_FS_USER = _with_field(_SPEC, "securityContext", _with_field(_POD_SECURITY_CONTEXT, "fsUser", _I64))
"""The spec an API server with podsec's ``PodSecurityContextFSUser`` gate would decode: with the gate
off ``fsUser`` is an unknown field, which a non-strict decoder drops whatever its type."""


def _flat(link: tuple | None) -> tuple:
    """Turn the walker's linked path ``(((None, "spec"), "containers"), 0)`` into a flat tuple."""
    segs = []
    while link is not None:
        link, seg = link
        segs.append(seg)
    segs.reverse()
    return tuple(segs)


def _bad(link: tuple, value: object, expected: str, got: str, errs: list[FieldError]) -> None:
    errs.append(FieldError("InvalidType", _flat(link), f"expected {expected}, got {got}", value))


def _scalar(kind: _Scalar, v: object, link: tuple, errs: list[FieldError]) -> None:
    """The slow path for a scalar that is not of an exact fast type (subclasses, wrong types)."""
    got = _kind_of(v)
    if got not in kind.accepts:
        _bad(link, v, kind.expected, got, errs)
    elif got == "integer" and kind.bits:
        lo, hi = _INT_LIMITS[kind.bits]
        if not lo <= v <= hi:  # type: ignore[operator]
            _bad(link, v, f"{kind.expected} (int{kind.bits})", "integer out of range", errs)


def _walk(node: tuple, v: object, link: tuple, errs: list[FieldError]) -> None:
    """The general (slow) path: subclasses of dict/list/str, mappings and wrong types."""
    if v is None:
        return
    tag = node[3]
    if tag == _OBJECT:
        if isinstance(v, dict):
            _walk_object(node[4], v, link, errs)
        else:
            _bad(link, v, "object", _kind_of(v), errs)
    elif tag == _ARRAY:
        if isinstance(v, list):
            _walk_array(node[4], v, link, errs)
        else:
            _bad(link, v, "array", _kind_of(v), errs)
    elif tag == _MAPPING:
        if isinstance(v, dict):
            _walk_mapping(node[4], v, link, errs)
        else:
            _bad(link, v, "object", _kind_of(v), errs)
    else:
        _scalar(node[5], v, link, errs)


def _walk_object(payload: tuple, v: dict, link: tuple, errs: list[FieldError]) -> None:
    fields, str_ok, bool_ok = payload
    for k, sub in v.items():
        t = type(sub)
        # Most leaves are strings or booleans: settle them with one set lookup.
        if t is str:
            if k in str_ok:
                continue
        elif t is bool and k in bool_ok:
            continue
        node = fields.get(k)
        if node is None:
            continue
        if t in node[0]:
            continue
        if t is int:
            if node[1] <= sub <= node[2]:
                continue
        elif t is dict:
            tag = node[3]
            if tag == _OBJECT:
                _walk_object(node[4], sub, (link, k), errs)
                continue
            if tag == _MAPPING and node[4][0].issuperset(map(type, sub.values())):
                continue  # labels, limits…: every value of an accepted type
        elif t is list and node[3] == _ARRAY:
            item = node[4]
            # command, args, capabilities…: a C-level pass settles all-good scalar lists.
            if item[3] == _OBJECT or not item[0].issuperset(map(type, sub)):
                _walk_array(item, sub, (link, k), errs)
            continue
        _walk(node, sub, (link, k), errs)


def _walk_array(item: tuple, v: list, link: tuple, errs: list[FieldError]) -> None:
    if item[3] == _OBJECT:
        payload = item[4]
        _, str_ok, bool_ok = payload
        for i, x in enumerate(v):
            if type(x) is dict:
                # Inline pass for flat string/bool items (env vars, mounts, sysctls): no call, no path.
                for k, sub in x.items():
                    t = type(sub)
                    if (t is str and k in str_ok) or (t is bool and k in bool_ok):
                        continue
                    _walk_object(payload, x, (link, i), errs)
                    break
            elif x is not None:
                _walk(item, x, (link, i), errs)
        return
    ok, lo, hi = item[0], item[1], item[2]
    if ok.issuperset(map(type, v)):  # C-level fast path: every element of an accepted type
        return
    for i, x in enumerate(v):
        t = type(x)
        if t in ok or (t is int and lo <= x <= hi):
            continue
        _walk(item, x, (link, i), errs)


def _walk_mapping(value: tuple, v: dict, link: tuple, errs: list[FieldError]) -> None:
    ok, lo, hi = value[0], value[1], value[2]
    if ok.issuperset(map(type, v.values())):
        return
    for k, x in v.items():
        t = type(x)
        if t in ok or (t is int and lo <= x <= hi):
            continue
        # YAML→JSON conversion stringifies non-string keys (``1: x`` is the label "1").
        _walk(value, x, (link, Key(k if isinstance(k, str) else str(k))), errs)


def check_types(metadata: object, spec: object, *, fs_user: bool = False) -> list[FieldError]:
    """Every value the API server could not even decode, as ``InvalidType`` errors.

    E.g. ``spec.securityContext.runAsUser: Invalid value: "abc": expected integer, got string``.
    Paths start at the pod (template) root, like :func:`podsec.api.validation.validate_pod`.
    ``fs_user``: the ``PodSecurityContextFSUser`` gate is on, so ``fsUser`` is a known int64 field.
    """
    errs: list[FieldError] = []
    if metadata is not None:
        _walk(_METADATA, metadata, (None, "metadata"), errs)
    if spec is not None:
        _walk(_SPEC_FS_USER if fs_user else _SPEC, spec, (None, "spec"), errs)
    return errs
