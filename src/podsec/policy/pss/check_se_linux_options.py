"""seLinuxOptions (baseline, v1.0+).

Setting a custom SELinux user or role is forbidden, and the SELinux type is restricted.

Restricted fields, at spec.securityContext and
spec.{initContainers,containers,ephemeralContainers}[*].securityContext:
  seLinuxOptions.type: undefined/"", container_t, container_init_t, container_kvm_t,
                       and container_engine_t from v1.31
  seLinuxOptions.user, seLinuxOptions.role: undefined/""
seLinuxOptions.level is not checked.
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

ID = "seLinuxOptions"
ALLOWED_TYPES_1_0 = frozenset(("", "container_t", "container_init_t", "container_kvm_t"))
ALLOWED_TYPES_1_31 = ALLOWED_TYPES_1_0 | {"container_engine_t"}


def _inspect(
    opts: dict, path: FieldPath, allowed_types: frozenset[str], bad_types: set[str], fields: list[FieldPath]
) -> tuple[bool, bool]:
    """Record a bad type and the bad subfields; return (user set, role set)."""
    t = as_str(opts.get("type"))
    if t not in allowed_types:
        bad_types.add(t)
        fields.append((*path, "type"))
    user = bool(as_str(opts.get("user")))
    if user:
        fields.append((*path, "user"))
    role = bool(as_str(opts.get("role")))
    if role:
        fields.append((*path, "role"))
    return user, role


def _se_linux_options(spec: dict, allowed_types: frozenset[str]) -> CheckOutcome | None:
    setters: list[str] = []
    bad_types: set[str] = set()
    set_user = set_role = False
    fields: list[FieldPath] = []

    psc = sub(spec, "securityContext")
    if psc is not None:
        opts = sub(psc, "seLinuxOptions")
        if opts is not None:
            n = len(fields)
            user, role = _inspect(
                opts, ("spec", "securityContext", "seLinuxOptions"), allowed_types, bad_types, fields
            )
            set_user |= user
            set_role |= role
            if len(fields) > n:
                setters.append("pod")
    bad: list[str] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        opts = sub(sc, "seLinuxOptions") if sc is not None else None
        if opts is None:
            continue
        n = len(fields)
        path = ("spec", key, i, "securityContext", "seLinuxOptions")
        user, role = _inspect(opts, path, allowed_types, bad_types, fields)
        set_user |= user
        set_role |= role
        if len(fields) > n:
            bad.append(container_name(c))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    parts: list[str] = []
    if bad_types:
        parts.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
    if set_user:
        parts.append("user may not be set")
    if set_role:
        parts.append("role may not be set")
    return CheckOutcome(
        ID,
        False,
        "seLinuxOptions",
        f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(parts)}",
        fields,
    )


def se_linux_options_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Restrict the SELinux type and forbid user/role (v1.0 type list)."""
    return _se_linux_options(spec, ALLOWED_TYPES_1_0)


def se_linux_options_v1_31(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.0, also allowing container_engine_t."""
    return _se_linux_options(spec, ALLOWED_TYPES_1_31)


def _cel(allowed_types: frozenset[str]) -> cel.CelRule:
    types = cel.str_list(allowed_types)
    pod, ctr = "variables.podSecurityContext.?seLinuxOptions", "c.?securityContext.?seLinuxOptions"

    def bad_type(o: str) -> str:
        return f"!({o}.?type.orValue('') in {types})"

    def bad(o: str) -> str:
        return f"({bad_type(o)} || {o}.?user.orValue('') != '' || {o}.?role.orValue('') != '')"

    def any_set(field: str) -> str:
        return f"({pod}.?{field}.orValue('') != '' || variables.containers.exists(c, {ctr}.?{field}.orValue('') != ''))"

    return cel.CelRule(
        f"!{bad(pod)} && !variables.containers.exists(c, {bad(ctr)})",
        cel.lit("seLinuxOptions"),
        "(" + cel.when(bad(pod), "'pod'") + " + " + cel.when("bad_.size() > 0", cel.containers_phrase("bad_"))
        + ").join(' and ') + ' set forbidden securityContext.seLinuxOptions: ' + ("
        + cel.when("types_.size() > 0", f"({cel.one_value('types_')} ? 'type ' : 'types ') + "
                   + cel.sorted_join("types_"))
        + " + " + cel.when(any_set("user"), "'user may not be set'")
        + " + " + cel.when(any_set("role"), "'role may not be set'") + ").join('; ')",
        (
            ("bad_", cel.names_where(bad(ctr))),
            ("types_", cel.singletons(
                cel.when(bad_type(pod), f"{pod}.?type.orValue('')")
                + f" + variables.containers.filter(c, {bad_type(ctr)}).map(c, {ctr}.?type.orValue(''))"
            )),
        ),
    )


CHECK = Check(
    ID,
    BASELINE,
    (
        VersionedCheck(0, se_linux_options_v1_0, cel=_cel(ALLOWED_TYPES_1_0)),
        VersionedCheck(31, se_linux_options_v1_31, cel=_cel(ALLOWED_TYPES_1_31)),
    ),
)
