"""Security-context rules shared by both levels and the container's own (``ValidateSecurityContext``):
seccomp and AppArmor fields, Windows options, runAsUserName, privileged/capabilities/procMount."""

from __future__ import annotations

from podsec.api.fielderror import FieldError
from podsec.api.validation.common import (
    _APE_PRIVILEGED,
    _APE_SYS_ADMIN,
    _CONTAINER_ID_FIELDS,
    _CTRL_RE,
    _GO_SPACE,
    _NETBIOS_RE,
    _PROC_MOUNT_TYPES,
    _PROFILE_TYPES,
    _USER_BAD_CHARS_RE,
    _USER_DOTS_SPACES_RE,
    _WIN_DOMAIN_DNS_RE,
    ValidationOptions,
    _check_ids,
    _dns1123_subdomain_msgs,
    _local_descending_path,
    _s,
)

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
