"""allowPrivilegeEscalation (restricted, v1.8+).

Privilege escalation (e.g. via set-user-ID or set-group-ID file mode) must not be allowed.

Restricted fields:
  spec.containers[*].securityContext.allowPrivilegeEscalation
  spec.initContainers[*].securityContext.allowPrivilegeEscalation
  spec.ephemeralContainers[*].securityContext.allowPrivilegeEscalation
Allowed values: false (an unset value is not allowed).
From v1.25 pods with spec.os.name == "windows" are exempt.
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    RESTRICTED,
    Check,
    VersionedCheck,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
    is_false,
    is_windows,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "allowPrivilegeEscalation"
_KEYS = ("securityContext", "allowPrivilegeEscalation")


def allow_privilege_escalation_v1_8(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Every container must explicitly set allowPrivilegeEscalation=false."""
    bad: list[str] = []
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = c.get("securityContext")
        if isinstance(sc, dict) and is_false(sc.get("allowPrivilegeEscalation")):
            continue
        bad.append(container_name(c))
        fields.append(deepest(("spec", key, i), c, _KEYS))
    if not bad:
        return None
    return CheckOutcome(
        ID,
        False,
        "allowPrivilegeEscalation != false",
        f"{containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false",
        fields,
    )


def allow_privilege_escalation_v1_25(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.8, but Windows pods are exempt."""
    if is_windows(spec):
        return None
    return allow_privilege_escalation_v1_8(metadata, spec)


_OK = "c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false"
CEL_V1_8 = cel.CelRule(
    f"variables.containers.all(c, {_OK})",
    cel.lit("allowPrivilegeEscalation != false"),
    cel.containers_phrase(cel.names_where(f"!({_OK})"))
    + " + ' must set securityContext.allowPrivilegeEscalation=false'",
)

CHECK = Check(
    ID,
    RESTRICTED,
    (
        VersionedCheck(8, allow_privilege_escalation_v1_8, cel=CEL_V1_8),
        VersionedCheck(25, allow_privilege_escalation_v1_25, cel=cel.exempt(CEL_V1_8, "isWindows")),
    ),
)
