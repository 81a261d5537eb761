"""hostNamespaces (baseline, v1.0+).

Sharing the host namespaces must be disallowed.

Restricted fields: spec.hostNetwork, spec.hostPID, spec.hostIPC
Allowed values: undefined/false
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import BASELINE, Check, VersionedCheck, is_true
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "hostNamespaces"


def host_namespaces_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid hostNetwork/hostPID/hostIPC=true (reported in that fixed order)."""
    items: list[str] = []
    fields: list[FieldPath] = []
    for name in ("hostNetwork", "hostPID", "hostIPC"):
        if is_true(spec.get(name)):
            items.append(f"{name}=true")
            fields.append(("spec", name))
    if not items:
        return None
    return CheckOutcome(ID, False, "host namespaces", ", ".join(items), fields)


_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")  # the order PSA reports them in
_SET = {n: f"object.spec.?{n}.orValue(false) == true" for n in _NAMESPACES}
CEL_V1_0 = cel.CelRule(
    "!(" + " || ".join(_SET.values()) + ")",
    cel.lit("host namespaces"),
    "(" + " + ".join(cel.when(cond, cel.lit(f"{n}=true")) for n, cond in _SET.items()) + ").join(', ')",
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, host_namespaces_v1_0, cel=CEL_V1_0),))
