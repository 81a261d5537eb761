"""Shared helpers for the check modules: check registration types, tolerant field access,
the container visitor and the Go formatting helpers that make messages byte-exact.

Inputs are plain dicts/lists parsed from YAML/JSON (ruamel's dict/list/int subclasses work too).
Nothing here raises on malformed input: a value of the wrong type is treated as absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from podsec.policy.pss.cel import CelRule
from podsec.policy.pss.result import CheckOutcome, FieldPath

CheckFn = Callable[[dict, dict], CheckOutcome | None]
"""A check: ``(metadata, spec) -> None`` when allowed, else a failed ``CheckOutcome``."""

BASELINE = "baseline"
RESTRICTED = "restricted"


@dataclass(frozen=True, slots=True)
class VersionedCheck:
    """One variant of a check, in force from ``minimum_version`` (the minor of v1.N) to the next variant.

    ``cel`` is the same rule in CEL, for ``podsec policy vap``; the fixture tests prove the two equal.
    """

    minimum_version: int
    check_pod: CheckFn
    override_check_ids: tuple[str, ...] = ()
    cel: CelRule | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: ID, level and its variants sorted by minimum version."""

    id: str
    level: str
    versions: tuple[VersionedCheck, ...]


# ---------------------------------------------------------------------------------------------
# tolerant access


def sub(d: dict, key: str) -> dict | None:
    """``d[key]`` if it is a mapping, else None (Go: a nil pointer to a struct)."""
    v = d.get(key)
    return v if isinstance(v, dict) else None


def sub_list(d: dict, key: str) -> list:
    """``d[key]`` if it is a list, else an empty list."""
    v = d.get(key)
    return v if isinstance(v, list) else []


def is_true(v: object) -> bool:
    """Strict boolean true (``1`` or ``"true"`` are not booleans); tolerates ruamel's ScalarBoolean."""
    if v is True:
        return True
    if v is None or v is False:
        return False
    return type(v).__name__ == "ScalarBoolean" and bool(v)


def is_false(v: object) -> bool:
    """Strict boolean false (``0`` is not false); tolerates ruamel's ScalarBoolean."""
    if v is False:
        return True
    if v is None or v is True:
        return False
    return type(v).__name__ == "ScalarBoolean" and not v


def is_int(v: object) -> bool:
    """A real integer: bools (and ruamel ScalarBoolean) are not, ruamel ScalarInt is."""
    if type(v) is int:
        return True
    return isinstance(v, int) and not isinstance(v, bool) and type(v).__name__ != "ScalarBoolean"


def as_str(v: object) -> str:
    """String view of a scalar for messages: None is "" (Go zero value), booleans are YAML-style."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if is_int(v):
        return str(int(v))  # type: ignore[call-overload]
    return str(v)


def deepest(prefix: FieldPath, obj: object, keys: tuple[str, ...]) -> FieldPath:
    """Path ``prefix + keys``, cut at the first key missing from the input (for line attribution)."""
    path = prefix
    cur = obj
    for k in keys:
        if isinstance(cur, dict) and k in cur:
            path = (*path, k)
            cur = cur[k]
        else:
            break
    return path


# ---------------------------------------------------------------------------------------------
# visitor

CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")


ContainerRef = tuple[str, int, dict]
"""``(list key, index, container)``; the path of a container is ``("spec", key, index)``."""


def collect_containers(spec: dict) -> list[ContainerRef]:
    """Containers in PSA visit order: initContainers, containers, then ephemeralContainers."""
    out: list[ContainerRef] = []
    for key in CONTAINER_KEYS:
        lst = spec.get(key)
        if lst and isinstance(lst, list):
            for i, c in enumerate(lst):
                if isinstance(c, dict):
                    out.append((key, i, c))
    return out


_NO_STASH: tuple[dict | None, list[ContainerRef]] = (None, [])
_stash: tuple[dict | None, list[ContainerRef]] = _NO_STASH


def containers_of(spec: dict) -> list[ContainerRef]:
    """The visit list of ``spec``, shared by all checks of one ``evaluate()`` call.

    ``evaluate()`` stashes the list for the spec it is evaluating (see ``stash_containers``), which
    saves re-walking the three container lists in every check. The stash is keyed by identity and
    holds a reference to the spec, so a check called on any other spec simply computes its own list;
    concurrent evaluations can only lose the cache, never see another pod's containers.
    """
    st = _stash
    if st[0] is spec:
        return st[1]
    return collect_containers(spec)


def stash_containers(spec: dict | None) -> None:
    """Set (or with None, clear) the per-evaluation container list cache."""
    global _stash
    _stash = _NO_STASH if spec is None else (spec, collect_containers(spec))


def container_name(c: dict) -> str:
    """The container's name ("" when missing, like Go's zero value)."""
    n = c.get("name")
    return n if type(n) is str else as_str(n)


def is_windows(spec: dict) -> bool:
    """``spec.os.name == "windows"``: some restricted checks exempt Windows pods from v1.25."""
    os_ = spec.get("os")
    return isinstance(os_, dict) and os_.get("name") == "windows"


def host_users_false(spec: dict) -> bool:
    """``spec.hostUsers`` explicitly false: user-namespaced pods get relaxed checks from v1.35."""
    return is_false(spec.get("hostUsers"))


# ---------------------------------------------------------------------------------------------
# Go formatting helpers


def pluralize(singular: str, plural: str, n: int) -> str:
    """Singular only when n == 1, as upstream ``pluralize``."""
    return singular if n == 1 else plural


def join_quote(items: list[str]) -> str:
    """``"a", "b"`` (no escaping, like upstream ``joinQuote``); empty list gives ""."""
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


def containers_phrase(names: list[str]) -> str:
    """``container "a"`` / ``containers "a", "b"``."""
    return f"{'container' if len(names) == 1 else 'containers'} {join_quote(names)}"




