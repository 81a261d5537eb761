"""sysctls (baseline, v1.0+).

Sysctls can disable security mechanisms or affect all containers on a host; only a safe,
namespaced subset is allowed.

Restricted fields: spec.securityContext.sysctls[*].name
Allowed values (cumulative):
  v1.0:  kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies,
         net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start
  v1.27: net.ipv4.ip_local_reserved_ports
  v1.29: net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl,
         net.ipv4.tcp_keepalive_probes
  v1.32: net.ipv4.tcp_rmem, net.ipv4.tcp_wmem
  v1.37: net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat
"""

from __future__ import annotations

from podsec.policy.pss._common import BASELINE, Check, CheckFn, VersionedCheck, as_str, sub
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "sysctls"

ALLOWED_1_0 = frozenset(
    (
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    )
)
ALLOWED_1_27 = ALLOWED_1_0 | {"net.ipv4.ip_local_reserved_ports"}
ALLOWED_1_29 = ALLOWED_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_1_32 = ALLOWED_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
ALLOWED_1_37 = ALLOWED_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(spec: dict, allowed: frozenset[str]) -> CheckOutcome | None:
    psc = sub(spec, "securityContext")
    if psc is None:
        return None
    sysctls = psc.get("sysctls")
    if not isinstance(sysctls, list):
        return None
    bad: list[str] = []
    fields: list[FieldPath] = []
    for i, s in enumerate(sysctls):
        name = as_str(s.get("name")) if isinstance(s, dict) else ""
        if name not in allowed:
            bad.append(name)
            fields.append(("spec", "securityContext", "sysctls", i))
    if not bad:
        return None
    return CheckOutcome(ID, False, "forbidden sysctls", ", ".join(bad), fields)


def _variant(allowed: frozenset[str], doc: str) -> CheckFn:
    def check(metadata: dict, spec: dict) -> CheckOutcome | None:
        return _sysctls(spec, allowed)

    check.__doc__ = doc
    return check


sysctls_v1_0 = _variant(ALLOWED_1_0, "Allow only the v1.0 safe sysctls (names unquoted, spec order).")
sysctls_v1_27 = _variant(ALLOWED_1_27, "v1.0 set plus net.ipv4.ip_local_reserved_ports.")
sysctls_v1_29 = _variant(ALLOWED_1_29, "v1.27 set plus the tcp keepalive/fin_timeout sysctls.")
sysctls_v1_32 = _variant(ALLOWED_1_32, "v1.29 set plus tcp_rmem/tcp_wmem.")
sysctls_v1_37 = _variant(ALLOWED_1_37, "v1.32 set plus tcp_slow_start_after_idle/tcp_notsent_lowat.")

CHECK = Check(
    ID,
    BASELINE,
    (
        VersionedCheck(0, sysctls_v1_0),
        VersionedCheck(27, sysctls_v1_27),
        VersionedCheck(29, sysctls_v1_29),
        VersionedCheck(32, sysctls_v1_32),
        VersionedCheck(37, sysctls_v1_37),
    ),
)
