"""capabilities_restricted (restricted, v1.22+; overrides capabilities_baseline).

Containers must drop ALL capabilities, and are only permitted to add back NET_BIND_SERVICE.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
    must contain the exact string "ALL" (dropping every capability by name is not enough)
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
    allowed: undefined/empty or "NET_BIND_SERVICE"
From v1.25 pods with spec.os.name == "windows" are exempt.
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    RESTRICTED,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
    is_windows,
    join_quote,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "capabilities_restricted"
_DROP_KEYS = ("securityContext", "capabilities", "drop")


def capabilities_restricted_v1_22(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Require drop: ["ALL"] and forbid adding anything but NET_BIND_SERVICE."""
    missing_drop_all: list[str] = []
    adding_forbidden: list[str] = []
    forbidden_caps: set[str] = set()
    fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        caps = sub(sc, "capabilities") if sc is not None else None
        if caps is None:
            missing_drop_all.append(container_name(c))
            fields.append(deepest(("spec", key, i), c, _DROP_KEYS))
            continue
        drop = caps.get("drop")
        if not (isinstance(drop, list) and "ALL" in drop):
            missing_drop_all.append(container_name(c))
            fields.append(deepest(("spec", key, i), c, _DROP_KEYS))
        add = caps.get("add")
        if isinstance(add, list):
            container_bad = False
            for j, cap in enumerate(add):
                if cap != "NET_BIND_SERVICE":
                    container_bad = True
                    forbidden_caps.add(as_str(cap))
                    fields.append(("spec", key, i, "securityContext", "capabilities", "add", j))
            if container_bad:
                adding_forbidden.append(container_name(c))
    parts: list[str] = []
    if missing_drop_all:
        parts.append(
            f'{containers_phrase(missing_drop_all)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding_forbidden:
        parts.append(
            f"{containers_phrase(adding_forbidden)} must not include {join_quote(sorted(forbidden_caps))} "
            "in securityContext.capabilities.add"
        )
    if not parts:
        return None
    return CheckOutcome(ID, False, "unrestricted capabilities", "; ".join(parts), fields)


def capabilities_restricted_v1_25(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.22, but Windows pods are exempt."""
    if is_windows(spec):
        return None
    return capabilities_restricted_v1_22(metadata, spec)


_CAPS = "c.?securityContext.?capabilities"
_DROP_OK = f"'ALL' in {_CAPS}.?drop.orValue([])"
_ADD_BAD = "a_ != 'NET_BIND_SERVICE'"
_ADDING = f"{_CAPS}.?add.orValue([]).exists(a_, {_ADD_BAD})"
CEL_V1_22 = cel.CelRule(
    f"variables.containers.all(c, {_DROP_OK} && !({_ADDING}))",
    cel.lit("unrestricted capabilities"),
    "("
    + cel.when("missing_.size() > 0", cel.containers_phrase("missing_")
               + " + ' must set securityContext.capabilities.drop=[\"ALL\"]'")
    + " + "
    + cel.when("adding_.size() > 0", cel.containers_phrase("adding_") + " + ' must not include ' + "
               + cel.sorted_join(f"variables.containers.map(c, {_CAPS}.?add.orValue([]).filter(a_, {_ADD_BAD}))")
               + " + ' in securityContext.capabilities.add'")
    + ").join('; ')",
    (("missing_", cel.names_where(f"!({_DROP_OK})")), ("adding_", cel.names_where(_ADDING))),
)

CHECK = Check(
    ID,
    RESTRICTED,
    (
        VersionedCheck(22, capabilities_restricted_v1_22, ("capabilities_baseline",), CEL_V1_22),
        VersionedCheck(
            25, capabilities_restricted_v1_25, ("capabilities_baseline",), cel.exempt(CEL_V1_22, "isWindows")
        ),
    ),
)
