"""procMount (baseline, v1.0+) and procMount_restricted (restricted, v1.35+).

The default /proc masks reduce the attack surface and must be kept.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount
Allowed values: undefined/"Default"
From v1.35 the baseline check allows pods with spec.hostUsers=false (user namespaces) outright;
in restricted, procMount_restricted overrides it from v1.35 and applies the rule without that relaxation.
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    BASELINE,
    RESTRICTED,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    host_users_false,
    join_quote,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "procMount"
RESTRICTED_ID = "procMount_restricted"


def _proc_mount(spec: dict, check_id: str) -> CheckOutcome | None:
    bad: list[str] = []
    values: set[str] = set()
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        if sc is None:
            continue
        pm = sc.get("procMount")
        if pm is not None and pm != "Default":
            bad.append(container_name(c))
            values.add(as_str(pm))
            fields.append(("spec", key, i, "securityContext", "procMount"))
    if not bad:
        return None
    return CheckOutcome(
        check_id,
        False,
        "procMount",
        f"{containers_phrase(bad)} must not set securityContext.procMount to {join_quote(sorted(values))}",
        fields,
    )


def proc_mount_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid any procMount other than Default."""
    return _proc_mount(spec, ID)


def proc_mount_v1_35(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.0, but user-namespaced pods (hostUsers: false) are allowed."""
    if host_users_false(spec):
        return None
    return _proc_mount(spec, ID)


def proc_mount_restricted_v1_35(metadata: dict, spec: dict) -> CheckOutcome | None:
    """The v1.0 rule with no user-namespace relaxation."""
    return _proc_mount(spec, RESTRICTED_ID)


_PM = "c.?securityContext.?procMount"
_BAD = f"{_PM}.orValue('Default') != 'Default'"
CEL_V1_0 = cel.CelRule(
    f"!variables.containers.exists(c, {_BAD})",
    cel.lit("procMount"),
    cel.containers_phrase(cel.names_where(_BAD)) + " + ' must not set securityContext.procMount to ' + "
    + cel.sorted_join(cel.singletons(f"variables.containers.filter(c, {_BAD}).map(c, {_PM}.value())")),
)

CHECK = Check(
    ID,
    BASELINE,
    (
        VersionedCheck(0, proc_mount_v1_0, cel=CEL_V1_0),
        VersionedCheck(35, proc_mount_v1_35, cel=cel.exempt(CEL_V1_0, "hostUsersFalse")),
    ),
)
RESTRICTED_CHECK = Check(
    RESTRICTED_ID, RESTRICTED, (VersionedCheck(35, proc_mount_restricted_v1_35, (ID,), CEL_V1_0),)
)
