"""privileged (baseline, v1.0+).

Privileged pods disable most security mechanisms and must be disallowed.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.privileged
Allowed values: undefined/false
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    BASELINE,
    Check,
    VersionedCheck,
    container_name,
    containers_of,
    containers_phrase,
    is_true,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "privileged"


def privileged_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid securityContext.privileged=true."""
    bad: list[str] = []
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        if sc is not None and is_true(sc.get("privileged")):
            bad.append(container_name(c))
            fields.append(("spec", key, i, "securityContext", "privileged"))
    if not bad:
        return None
    return CheckOutcome(
        ID,
        False,
        "privileged",
        f"{containers_phrase(bad)} must not set securityContext.privileged=true",
        fields,
    )


_BAD = "c.?securityContext.?privileged.orValue(false) == true"
CEL_V1_0 = cel.CelRule(
    f"!variables.containers.exists(c, {_BAD})",
    cel.lit("privileged"),
    cel.containers_phrase(cel.names_where(_BAD)) + " + ' must not set securityContext.privileged=true'",
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, privileged_v1_0, cel=CEL_V1_0),))
