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


_SET = "['hostNetwork', 'hostPID', 'hostIPC'].filter(n_, n_ in object.spec && object.spec[n_] == true)"
CEL_V1_0 = cel.CelRule(f"{_SET}.size() == 0", cel.lit("host namespaces"), f"{_SET}.map(n_, n_ + '=true').join(', ')")

CHECK = Check(ID, BASELINE, (VersionedCheck(0, host_namespaces_v1_0, cel=CEL_V1_0),))
