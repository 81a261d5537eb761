"""runAsUser (restricted, v1.23+).

Containers must not set runAsUser to 0 (root).

Restricted fields:
  spec.securityContext.runAsUser
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser
Allowed values: any non-zero value, undefined/null
From v1.35 pods with spec.hostUsers=false (user namespaces) are allowed outright.
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
    host_users_false,
    is_int,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "runAsUser"


def _is_root(v: object) -> bool:
    # an integer 0 only: False == 0 in Python, but false is not a uid
    return v is not None and is_int(v) and v == 0


def run_as_user_v1_23(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid runAsUser=0 at pod or container level."""
    setters: list[str] = []
    fields: list[FieldPath] = []
    psc = sub(spec, "securityContext")
    if psc is not None and _is_root(psc.get("runAsUser")):
        setters.append("pod")
        fields.append(("spec", "securityContext", "runAsUser"))
    bad: list[str] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        if sc is not None and _is_root(sc.get("runAsUser")):
            bad.append(container_name(c))
            fields.append(("spec", key, i, "securityContext", "runAsUser"))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    return CheckOutcome(ID, False, "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0", fields)


def run_as_user_v1_35(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.23, but user-namespaced pods (hostUsers: false) are allowed."""
    if host_users_false(spec):
        return None
    return run_as_user_v1_23(metadata, spec)


_POD_ROOT = "variables.podSecurityContext.?runAsUser.orValue(1) == 0"
_CTR_ROOT = "c.?securityContext.?runAsUser.orValue(1) == 0"
CEL_V1_23 = cel.CelRule(
    f"!({_POD_ROOT}) && !variables.containers.exists(c, {_CTR_ROOT})",
    cel.lit("runAsUser=0"),
    "(" + cel.when(_POD_ROOT, "'pod'") + " + " + cel.when("bad_.size() > 0", cel.containers_phrase("bad_"))
    + ").join(' and ') + ' must not set runAsUser=0'",
    (("bad_", cel.names_where(_CTR_ROOT)),),
)

CHECK = Check(
    ID,
    RESTRICTED,
    (
        VersionedCheck(23, run_as_user_v1_23, cel=CEL_V1_23),
        VersionedCheck(35, run_as_user_v1_35, cel=cel.exempt(CEL_V1_23, "hostUsersFalse")),
    ),
)
