"""hostProbesAndHostLifecycle (baseline, v1.34+).

The host field of probes and lifecycle handlers must not be set (it could target host services).

Restricted fields, for spec.{initContainers,containers,ephemeralContainers}[*]:
  {livenessProbe,readinessProbe,startupProbe}.{httpGet,tcpSocket}.host
  lifecycle.{postStart,preStop}.{httpGet,tcpSocket}.host
Allowed values: undefined/"" (grpc, exec and sleep handlers are not checked)
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
    pluralize,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "hostProbesAndHostLifecycle"


def _handler_hosts(handler: dict, path: FieldPath, hosts: set[str], fields: list[FieldPath]) -> bool:
    """Collect non-empty httpGet/tcpSocket hosts of one probe or lifecycle handler."""
    found = False
    for action in ("httpGet", "tcpSocket"):
        a = sub(handler, action)
        if a is not None:
            h = as_str(a.get("host"))
            if h:
                hosts.add(h)
                fields.append((*path, action, "host"))
                found = True
    return found


def host_probes_and_host_lifecycle_v1_34(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid explicit hosts in probes and lifecycle handlers; containers and hosts sorted, distinct."""
    bad: set[str] = set()
    hosts: set[str] = set()
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        found = False
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            p = sub(c, probe)
            if p is not None and _handler_hosts(p, ("spec", key, i, probe), hosts, fields):
                found = True
        lc = sub(c, "lifecycle")
        if lc is not None:
            for hook in ("postStart", "preStop"):
                h = sub(lc, hook)
                if h is not None and _handler_hosts(h, ("spec", key, i, "lifecycle", hook), hosts, fields):
                    found = True
        if found:
            bad.add(container_name(c))
    if not bad:
        return None
    return CheckOutcome(
        ID,
        False,
        "probe or lifecycle host",
        f"{containers_phrase(sorted(bad))} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
        f"{join_quote(sorted(hosts))}",
        fields,
    )


_HANDLERS = (
    *(f"c.?{probe}" for probe in ("livenessProbe", "readinessProbe", "startupProbe")),
    *(f"c.?lifecycle.?{hook}" for hook in ("postStart", "preStop")),
)
_HOSTS = "[" + ", ".join(f"{h}.?{a}.?host.orValue('')" for h in _HANDLERS for a in ("httpGet", "tcpSocket")) + "]"
CEL_V1_34 = cel.CelRule(
    f"variables.containers.all(c, {_HOSTS}.all(h_, h_ == ''))",
    cel.lit("probe or lifecycle host"),
    f"({cel.one_value('bad_')} ? 'container ' : 'containers ') + " + cel.sorted_join("bad_") + " + ' ' + "
    + f"({cel.one_value('bad_')} ? 'uses' : 'use') + ' ' + "
    + f"({cel.one_value('hosts_')} ? 'probe or lifecycle host' : 'probe or lifecycle hosts') + ' ' + "
    + cel.sorted_join("hosts_"),
    (
        ("bad_", cel.singletons(cel.names_where(f"{_HOSTS}.exists(h_, h_ != '')"))),
        ("hosts_", f"variables.containers.map(c, {_HOSTS}.filter(h_, h_ != ''))"),
    ),
)

CHECK = Check(ID, BASELINE, (VersionedCheck(34, host_probes_and_host_lifecycle_v1_34, cel=CEL_V1_34),))
