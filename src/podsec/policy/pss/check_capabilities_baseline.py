"""capabilities_baseline (baseline, v1.0+; replaced by capabilities_restricted in restricted from v1.22).

Adding capabilities beyond the container runtime's default set must be forbidden.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
Allowed values: undefined/empty, or any of AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT (exact, case-sensitive,
no "CAP_" prefix).
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    BASELINE,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    join_quote,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "capabilities_baseline"
ALLOWED_CAPABILITIES = frozenset(
    (
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    )
)


def capabilities_baseline_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid capabilities.add entries outside the runtime's default set."""
    bad_containers: list[str] = []
    bad_caps: set[str] = set()
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        caps = sub(sc, "capabilities") if sc is not None else None
        if caps is None:
            continue
        add = caps.get("add")
        if not isinstance(add, list):
            continue
        container_bad = False
        for j, cap in enumerate(add):
            cs = as_str(cap)
            if cs not in ALLOWED_CAPABILITIES:
                container_bad = True
                bad_caps.add(cs)
                fields.append(("spec", key, i, "securityContext", "capabilities", "add", j))
        if container_bad:
            bad_containers.append(container_name(c))
    if not bad_containers:
        return None
    return CheckOutcome(
        ID,
        False,
        "non-default capabilities",
        f"{containers_phrase(bad_containers)} must not include {join_quote(sorted(bad_caps))} "
        "in securityContext.capabilities.add",
        fields,
    )


_ADD = "c.?securityContext.?capabilities.?add.orValue([])"
_ALLOWED = cel.str_list(ALLOWED_CAPABILITIES)
_BAD = f"!(a_ in {_ALLOWED})"
CEL_V1_0 = cel.CelRule(
    f"variables.containers.all(c, {_ADD}.all(a_, a_ in {_ALLOWED}))",
    cel.lit("non-default capabilities"),
    cel.containers_phrase(cel.names_where(f"{_ADD}.exists(a_, {_BAD})")) + " + ' must not include ' + "
    + cel.sorted_join(f"variables.containers.map(c, {_ADD}.filter(a_, {_BAD}))")
    + " + ' in securityContext.capabilities.add'",
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, capabilities_baseline_v1_0, cel=CEL_V1_0),))
