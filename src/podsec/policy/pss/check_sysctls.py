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

from podsec.policy.pss import cel
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


def _cel(allowed: frozenset[str]) -> cel.CelRule:
    bad = f"!(s_.?name.orValue('') in {cel.str_list(allowed)})"
    sysctls = "variables.podSecurityContext.?sysctls.orValue([])"
    return cel.CelRule(
        f"!{sysctls}.exists(s_, {bad})",
        cel.lit("forbidden sysctls"),
        f"{sysctls}.filter(s_, {bad}).map(s_, s_.?name.orValue('')).join(', ')",
    )


def _versioned(minor: int, allowed: frozenset[str], doc: str) -> VersionedCheck:
    """One variant from its allowed set: the Python check and its CEL form."""
    return VersionedCheck(minor, _variant(allowed, doc), cel=_cel(allowed))


CHECK = Check(
    ID,
    BASELINE,
    (
        _versioned(0, ALLOWED_1_0, "Allow only the v1.0 safe sysctls (names unquoted, spec order)."),
        _versioned(27, ALLOWED_1_27, "v1.0 set plus net.ipv4.ip_local_reserved_ports."),
        _versioned(29, ALLOWED_1_29, "v1.27 set plus the tcp keepalive/fin_timeout sysctls."),
        _versioned(32, ALLOWED_1_32, "v1.29 set plus tcp_rmem/tcp_wmem."),
        _versioned(37, ALLOWED_1_37, "v1.32 set plus tcp_slow_start_after_idle/tcp_notsent_lowat."),
    ),
)
