"""windowsHostProcess (baseline, v1.0+).

Windows HostProcess containers have privileged access to the host and must be forbidden.

Restricted fields:
  spec.securityContext.windowsOptions.hostProcess
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.windowsOptions.hostProcess
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

ID = "windowsHostProcess"
_FIELD = ("securityContext", "windowsOptions", "hostProcess")


def _host_process(sc: dict | None) -> bool:
    wo = sub(sc, "windowsOptions") if sc is not None else None
    return wo is not None and is_true(wo.get("hostProcess"))


def windows_host_process_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid windowsOptions.hostProcess=true on the pod or any container."""
    setters: list[str] = []
    fields: list[FieldPath] = []
    if _host_process(sub(spec, "securityContext")):
        setters.append("pod")
        fields.append(("spec", *_FIELD))
    bad: list[str] = []
    for key, i, c in containers_of(spec):
        if _host_process(sub(c, "securityContext")):
            bad.append(container_name(c))
            fields.append(("spec", key, i, *_FIELD))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    return CheckOutcome(
        ID,
        False,
        "hostProcess",
        f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
        fields,
    )


_POD_HP = "variables.podSecurityContext.?windowsOptions.?hostProcess.orValue(false) == true"
_CTR_HP = "c.?securityContext.?windowsOptions.?hostProcess.orValue(false) == true"
CEL_V1_0 = cel.CelRule(
    f"!({_POD_HP}) && !variables.containers.exists(c, {_CTR_HP})",
    cel.lit("hostProcess"),
    "(" + cel.when(_POD_HP, "'pod'") + " + " + cel.when("bad_.size() > 0", cel.containers_phrase("bad_"))
    + ").join(' and ') + ' must not set securityContext.windowsOptions.hostProcess=true'",
    (("bad_", cel.names_where(_CTR_HP)),),
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, windows_host_process_v1_0, cel=CEL_V1_0),))
