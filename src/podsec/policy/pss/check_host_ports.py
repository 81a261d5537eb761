"""hostPorts (baseline, v1.0+).

HostPorts should be disallowed entirely.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort
Allowed values: undefined/0
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
    is_int,
    pluralize,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "hostPorts"


def host_ports_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid non-zero hostPort; ports are listed unquoted, distinct and sorted as strings."""
    bad: list[str] = []
    ports: set[str] = set()
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        plist = c.get("ports")
        if not isinstance(plist, list):
            continue
        container_bad = False
        for j, p in enumerate(plist):
            if not isinstance(p, dict):
                continue
            hp = p.get("hostPort")
            if hp is not None and is_int(hp) and hp != 0:
                container_bad = True
                ports.add(str(int(hp)))
                fields.append(("spec", key, i, "ports", j, "hostPort"))
        if container_bad:
            bad.append(container_name(c))
    if not bad:
        return None
    return CheckOutcome(
        ID,
        False,
        "hostPort",
        f"{containers_phrase(bad)} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
        fields,
    )


_PORTS = "c.?ports.orValue([])"
_BAD = "p_.?hostPort.orValue(0) != 0"
CEL_V1_0 = cel.CelRule(
    f"variables.containers.all(c, !{_PORTS}.exists(p_, {_BAD}))",
    cel.lit("hostPort"),
    cel.containers_phrase("bad_") + " + ' ' + " + cel.pluralize("bad_.size()", "uses", "use") + " + ' ' + "
    + f"({cel.one_value('ports_')} ? 'hostPort' : 'hostPorts') + ' ' + " + cel.sorted_join("ports_", quoted=False),
    (
        ("bad_", cel.names_where(f"{_PORTS}.exists(p_, {_BAD})")),
        ("ports_", f"variables.containers.map(c, {_PORTS}.filter(p_, {_BAD}).map(p_, string(p_.hostPort)))"),
    ),
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, host_ports_v1_0, cel=CEL_V1_0),))
