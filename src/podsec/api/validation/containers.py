"""Containers, init containers and ephemeral containers (``validateContainers`` and friends): names,
images, ports and host ports, volume mounts, the container security context, and what an ephemeral or init
container may not set."""

from __future__ import annotations

from podsec.api.fielderror import FieldError
from podsec.api.validation.common import (
    _BIDIRECTIONAL,
    _EMPTY,
    _EPHEMERAL_DISALLOWED,
    _EPHEMERAL_FORBIDDEN,
    _GO_SPACE,
    _GOOD_LABELS,
    _INIT_FORBIDDEN,
    _INIT_FORBIDDEN_FIELDS,
    _MOUNT_PROPAGATIONS,
    _NAME_IMAGE_KEYS,
    _PLAIN_MOUNT_KEYS,
    _PROTOCOLS,
    _PULL_POLICIES,
    _RECURSIVE_READ_ONLY,
    _RRO_PROPAGATION,
    _TERMINATION_MESSAGE_POLICIES,
    ValidationOptions,
    _dns1123_label,
    _i,
    _l,
    _local_descending_path,
    _name,
    _port_num,
    _s,
    _sc,
)
from podsec.api.validation.security_context import (
    _container_security_context,
)

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
