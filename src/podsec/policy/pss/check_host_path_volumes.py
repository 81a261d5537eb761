"""hostPathVolumes (baseline, v1.0+; replaced by restrictedVolumes in restricted).

HostPath volumes must be forbidden.

Restricted fields: spec.volumes[*].hostPath
Allowed values: undefined/null
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import BASELINE, Check, VersionedCheck, as_str, join_quote, pluralize
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "hostPathVolumes"


def host_path_volumes_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid any volume with a hostPath source (names listed in spec order)."""
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        return None
    names: list[str] = []
    fields: list[FieldPath] = []
    for i, v in enumerate(volumes):
        if isinstance(v, dict) and v.get("hostPath") is not None:
            names.append(as_str(v.get("name")))
            fields.append(("spec", "volumes", i))
    if not names:
        return None
    return CheckOutcome(
        ID,
        False,
        "hostPath volumes",
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}",
        fields,
    )


CEL_V1_0 = cel.CelRule(
    "variables.volumes.all(v_, !has(v_.hostPath))",
    cel.lit("hostPath volumes"),
    cel.pluralize("names_.size()", "volume", "volumes") + " + ' ' + " + cel.join_quote("names_"),
    (("names_", "variables.volumes.filter(v_, has(v_.hostPath)).map(v_, v_.?name.orValue(''))"),),
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, host_path_volumes_v1_0, cel=CEL_V1_0),))
