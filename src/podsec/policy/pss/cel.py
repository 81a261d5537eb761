"""The CEL form of a check variant, and the small CEL builders the check modules write it with.

Each ``VersionedCheck`` carries a ``CelRule`` beside its Python function, built from the same constants
(allowed sets, exemptions), so a new Kubernetes version is one registration that gives both.
``podsec policy vap`` (``podsec.vap``) turns the rules in force at a level/version into a
ValidatingAdmissionPolicy; the test suite proves them equal to the Python checks on every PSA fixture.

The expressions read the pod as the API server hands it to CEL: defaulted, typed, null fields left
out. They use only what a Kubernetes 1.30 API server offers (the first with the v1 API): the standard
macros, optionals (``.?f``, ``orValue``), the strings extension (``join``, ``strings.quote``) and
Kubernetes' list library (``min``, ``max``). There is no sort, flatten or index in that set, so the
sorted distinct values PSA reports are rebuilt from the smallest and largest (see ``sorted_join``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Variables every rule may use (``variables.<name>``), in dependency order. The API server evaluates
#: each at most once per request, and only when an expression reads it.
VARIABLES: tuple[tuple[str, str], ...] = (
    (
        "containers",
        "object.spec.?initContainers.orValue([]) + object.spec.?containers.orValue([])"
        " + dyn(object.spec.?ephemeralContainers.orValue([]))",  # dyn: EphemeralContainer is its own type
    ),
    ("podSecurityContext", "object.spec.?securityContext"),  # optional: read with .?field
    ("volumes", "object.spec.?volumes.orValue([])"),
    ("annotations", "object.metadata.?annotations.orValue({})"),
    ("isWindows", "object.spec.?os.?name.orValue('') == 'windows'"),
    ("hostUsersFalse", "object.spec.?hostUsers.orValue(true) == false"),
)


@dataclass(frozen=True, slots=True)
class CelRule:
    """A check variant in CEL: ``expression`` is true when the pod passes; ``reason`` and ``detail`` are
    CEL string expressions giving PSA's reason and detail (evaluated only on failure), inside ``lets``:
    ``(name, expression)`` bindings they share, bound in order."""

    expression: str
    reason: str
    detail: str
    lets: tuple[tuple[str, str], ...] = ()

    def message(self, prefix: str) -> str:
        """One CEL expression: ``prefix + reason + " (" + detail + ")"``, like a PSA failure."""
        body = f"{lit(prefix)} + ({self.reason}) + ' (' + ({self.detail}) + ')'"
        for name, value in reversed(self.lets):
            body = bind(name, value, body)
        return body


def exempt(rule: CelRule, variable: str) -> CelRule:
    """The same rule, passing outright when ``variables.<variable>`` is true (Windows, user namespaces)."""
    return CelRule(f"variables.{variable} || ({rule.expression})", rule.reason, rule.detail, rule.lets)


# ---------------------------------------------------------------------------------------------
# builders


def lit(s: str) -> str:
    """A CEL string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def str_list(items: Iterable[str]) -> str:
    """A CEL list literal of strings, sorted so the output is stable."""
    return "[" + ", ".join(lit(s) for s in sorted(items)) + "]"


def bind(name: str, value: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value`` evaluated once (no cel.bind in Kubernetes' set)."""
    return f"[{value}].map({name}, {body})[0]"


NAME = "c.?name.orValue('')"
"""The container name of comprehension variable ``c`` ("" when unset, as Go)."""


def names_where(cond: str) -> str:
    """Names of the containers (init, regular, ephemeral: PSA's order) for which ``cond`` (over ``c``) holds."""
    return f"variables.containers.filter(c, {cond}).map(c, {NAME})"


def join_quote(list_expr: str) -> str:
    """``"a", "b"`` as upstream joinQuote (no escaping)."""
    return f"'\"' + {list_expr}.join('\", \"') + '\"'"


def containers_phrase(list_expr: str) -> str:
    """``container "a"`` / ``containers "a", "b"``."""
    return bind("n_", list_expr, f"(n_.size() == 1 ? 'container ' : 'containers ') + {join_quote('n_')}")


def pluralize(count_expr: str, singular: str, plural: str) -> str:
    return f"({count_expr} == 1 ? {lit(singular)} : {lit(plural)})"


def when(cond: str, item: str) -> str:
    """``[item]`` if ``cond`` else ``[]``: for building the list of setters or parts of a message."""
    return f"({cond} ? [{item}] : [])"


def sorted_join(lists_expr: str, quoted: bool = True) -> str:
    """PSA's sorted distinct values of a list of lists, joined as upstream (``"a", "b"`` or ``a, b``).

    Kubernetes 1.30 CEL has no sort, flatten or comprehension index, so this takes the smallest and the
    largest value and lists the ones between in pod order: exact for up to three distinct values (and
    more when the middle ones are already ordered and unrepeated). Each part is one linear pass.
    """
    sep = "'\", \"'" if quoted else "', '"
    q = (lambda e: f"'\"' + {e} + '\"'") if quoted else (lambda e: e)
    middle = f"r_.map(l_, l_.filter(x_, x_ > b_[0] && x_ < b_[1])).filter(l_, l_.size() > 0).map(l_, l_.join({sep}))"
    pair = f"b_[0] == b_[1] ? {q('b_[0]')} : {q(f'([b_[0]] + {middle} + [b_[1]]).join({sep})')}"
    body = "r_.size() == 0 ? '' : " + bind("b_", "[r_.map(l_, l_.min()).min(), r_.map(l_, l_.max()).max()]", pair)
    return bind("r_", f"{lists_expr}.filter(l_, l_.size() > 0)", body)


def one_value(lists_expr: str) -> str:
    """True when a list of lists holds exactly one distinct value (for PSA's singular/plural words)."""
    return bind("r_", f"{lists_expr}.filter(l_, l_.size() > 0)",
                "r_.size() > 0 && r_.map(l_, l_.min()).min() == r_.map(l_, l_.max()).max()")


def singletons(list_expr: str) -> str:
    """A flat list as a list of one-element lists, for ``sorted_join``."""
    return f"({list_expr}).map(x_, [x_])"
